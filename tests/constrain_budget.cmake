# The constraint's budget: distances to completion, and an adversarial model that must still
# close its output within N tokens (synthetic vocabularies; the real ones skip when the model
# files are absent).
minnow_test(constrain_budget_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/constrain_budget_test.cpp
  LIBS minnow_constrain)
