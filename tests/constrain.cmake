# Constrained decoding (src/constrain): GBNF parsing and matching on the golden grammars
# (tests/golden/grammars), regex/choice/JSON grammars, and the token-level constraint on
# synthetic and real vocabularies (the real ones skip when the model files are absent).
minnow_test(constrain_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/constrain_grammar_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/constrain_token_test.cpp
  LIBS minnow_constrain nlohmann_json::nlohmann_json)
