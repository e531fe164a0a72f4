# store/, model/model_info and the `minnow inspect` output (owned by the CLI/setup area).
minnow_test(cli_store_test SOURCES cli_store_test.cpp LIBS minnow_store)
minnow_test(cli_inspect_test SOURCES cli_inspect_test.cpp LIBS minnow_cli)
