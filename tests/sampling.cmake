# The sampler chain and the stop-string matcher (src/sampling). Pure CPU, synthetic logits:
# no model files needed.
minnow_test(sampling_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampling_chain_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sampling_stop_test.cpp
  LIBS minnow_sampling)
