// GET /metrics over HTTP/1.1 with Boost.Beast, on the daemon's io_context.
#include <utility>  // before Asio: boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>

#include "lb/metrics.h"

namespace vmstack::lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct MetricsServer::Impl : std::enable_shared_from_this<MetricsServer::Impl> {
  Impl(asio::io_context& io, std::function<std::string()> r)
      : io(io), render(std::move(r)), acceptor(io) {}

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, std::shared_ptr<Impl> o) : stream(std::move(s)), owner(std::move(o)) {}
    beast::tcp_stream stream;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    std::shared_ptr<Impl> owner;

    void read() {
      req = {};
      stream.expires_after(std::chrono::seconds(30));  // idle keep-alive clients go away
      http::async_read(stream, buf, req,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->close();
                         self->respond();
                       });
    }

    void respond() {
      res = {};
      res.version(req.version());
      res.keep_alive(req.keep_alive());
      res.set(http::field::server, "vmstack-lbd");
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET, HEAD");
        res.set(http::field::content_type, "text/plain");
        res.body() = "only GET /metrics\n";
      } else if (req.target() != "/metrics" && req.target().substr(0, 9) != "/metrics?") {
        res.result(http::status::not_found);
        res.set(http::field::content_type, "text/plain");
        res.body() = "try /metrics\n";
      } else {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = owner->render();
        if (req.method() == http::verb::head) {
          res.content_length(res.body().size());
          res.body().clear();
        }
      }
      if (req.method() != http::verb::head) res.prepare_payload();
      http::async_write(stream, res, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec || !self->res.keep_alive()) return self->close();
        self->read();
      });
    }

    void close() {
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream.close();
    }
  };

  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (!self->acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(s), self)->read();
      self->accept();
    });
  }

  asio::io_context& io;
  std::function<std::string()> render;
  tcp::acceptor acceptor;
};

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render)
    : impl_(std::make_shared<Impl>(io, std::move(render))) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start(const std::string& listen) {
  auto ep = Endpoint::parse(listen);
  if (!ep) throw std::runtime_error("--metrics-listen: expected addr:port, got '" + listen + "'");
  sockaddr_storage ss;
  socklen_t len = ep->to_sockaddr(&ss);
  tcp::endpoint tep;
  std::memcpy(tep.data(), &ss, len);
  tep.resize(len);
  beast::error_code ec;
  auto& a = impl_->acceptor;
  a.open(tep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(tep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    a.close(ignored);
    throw std::runtime_error("metrics endpoint " + listen + ": " + ec.message());
  }
  impl_->accept();
}

void MetricsServer::stop() {
  beast::error_code ec;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ec);
}

Endpoint MetricsServer::endpoint() const {
  beast::error_code ec;
  tcp::endpoint e = impl_->acceptor.local_endpoint(ec);
  if (ec) return {};
  return Endpoint::from_sockaddr(e.data());
}

}  // namespace vmstack::lb
