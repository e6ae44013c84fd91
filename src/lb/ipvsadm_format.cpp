// ipvsadm's output layouts, column for column (ipvsadm 1.31 with -n: we
// never resolve names, so -L and -L -n print the same).
#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "lb/ipvsadm.h"

namespace vmstack::lb {
namespace {

// printf into a std::string (the layouts are printf formats in ipvsadm, and
// keeping them as formats is the easiest way to stay column-exact).
__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) out.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
}

// Numbers in --stats/--rate: 9 columns, scaled with K/M/G/T unless --exact.
void large_num(std::string& out, uint64_t v, bool exact) {
  if (exact) {
    int len = std::snprintf(nullptr, 0, "%" PRIu64, v);
    appendf(out, "%*" PRIu64, len <= 8 ? 9 : len + 1, v);
    return;
  }
  if (v < 100000000ULL)
    appendf(out, "%9" PRIu64, v);
  else if (v < 1000000000ULL)
    appendf(out, "%8" PRIu64 "K", v / 1000);
  else if (v < 100000000000ULL)
    appendf(out, "%8" PRIu64 "M", v / 1000000);
  else if (v < 100000000000000ULL)
    appendf(out, "%8" PRIu64 "G", v / uint64_t(1000000000));
  else
    appendf(out, "%8" PRIu64 "T", v / uint64_t(1000000000000));
}

uint64_t rnd(double d) { return d <= 0 ? 0 : uint64_t(std::llround(d)); }

