# GGUF reader/writer: malformed-file messages, round trips, fuzz-corpus replay, and the sample
# program that tests/python/test_gguf_writer.py drives against gguf-py.
minnow_test(gguf_reader_test SOURCES gguf_reader_test.cpp LIBS minnow_gguf)
minnow_test(gguf_corpus_test SOURCES gguf_corpus_test.cpp LIBS minnow_gguf)
# Both share the fuzzer's checks, fuzz/gguf_check.h.
target_include_directories(gguf_reader_test PRIVATE ${PROJECT_SOURCE_DIR})
target_include_directories(gguf_corpus_test PRIVATE ${PROJECT_SOURCE_DIR})

add_executable(gguf_write_sample gguf_write_sample.cpp)
target_link_libraries(gguf_write_sample PRIVATE minnow_gguf nlohmann_json::nlohmann_json
                                                minnow_warnings)
