# minnow eval: scoring rules, intervals, task-file errors, the recommendation.
minnow_test(eval_metrics_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eval_metrics_test.cpp
            LIBS minnow_eval)
