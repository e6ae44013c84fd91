#include "lb/health_table_target.h"

namespace vmstack::lb::ha {

Endpoint to_lb_endpoint(const HostPort& hp) {
  auto ep = Endpoint::parse(hp.str());
  if (!ep) throw LbError(LbError::Code::Invalid, "invalid address " + hp.str());
  return *ep;
}

ServiceKey to_service_key(const VirtualService& vs) {
  ServiceKey k;
  k.proto = vs.protocol == Protocol::Udp ? Proto::UDP : Proto::TCP;
  k.vip = to_lb_endpoint(vs.vip);
  return k;
}

void ServiceTableTarget::ensure_virtual(const VirtualService& vs) {
  ServiceConfig c;
  c.key = to_service_key(vs);
  c.scheduler = vs.scheduler;
  c.persistent = vs.persistent.has_value();
  if (vs.persistent) c.timeout = *vs.persistent;
  if (table_.has_service(c.key)) table_.edit_service(c);
  else table_.add_service(c);
}

void ServiceTableTarget::remove_virtual(const VirtualService& vs) {
  auto key = to_service_key(vs);
  if (table_.has_service(key)) table_.delete_service(key);
}

void ServiceTableTarget::set_real(const VirtualService& vs, const HostPort& real, int weight, bool quiesced) {
  auto key = to_service_key(vs);
  auto ep = to_lb_endpoint(real);
  if (!table_.has_dest(key, ep)) {
    DestConfig d;
    d.addr = ep;
    d.fwd = FwdMethod::Masq;
    // A quiesced real must never be schedulable, not even briefly: add it
    // with weight 0, mark it unhealthy, then give it its configured weight.
    d.weight = quiesced ? 0 : weight;
    table_.add_dest(key, d);
    if (quiesced) {
      table_.set_dest_healthy(key, ep, false);
      table_.set_dest_weight(key, ep, weight);
    }
    return;
  }
  if (quiesced) {
    table_.set_dest_healthy(key, ep, false);
    table_.set_dest_weight(key, ep, weight);
  } else {
    table_.set_dest_weight(key, ep, weight);
    table_.set_dest_healthy(key, ep, true);
  }
}

void ServiceTableTarget::remove_real(const VirtualService& vs, const HostPort& real) {
  auto key = to_service_key(vs);
  auto ep = to_lb_endpoint(real);
  if (table_.has_dest(key, ep)) table_.delete_dest(key, ep);
}

std::optional<HealthTarget::Present> ServiceTableTarget::find_real(const VirtualService& vs, const HostPort& real) {
  auto si = table_.get(to_service_key(vs));
  if (!si) return std::nullopt;
  auto ep = to_lb_endpoint(real);
  for (const auto& d : si->dests)
    if (d.cfg.addr == ep) return Present{d.cfg.weight, !d.healthy};
  return std::nullopt;
}

}  // namespace vmstack::lb::ha
