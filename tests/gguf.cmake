# GGUF reader/writer: malformed-file messages, round trips, corpus replay, and the sample
# program the Python interoperability test (tests/python/test_gguf_writer.py) drives.
minnow_test(gguf_reader_test SOURCES gguf_reader_test.cpp LIBS minnow_gguf)
