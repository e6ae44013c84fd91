// HealthTarget on lb-core's ServiceTable: what HealthChecker's decisions
// become in the table that the proxy and `ipvsadm -L` use.
//   ensure_virtual -> add_service / edit_service (scheduler, persistence)
//   set_real       -> add_dest / set_dest_weight, and set_dest_healthy(!quiesced)
//                     (quiesced = effective weight 0, configured weight kept)
//   remove_real    -> delete_dest;   remove_virtual -> delete_service
//   find_real      -> get (weight, healthy) of a destination already there
#pragma once

#include "lb/health_checker.h"
#include "lb/service_table.h"

namespace vmstack::lb::ha {

Endpoint to_lb_endpoint(const HostPort& hp);
ServiceKey to_service_key(const VirtualService& vs);

class ServiceTableTarget : public HealthTarget {
 public:
  explicit ServiceTableTarget(ServiceTable& table) : table_(table) {}
  void ensure_virtual(const VirtualService& vs) override;
  void remove_virtual(const VirtualService& vs) override;
  void set_real(const VirtualService& vs, const HostPort& real, int weight, bool quiesced) override;
  void remove_real(const VirtualService& vs, const HostPort& real) override;
  std::optional<Present> find_real(const VirtualService& vs, const HostPort& real) override;

 private:
  ServiceTable& table_;
};

}  // namespace vmstack::lb::ha
