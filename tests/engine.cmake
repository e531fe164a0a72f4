# The engine on tiny random-weight models (tests/support/tiny_model.h), under the sanitizers:
# prefill = decode, batch splits, sliding-window rings, KV rollback and shift, q8_0 cache,
# load errors, the generation loop; and the vector kernels against their scalar references.
minnow_test(engine_model_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/engine_model_test.cpp
            LIBS minnow_engine minnow_tiny_model)
minnow_test(kernels_vec_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_vec_test.cpp
            LIBS minnow_kernels)
minnow_test(kernels_multi_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_multi_test.cpp
            LIBS minnow_kernels)
minnow_test(engine_scheduler_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/engine_scheduler_test.cpp
            LIBS minnow_engine minnow_tiny_model)
