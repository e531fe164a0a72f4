# store/ (model store, Modelfiles, names, pull), model/model_info and the `minnow inspect`
# output.
minnow_test(cli_store_test SOURCES cli_store_test.cpp LIBS minnow_store)
minnow_test(cli_inspect_test SOURCES cli_inspect_test.cpp LIBS minnow_cli)
minnow_test(store_names_test SOURCES store_names_test.cpp LIBS minnow_store)
minnow_test(store_modelfile_test SOURCES store_modelfile_test.cpp LIBS minnow_store)
minnow_test(store_store_test SOURCES store_store_test.cpp LIBS minnow_store minnow_gguf)
# pull against an in-process Hugging Face stand-in (cpp-httplib, as the store itself uses).
find_package(PkgConfig REQUIRED)
pkg_check_modules(STORE_TEST_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
minnow_test(store_pull_test SOURCES store_pull_test.cpp
            LIBS minnow_store minnow_gguf nlohmann_json::nlohmann_json PkgConfig::STORE_TEST_HTTPLIB)
