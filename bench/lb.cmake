# vmstack-lb benchmark (lb-core): the load generator; bench/lb/run.sh drives
# it against vmstack-lbd and HAProxy. Included from bench/CMakeLists.txt.
add_executable(lb_loadgen ${CMAKE_CURRENT_LIST_DIR}/lb/lb_loadgen.cpp)
target_link_libraries(lb_loadgen vmstack_lb)
# Everything run.sh needs, in one target: cmake --build . --target lb_bench
add_custom_target(lb_bench DEPENDS lb_loadgen)
add_dependencies(lb_bench vmstack-lbd vmstack-ipvsadm lb_test_httpd)
