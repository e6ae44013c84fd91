// Prometheus rendering. Names follow the Prometheus conventions (counters
// end in _total, units in the name); labels name the service like ipvsadm
// does (protocol + virtual address:port) and the real server.
#include <cinttypes>
#include <cstdio>

#include "lb/metrics.h"

namespace vmstack::lb {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string svc_labels(const ServiceConfig& c) {
  std::string proto = c.key.proto == Proto::TCP ? "tcp" : "udp";
  return "proto=\"" + proto + "\",vip=\"" + escape_label(c.key.vip.str()) + "\"";
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, const std::string& labels, uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRIu64, v);
    line(name, labels, buf);
  }
  void sample(const char* name, const std::string& labels, double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    line(name, labels, buf);
  }

 private:
  void line(const char* name, const std::string& labels, const char* value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string& out_;
};

struct StatMetric {
  const char* name;
  const char* help;
  uint64_t StatsSnapshot::*field;
};
const StatMetric kStatMetrics[] = {
    {"connections_total", "Connections (TCP) or flows (UDP) scheduled", &StatsSnapshot::conns},
    {"in_packets_total", "Reads from clients (packets, approximated)", &StatsSnapshot::inpkts},
    {"out_packets_total", "Reads from real servers (packets, approximated)",
     &StatsSnapshot::outpkts},
    {"in_bytes_total", "Bytes from clients to real servers", &StatsSnapshot::inbytes},
    {"out_bytes_total", "Bytes from real servers to clients", &StatsSnapshot::outbytes},
};

struct RateMetric {
  const char* name;
  const char* help;
  double RateSnapshot::*field;
};
const RateMetric kRateMetrics[] = {
    {"connections_per_second", "Connection rate (ipvsadm --rate CPS)", &RateSnapshot::cps},
    {"in_packets_per_second", "Inbound packet rate (InPPS)", &RateSnapshot::inpps},
    {"out_packets_per_second", "Outbound packet rate (OutPPS)", &RateSnapshot::outpps},
    {"in_bytes_per_second", "Inbound byte rate (InBPS)", &RateSnapshot::inbps},
    {"out_bytes_per_second", "Outbound byte rate (OutBPS)", &RateSnapshot::outbps},
};

}  // namespace

std::string render_metrics(const std::vector<ServiceInfo>& services, const ProxyStats* proxy) {
  std::string out;
  Writer w(out);
  std::string name;

  w.family("vmstack_lb_services", "gauge", "Virtual services configured");
  w.sample("vmstack_lb_services", "", uint64_t(services.size()));

  for (const auto& m : kStatMetrics) {
    name = std::string("vmstack_lb_service_") + m.name;
    w.family(name.c_str(), "counter", m.help);
    for (const auto& s : services) w.sample(name.c_str(), svc_labels(s.cfg), s.stats.*m.field);
    name = std::string("vmstack_lb_real_") + m.name;
    w.family(name.c_str(), "counter", m.help);
    for (const auto& s : services)
      for (const auto& d : s.dests)
        w.sample(name.c_str(), svc_labels(s.cfg) + ",real=\"" + escape_label(d.cfg.addr.str()) + "\"",
                 d.stats.*m.field);
  }
  for (const auto& m : kRateMetrics) {
    name = std::string("vmstack_lb_service_") + m.name;
    w.family(name.c_str(), "gauge", m.help);
    for (const auto& s : services) w.sample(name.c_str(), svc_labels(s.cfg), s.rate.*m.field);
    name = std::string("vmstack_lb_real_") + m.name;
    w.family(name.c_str(), "gauge", m.help);
    for (const auto& s : services)
      for (const auto& d : s.dests)
        w.sample(name.c_str(), svc_labels(s.cfg) + ",real=\"" + escape_label(d.cfg.addr.str()) + "\"",
                 d.rate.*m.field);
  }

  struct DestGauge {
    const char* name;
    const char* help;
    uint64_t (*get)(const DestInfo&);
  };
  const DestGauge gauges[] = {
      {"vmstack_lb_real_active_connections", "ActiveConn (established TCP)",
       [](const DestInfo& d) { return uint64_t(d.activeconns); }},
      {"vmstack_lb_real_inactive_connections", "InActConn (closing TCP, UDP flows)",
       [](const DestInfo& d) { return uint64_t(d.inactconns); }},
      {"vmstack_lb_real_persistent_connections", "Persistence templates pointing here",
       [](const DestInfo& d) { return uint64_t(d.persistconns); }},
      {"vmstack_lb_real_weight", "Configured weight (-w)",
       [](const DestInfo& d) { return uint64_t(d.cfg.weight); }},
      {"vmstack_lb_real_effective_weight", "Weight used by the scheduler (0 while unhealthy)",
       [](const DestInfo& d) { return uint64_t(d.effective_weight); }},
      {"vmstack_lb_real_up", "1 unless a health check quiesced the real server",
       [](const DestInfo& d) { return uint64_t(d.healthy ? 1 : 0); }},
      {"vmstack_lb_real_overloaded", "1 while over its -x upper threshold",
       [](const DestInfo& d) { return uint64_t(d.overloaded ? 1 : 0); }},
  };
  for (const auto& g : gauges) {
    w.family(g.name, "gauge", g.help);
    for (const auto& s : services)
      for (const auto& d : s.dests)
        w.sample(g.name, svc_labels(s.cfg) + ",real=\"" + escape_label(d.cfg.addr.str()) + "\"",
                 g.get(d));
  }

  if (proxy) {
    const ProxyStats& p = *proxy;
    auto one = [&](const char* n, const char* type, const char* help, uint64_t v) {
      w.family(n, type, help);
      w.sample(n, "", v);
    };
    one("vmstack_lb_proxy_tcp_connections", "gauge", "Proxied TCP connections open", p.tcp_active);
    one("vmstack_lb_proxy_udp_flows", "gauge", "UDP flows open", p.udp_active);
    one("vmstack_lb_proxy_accepted_total", "counter", "Connections accepted and flows created",
        p.accepted);
    one("vmstack_lb_proxy_no_real_server_total", "counter",
        "Connections refused because no real server was available", p.no_dest);
    one("vmstack_lb_proxy_connect_failed_total", "counter",
        "Connections whose real server refused or was unreachable", p.connect_failed);
    one("vmstack_lb_proxy_expired_total", "counter", "Entries closed by a --set timeout",
        p.expired);
    one("vmstack_lb_proxy_reset_total", "counter", "Connections aborted by a socket error",
        p.reset);
    one("vmstack_lb_proxy_udp_dropped_total", "counter", "Datagrams dropped", p.udp_dropped);
    one("vmstack_lb_proxy_accept_errors_total", "counter", "accept() failures (e.g. EMFILE)",
        p.accept_errors);
    one("vmstack_lb_proxy_pipes_in_use", "gauge", "splice pipes holding data", p.pipes_in_use);
    one("vmstack_lb_proxy_spliced_bytes_total", "counter", "Bytes moved with splice(2)",
        p.spliced_bytes);
    one("vmstack_lb_proxy_listeners", "gauge", "Listening sockets (one per service per worker)",
        p.listeners);
  }
  return out;
}

}  // namespace vmstack::lb
