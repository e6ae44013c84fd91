# vmstack-lb benchmark (lb-core): the load generator; bench/lb/run.sh drives
# it against vmstack-lbd and HAProxy. Included from bench/CMakeLists.txt.
if(TARGET vmstack_lb)
  add_executable(lb_loadgen ${CMAKE_CURRENT_LIST_DIR}/lb/lb_loadgen.cpp)
  target_link_libraries(lb_loadgen vmstack_lb)
  # Everything run.sh needs, in one target: cmake --build . --target lb_bench
  add_custom_target(lb_bench DEPENDS lb_loadgen)
  if(TARGET vmstack-lbd AND TARGET vmstack-ipvsadm AND TARGET lb_test_httpd)
    add_dependencies(lb_bench vmstack-lbd vmstack-ipvsadm lb_test_httpd)
  endif()
endif()
