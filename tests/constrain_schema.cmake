# The JSON Schema -> GBNF compiler (src/constrain/json_schema.*): every golden schema of
# tests/golden/schemas compiles, its grammar parses, accepts the valid examples and rejects the
# invalid ones; every unsupported keyword is an error naming it. Pure CPU, no model files.
minnow_test(constrain_schema_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/constrain_schema_test.cpp
  LIBS minnow_constrain nlohmann_json::nlohmann_json)
# std::regex (the independent check of the patterns) trips GCC 12's -Wmaybe-uninitialized
# inside libstdc++'s regex compiler at -O3 with the sanitizers: a false positive in the
# library's code, not ours.
target_compile_options(constrain_schema_test PRIVATE -Wno-maybe-uninitialized)
