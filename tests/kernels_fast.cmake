# Thread pool, CPU features, and the fast matmul kernels checked against the scalar reference.
minnow_test(thread_pool_test SOURCES thread_pool_test.cpp LIBS minnow_util)
minnow_test(kernels_fast_test SOURCES kernels_fast_test.cpp LIBS minnow_kernels minnow_gguf minnow_util)
