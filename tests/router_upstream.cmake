# router: the remote upstream client (retries, backoff, timeouts, circuit breaker, cancel)
# against an in-process scripted HTTP server, and the request / answer translations.
minnow_test(router_upstream_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/router/upstream_test.cpp
            LIBS minnow_router)
