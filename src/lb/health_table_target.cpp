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
  if (table_.hasService(c.key)) table_.editService(c);
  else table_.addService(c);
}

void ServiceTableTarget::remove_virtual(const VirtualService& vs) {
  auto key = to_service_key(vs);
  if (table_.hasService(key)) table_.deleteService(key);
}

void ServiceTableTarget::set_real(const VirtualService& vs, const HostPort& real, int weight, bool quiesced) {
  auto key = to_service_key(vs);
  auto ep = to_lb_endpoint(real);
  if (!table_.hasDest(key, ep)) {
    DestConfig d;
    d.addr = ep;
    d.fwd = FwdMethod::Masq;
    // A quiesced real must never be schedulable, not even briefly: add it
    // with weight 0, mark it unhealthy, then give it its configured weight.
    d.weight = quiesced ? 0 : weight;
    table_.addDest(key, d);
    if (quiesced) {
      table_.setDestHealthy(key, ep, false);
      table_.setDestWeight(key, ep, weight);
    }
    return;
  }
  if (quiesced) {
    table_.setDestHealthy(key, ep, false);
    table_.setDestWeight(key, ep, weight);
  } else {
    table_.setDestWeight(key, ep, weight);
    table_.setDestHealthy(key, ep, true);
  }
}

void ServiceTableTarget::remove_real(const VirtualService& vs, const HostPort& real) {
  auto key = to_service_key(vs);
  auto ep = to_lb_endpoint(real);
  if (table_.hasDest(key, ep)) table_.deleteDest(key, ep);
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
