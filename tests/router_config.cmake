# router/: the router file (TOML), rules, calibration and the route-log report.
foreach(t config rules calibrate report)
  minnow_test(router_${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/router/${t}_test.cpp
              LIBS minnow_router)
endforeach()
