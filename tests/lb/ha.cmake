# vmstack-lb HA tests (lb-ha). Included from tests/lb/CMakeLists.txt when the
# vmstack_lb_ha library is built. Each test file is optional so a missing one
# never breaks configuring.
set(VMSTACK_LB_HA_TESTS
  ha_config_test      # ldirectord.cf parser: good and bad files
  ha_health_test      # health checks against real TCP/HTTP servers on loopback
  ha_vrrp_test        # VRRP codec + state machine (injected clock) + nodes on loopback
  ha_sync_test        # connection sync codec and master -> backup over UDP
  ha_runtime_test     # HaRuntime options, metrics, sync roles
  ha_failover_test)   # two lbd nodes in network namespaces: failover end to end
foreach(t IN LISTS VMSTACK_LB_HA_TESTS)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${t}.cpp)
    add_executable(lb_${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.cpp)
    target_link_libraries(lb_${t} vmstack_lb_ha GTest::gtest_main)
    gtest_discover_tests(lb_${t} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120 LABELS lb-ha)
  endif()
endforeach()

# A minimal load balancer node for the failover test: ServiceTable +
# HaRuntime + a blocking one-shot TCP proxy, so failover is tested even
# without lb-core's daemon.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/ha_node.cpp AND TARGET lb_ha_failover_test)
  add_executable(lb_ha_node ${CMAKE_CURRENT_LIST_DIR}/ha_node.cpp)
  target_link_libraries(lb_ha_node vmstack_lb_ha)
  add_dependencies(lb_ha_failover_test lb_ha_node)
  target_compile_definitions(lb_ha_failover_test PRIVATE LB_HA_NODE="$<TARGET_FILE:lb_ha_node>")
  if(TARGET vmstack-lbd)
    add_dependencies(lb_ha_failover_test vmstack-lbd)
    target_compile_definitions(lb_ha_failover_test PRIVATE LB_LBD="$<TARGET_FILE:vmstack-lbd>")
  endif()
endif()