std::string mask_text(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

void title(std::string& out, const ListOptions& o) {
  if (o.stats)
    appendf(out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes");
  else if (o.rate)
    appendf(out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
  else if (o.thresholds)
    appendf(out, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn");
  else if (o.persistent_conn)
    appendf(out, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn");
  else
    out +=
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
}

std::vector<DestInfo> sorted_dests(const ServiceInfo& s, bool nosort) {
  std::vector<DestInfo> d = s.dests;
  if (!nosort)
    std::stable_sort(d.begin(), d.end(),
                     [](const DestInfo& a, const DestInfo& b) { return a.cfg.addr < b.cfg.addr; });
  return d;
}

void service_entry(std::string& out, const ServiceInfo& s, const ListOptions& o) {
  const ServiceConfig& c = s.cfg;
  std::string name = std::string(proto_name(c.key.proto)) + "  " + c.key.vip.str();
  if (!c.key.vip.addr.is_v6() && name.size() > 33) name.resize(33);
  if (o.stats) {
    appendf(out, "%-33s", name.c_str());
    large_num(out, s.stats.conns, o.exact);
    large_num(out, s.stats.inpkts, o.exact);
    large_num(out, s.stats.outpkts, o.exact);
    large_num(out, s.stats.inbytes, o.exact);
    large_num(out, s.stats.outbytes, o.exact);
  } else if (o.rate) {
    appendf(out, "%-33s", name.c_str());
    large_num(out, rnd(s.rate.cps), o.exact);
    large_num(out, rnd(s.rate.inpps), o.exact);
    large_num(out, rnd(s.rate.outpps), o.exact);
    large_num(out, rnd(s.rate.inbps), o.exact);
    large_num(out, rnd(s.rate.outbps), o.exact);
  } else {
    // Also the service line of --thresholds and --persistent-conn.
    appendf(out, "%s %s", name.c_str(), c.scheduler.c_str());
    if (c.persistent) {
      appendf(out, " persistent %u", c.timeout);
      if (!c.key.vip.addr.is_v6() && c.netmask != 0xffffffffu)
        appendf(out, " mask %s", mask_text(c.netmask).c_str());
      if (c.key.vip.addr.is_v6() && c.v6_prefix != 128) appendf(out, " mask %i", c.v6_prefix);
    }
  }
  out += '\n';

  for (const DestInfo& d : sorted_dests(s, o.nosort)) {
    std::string dn = d.cfg.addr.str();
    if (!d.cfg.addr.addr.is_v6() && dn.size() > 28) dn.resize(28);
    if (o.stats) {
      appendf(out, "  -> %-28s", dn.c_str());
      large_num(out, d.stats.conns, o.exact);
      large_num(out, d.stats.inpkts, o.exact);
      large_num(out, d.stats.outpkts, o.exact);
      large_num(out, d.stats.inbytes, o.exact);
      large_num(out, d.stats.outbytes, o.exact);
      out += '\n';
    } else if (o.rate) {
      appendf(out, "  -> %-28s %8u %8u %8u", dn.c_str(), unsigned(rnd(d.rate.cps)),
              unsigned(rnd(d.rate.inpps)), unsigned(rnd(d.rate.outpps)));
      large_num(out, rnd(d.rate.inbps), o.exact);
      large_num(out, rnd(d.rate.outbps), o.exact);
      out += '\n';
    } else if (o.thresholds) {
      appendf(out, "  -> %-28s %-10u %-10u %-10u %-10u\n", dn.c_str(), d.cfg.u_threshold,
              d.cfg.l_threshold, d.activeconns, d.inactconns);
    } else if (o.persistent_conn) {
      appendf(out, "  -> %-28s %-9d %-11u %-10u %-10u\n", dn.c_str(), d.effective_weight,
              d.persistconns, d.activeconns, d.inactconns);
    } else {
      appendf(out, "  -> %-28s %-7s %-6d %-10u %-10u\n", dn.c_str(), fwd_name(d.cfg.fwd),
              d.effective_weight, d.activeconns, d.inactconns);
    }
  }
}

std::string save_service_arg(const ServiceConfig& c) {
  return std::string(c.key.proto == Proto::TCP ? "-t " : "-u ") + c.key.vip.str();
}

}  // namespace

std::string format_list(const std::vector<ServiceInfo>& svcs, const ListOptions& o,
                       bool with_header) {
  std::string out;
  if (with_header) out += "IP Virtual Server version 1.2.1 (size=4096)\n";
  title(out, o);
  std::vector<const ServiceInfo*> order;
  for (const auto& s : svcs) order.push_back(&s);
  if (!o.nosort)
    std::stable_sort(order.begin(), order.end(), [](const ServiceInfo* a, const ServiceInfo* b) {
      return a->cfg.key < b->cfg.key;
    });
  for (const ServiceInfo* s : order) service_entry(out, *s, o);
  return out;
}

std::string format_connections(const std::vector<ConnEntry>& conns, const ListOptions& o) {
  (void)o;  // always numeric
  std::string out = "IPVS connection entries\n";
  appendf(out, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination");
  for (const ConnEntry& e : conns) {
    unsigned secs = (e.expires_ms + 999) / 1000;
    char expire[16];
    std::snprintf(expire, sizeof expire, "%02u:%02u", secs / 60, secs % 60);
    appendf(out, "%-3s %-6s %-11s %-18s %-18s %s\n", proto_name(e.proto), expire,
            e.state.c_str(), e.client.str().c_str(), e.vip.str().c_str(), e.dest.str().c_str());
  }
  return out;
}

std::string format_save(const std::vector<ServiceInfo>& svcs, const Timeouts* t) {
  std::string out;
  std::vector<const ServiceInfo*> order;
  for (const auto& s : svcs) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const ServiceInfo* a, const ServiceInfo* b) {
    return a->cfg.key < b->cfg.key;
  });
  for (const ServiceInfo* s : order) {
    const ServiceConfig& c = s->cfg;
    std::string svc = save_service_arg(c);
    appendf(out, "-A %s -s %s", svc.c_str(), c.scheduler.c_str());
    if (c.persistent) {
      appendf(out, " -p %u", c.timeout);
      if (!c.key.vip.addr.is_v6() && c.netmask != 0xffffffffu)
        appendf(out, " -M %s", mask_text(c.netmask).c_str());
      if (c.key.vip.addr.is_v6() && c.v6_prefix != 128) appendf(out, " -M %i", c.v6_prefix);
    }
    out += '\n';
    for (const DestInfo& d : sorted_dests(*s, false)) {
      // The configured weight: a health-check quiesce is not a rule.
      appendf(out, "-a %s -r %s %s -w %d", svc.c_str(), d.cfg.addr.str().c_str(),
              fwd_switch(d.cfg.fwd), d.cfg.weight);
      if (d.cfg.u_threshold) appendf(out, " -x %u", d.cfg.u_threshold);
      if (d.cfg.l_threshold) appendf(out, " -y %u", d.cfg.l_threshold);
      out += '\n';
    }
  }
  if (t) appendf(out, "--set %u %u %u\n", t->tcp, t->tcpfin, t->udp);
  return out;
}

std::string format_timeouts(const Timeouts& t) {
  std::string out;
  appendf(out, "Timeout (tcp tcpfin udp): %u %u %u\n", t.tcp, t.tcpfin, t.udp);
  return out;
}

std::string version_text() {
  return "ipvsadm v1.31 (vmstack-lb: user-space NAT data plane, IPVS v1.2.1 compatible)\n";
}

std::string usage_text(const std::string& p) {
  std::string out = version_text();
  const char* cmds[] = {
      " -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask]",
      " -D -t|u service-address",
      " -C",
      " -R",
      " -S [-n]",
      " -a|e -t|u service-address -r server-address [options]",
      " -d -t|u service-address -r server-address",
      " -L|l [options]",
      " -Z [-t|u service-address]",
      " --set tcp tcpfin udp",
      " --start-daemon state [--mcast-interface interface] [--syncid sid]",
      " --stop-daemon state",
      " -h",
  };
  out += "Usage:\n";
  for (const char* c : cmds) out += "  " + p + c + "\n";
  out +=
      "\n"
      "Commands:\n"
      "Either long or short options are allowed.\n"
      "  --add-service     -A        add virtual service with options\n"
      "  --edit-service    -E        edit virtual service with options\n"
      "  --delete-service  -D        delete virtual service\n"
      "  --clear           -C        clear the whole table\n"
      "  --restore         -R        restore rules from stdin\n"
      "  --save            -S        save rules to stdout\n"
      "  --add-server      -a        add real server with options\n"
      "  --edit-server     -e        edit real server with options\n"
      "  --delete-server   -d        delete real server\n"
      "  --list            -L|-l     list the table\n"
      "  --zero            -Z        zero counters in a service or all services\n"
      "  --set tcp tcpfin udp        set connection timeout values\n"
      "  --start-daemon              start connection sync daemon (vmstack-lb HA)\n"
      "  --stop-daemon               stop connection sync daemon\n"
      "  --help            -h        display this help message\n"
      "\n"
      "Options:\n"
      "  --tcp-service  -t service-address   service-address is host[:port]\n"
      "  --udp-service  -u service-address   service-address is host[:port]\n"
      "  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq,\n"
      "                                      the default scheduler is wlc.\n"
      "  --persistent   -p [timeout]         persistent service\n"
      "  --netmask      -M netmask           persistent granularity mask\n"
      "  --real-server  -r server-address    server-address is host (and port)\n"
      "  --masquerading -m                   masquerading (NAT), the only method here (default)\n"
      "  --gatewaying   -g                   direct routing: needs kernel IPVS (refused)\n"
      "  --ipip         -i                   tunneling: needs kernel IPVS (refused)\n"
      "  --weight       -w weight            capacity of real server\n"
      "  --u-threshold  -x uthreshold        upper threshold of connections\n"
      "  --l-threshold  -y lthreshold        lower threshold of connections\n"
      "  --mcast-interface interface         multicast interface for connection sync\n"
      "  --syncid sid                        syncid for connection sync (default=0)\n"
      "  --connection   -c                   output of current connections\n"
      "  --timeout                           output of timeout (tcp tcpfin udp)\n"
      "  --daemon                            output of daemon information\n"
      "  --stats                             output of statistics information\n"
      "  --rate                              output of rate information\n"
      "  --exact                             expand numbers (display exact values)\n"
      "  --thresholds                        output of thresholds information\n"
      "  --persistent-conn                   output of persistent connection info\n"
      "  --nosort                            disable sorting output of service/server entries\n"
      "  --sort                              does nothing, for backwards compatibility\n"
      "  --numeric      -n                   numeric output (always numeric here)\n"
      "  --socket PATH                       vmstack-lbd control socket\n"
      "                                      (default $VMSTACK_LB_SOCKET or /run/vmstack-lb/lbd.sock)\n";
  return out;
}

}  // namespace vmstack::lb
