// What a NAT or internal network needs on the host besides its bridge
// (issue: networking): its routed side (gateway address, forwarding,
// firewall table: net/routed.h) and its DHCP/DNS server (dnsmasq, one per
// network: net/dnsmasq.h), kept running by a supervisor thread that
// restarts a dnsmasq that died, starts it again when the reservations
// (the VIFs' other_config:ip) change, and turns its leases into the guests' addresses in
// VM_guest_metrics.networks ("<device>/ip").
//
// A network's kind comes from its other_config: mode=nat|internal with
// subnet=<CIDR> (and optionally gateway=<ip>); a network without a subnet is
// a plain bridge as before (xapi's internal network).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/process.h"
#include "model/store.h"
#include "net/backend.h"
#include "net/dnsmasq.h"

namespace vmstack::ops {

// The network's routed side as its record asks for it, or nullopt for a
// plain bridge. Throws ApiError INVALID_VALUE [field, why] for a mode or
// subnet that makes no sense.
std::optional<net::RoutedNetwork> routed_spec(const Struct& network_record);

class NetworkServices {
 public:
  NetworkServices(model::Store& store, net::Backend& backend, std::string state_dir);
  ~NetworkServices();  // the supervisor and every dnsmasq stop
  NetworkServices(const NetworkServices&) = delete;
  NetworkServices& operator=(const NetworkServices&) = delete;

  // The API's TCP ports, which guests never reach (before start()).
  void set_blocked_ports(std::vector<unsigned short> ports) { blocked_ = std::move(ports); }
  // Every routed network rebuilt (idempotently: after a crash or a host
  // reboot), a dnsmasq left by an earlier daemon replaced; then the
  // supervisor runs.
  void start();
  // network.create: the routed side applied and DHCP started. Throws
  // ApiError (INTERNAL_ERROR with the system's words).
  void ensure(const std::string& network, const Struct& record);
  // network.destroy: DHCP stopped, the routed side removed, its files gone.
  void remove(const Struct& record);
  // The supervisor's work, once (tests call it to avoid waiting a tick).
  void tick();

 private:
  struct Instance {
    std::string network;
    net::RoutedNetwork routed;
    std::string dir;
    Subprocess dnsmasq;
    std::vector<net::Reservation> reservations;  // what it was started with
    int restarts = 0;  // quick ones in a row
    std::chrono::steady_clock::time_point started;
  };
  void start_dnsmasq(Instance& i);
  std::vector<net::Reservation> reservations(const Instance& i);
  void publish_leases(const Instance& i);
  void loop();

  model::Store& store_;
  net::Backend& backend_;
  std::string state_dir_;
  std::vector<unsigned short> blocked_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Instance>> instances_;  // by network ref
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread supervisor_;  // last: joined first
};

}  // namespace vmstack::ops
