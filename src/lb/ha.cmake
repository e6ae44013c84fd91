# vmstack-lb high availability: ldirectord-style health checks, VRRP-style
# failover, connection/persistence sync. Included from src/lb/CMakeLists.txt
# after vmstack_lb is defined:   include(${CMAKE_CURRENT_LIST_DIR}/ha.cmake)
find_package(PkgConfig REQUIRED)
pkg_check_modules(VMSTACK_LIBNL_ROUTE REQUIRED IMPORTED_TARGET libnl-route-3.0)

set(VMSTACK_LB_HA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/ldirectord_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/health_checker.cpp
  ${CMAKE_CURRENT_LIST_DIR}/vrrp.cpp
  ${CMAKE_CURRENT_LIST_DIR}/vrrp_node.cpp
  ${CMAKE_CURRENT_LIST_DIR}/netlink_addr.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sync.cpp)
# The ServiceTable adapters need lb-core's library; a standalone build of the
# HA part (no vmstack_lb target) leaves them out.
if(TARGET vmstack_lb)
  list(APPEND VMSTACK_LB_HA_SOURCES ${CMAKE_CURRENT_LIST_DIR}/health_table_target.cpp
                                    ${CMAKE_CURRENT_LIST_DIR}/ha_runtime.cpp)
endif()
add_library(vmstack_lb_ha STATIC ${VMSTACK_LB_HA_SOURCES})
target_include_directories(vmstack_lb_ha PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(vmstack_lb_ha PUBLIC Threads::Threads PkgConfig::VMSTACK_LIBNL_ROUTE)
if(TARGET vmstack_lb)
  target_link_libraries(vmstack_lb_ha PUBLIC vmstack_lb)
endif()
if(TARGET CLI11::CLI11)
  target_link_libraries(vmstack_lb_ha PUBLIC CLI11::CLI11)
endif()
