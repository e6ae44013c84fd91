// Prometheus text exposition (format 0.0.4) of the service table and the
// data plane, and a small HTTP endpoint that serves it at GET /metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lb/proxy.h"
#include "lb/service_table.h"

namespace boost::asio {
class io_context;
}

namespace vmstack::lb {

// Per virtual service and per real server: connections, packets (reads),
// bytes, rates (as ipvsadm --rate), active/inactive/persistent connections,
// weights; data-plane totals when `proxy` is given.
std::string render_metrics(const std::vector<ServiceInfo>& services, const ProxyStats* proxy);

class MetricsServer {
 public:
  // `render` is called on the io_context's thread for every scrape.
  MetricsServer(boost::asio::io_context& io, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "addr:port" ("[::1]:9101"); port 0 picks one. Throws std::runtime_error.
  void start(const std::string& listen);
  void stop();
  Endpoint endpoint() const;  // where it listens

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vmstack::lb
