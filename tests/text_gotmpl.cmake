# Ollama-style Go templates (src/text/go_template). Goldens in tests/golden/gotemplates: Ollama's
# published templates and expected prompts written by hand from Go text/template semantics
# (see tests/golden/gotemplates/README.md).
minnow_test(text_gotmpl_test SOURCES text_gotmpl_test.cpp LIBS minnow_text)
