# Scalar reference (de)quantizers: bit-exact against gguf-py goldens, round-trip error bounds.
minnow_test(kernels_ref_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_ref_test.cpp LIBS minnow_kernels)
