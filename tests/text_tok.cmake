# Tokenizers and the streaming detokenizer (src/text, all but jinja/ and chat_template).
# Goldens in tests/golden/tokenizer come from scripts/make_tokenizer_golden.py (llama.cpp via
# llama-cpp-python); the vocab-only GGUFs they use are fetched by scripts/fetch_vocabs.sh.
minnow_test(text_tok_test
  SOURCES text_tok_golden_test.cpp text_tok_unit_test.cpp text_tok_adversarial_test.cpp
  LIBS minnow_text nlohmann_json::nlohmann_json)
target_include_directories(text_tok_test PRIVATE ${PROJECT_SOURCE_DIR})
# `minnow tokenize` / `minnow detokenize` in-process on a synthetic vocabulary.
minnow_test(text_tok_cli_test SOURCES text_tok_cli_test.cpp LIBS minnow_cli)
target_include_directories(text_tok_cli_test PRIVATE ${PROJECT_SOURCE_DIR})
