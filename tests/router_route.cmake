# router/: the escalation decision, the signal meter and the route record.
minnow_test(router_route_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/router/route_test.cpp
            LIBS minnow_router)
