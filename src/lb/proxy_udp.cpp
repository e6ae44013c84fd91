// UDP proxying: one flow per (service, client address:port), each with its
// own connected socket to the scheduled real server; replies go back
// through the service's listening socket, so they come from the VIP.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lb/proxy_worker.h"

namespace vmstack::lb::detail {

void Worker::read_udp_listener(Listener* l) {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    ssize_t n = ::recvfrom(l->fd.get(), scratch_.get(), kScratchSize, 0,
                           reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN (drained) or a socket error already reported
    }
    const Endpoint client = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa));
    auto it = udp_flows_.find(UdpKey{l, client});
    UdpFlow* f = it != udp_flows_.end() ? it->second : new_udp_flow(l, sa, len);
    if (!f) {
      sh_.udp_dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    account(f, true, size_t(n));
    // Datagrams are not queued here: if the socket cannot take one now, it
    // is dropped, as a router would.
    if (::send(f->bfd.get(), scratch_.get(), size_t(n), MSG_NOSIGNAL) < 0)
      sh_.udp_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

UdpFlow* Worker::new_udp_flow(Listener* l, const sockaddr_storage& sa, socklen_t len) {
  const Endpoint client = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa));
  Placement p = place(l->svc, client, SOCK_DGRAM);
  if (!p.dest) return nullptr;
  auto* f = new UdpFlow;
  f->proto = Proto::UDP;
  f->active = false;  // LVS counts UDP entries as inactive
  f->state.store(ConnState::Udp, std::memory_order_relaxed);
  f->bfd = std::move(p.fd);
  f->listener = l;
  f->client_sa = sa;
  f->client_len = len;
  sh_.udp_active.fetch_add(1, std::memory_order_relaxed);
  adopt(f, l, client, p);
  udp_flows_[UdpKey{l, client}] = f;
  if (!epoll_add(f->bfd.get(), EPOLLIN | EPOLLET, &f->bh)) {
    close_conn(f, false);
    return nullptr;
  }
  notify_sync(f);
  return f;
}

void Worker::on_udp_backend(UdpFlow* f) {
  if (f->dead) return;
  for (;;) {
    ssize_t n = ::recv(f->bfd.get(), scratch_.get(), kScratchSize, 0);
    if (n < 0) {
      if (errno == EINTR || errno == ECONNREFUSED) continue;  // ICMP from the real server
      return;
    }
    account(f, false, size_t(n));  // counted as read, like the TCP path
    if (::sendto(f->listener->fd.get(), scratch_.get(), size_t(n), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&f->client_sa), f->client_len) < 0)
      sh_.udp_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace vmstack::lb::detail
