# Tiny random-weight GGUF models (tests/support/tiny_model.h) for the engine tests: the library
# minnow_tiny_model that gtests link to make their own, and the tool minnow_make_tiny_model
# that tests/python/test_engine_tiny.py drives (checked there against the float64 reference in
# tests/python/reference_model.py).
add_library(minnow_tiny_model STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/tiny_model.cpp)
target_include_directories(minnow_tiny_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(minnow_tiny_model PUBLIC minnow_gguf minnow_kernels minnow_util
                                        PRIVATE minnow_warnings)

# In the build root, beside `minnow`, where the Python tests look for it.
add_executable(minnow_make_tiny_model ${CMAKE_CURRENT_SOURCE_DIR}/tools/make_tiny_model.cpp)
target_link_libraries(minnow_make_tiny_model PRIVATE minnow_tiny_model minnow_warnings)
set_target_properties(minnow_make_tiny_model PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                        ${PROJECT_BINARY_DIR})

# The writer itself: keys, tensor names/shapes/types per arch, determinism, dropped tensors.
minnow_test(tiny_model_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/support/tiny_model_test.cpp
            LIBS minnow_tiny_model)
