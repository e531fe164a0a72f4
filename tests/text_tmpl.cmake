# Chat templates: the sandboxed Jinja interpreter (src/text/jinja) and src/text/chat_template.
# Goldens in tests/golden/templates come from tests/golden/templates/generate.py (jinja2).
minnow_test(text_tmpl_test
  SOURCES text_tmpl_golden_test.cpp text_tmpl_sandbox_test.cpp text_tmpl_unit_test.cpp
  LIBS minnow_text nlohmann_json::nlohmann_json)
minnow_test(text_tmpl_cli_test SOURCES text_tmpl_cli_test.cpp LIBS minnow_cli)
