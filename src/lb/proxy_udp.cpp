// UDP proxying: one flow per (service, client address:port), each with its
// own connected socket to the scheduled real server; replies go back
// through the service's listening socket, so they come from the VIP.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lb/proxy_worker.h"

namespace vmstack::lb::detail {

void Worker::readUdpListener(Listener* l) {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    ssize_t n = ::recvfrom(l->fd.get(), scratch_.get(), kScratchSize, 0,
                           reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN (drained) or a socket error already reported
    }
    const Endpoint client = Endpoint::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa));
    auto it = udp_flows_.find(UdpKey{l, client});
    UdpFlow* f = it != udp_flows_.end() ? it->second : newUdpFlow(l, sa, len);
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

UdpFlow* Worker::newUdpFlow(Listener* l, const sockaddr_storage& sa, socklen_t len) {
  const Endpoint client = Endpoint::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa));
  ServicePtr svc = l->svc;
  bool persistent = false;
  DestPtr d = svc->schedule(client, &persistent);
  if (!d) {
    sh_.no_dest.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  sockaddr_storage ds;
  socklen_t dl = d->addr().toSockaddr(&ds);
  UniqueFd fd(::socket(ds.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ds), dl) != 0) {
    if (persistent) svc->releasePersist(client);
    sh_.connect_failed.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto* f = new UdpFlow;
  f->proto = Proto::UDP;
  f->svc = svc;
  f->dest = d;
  f->client = client;
  f->vip = l->key.vip;
  f->persistent = persistent;
  f->active = false;  // LVS counts UDP entries as inactive
  f->state.store(ConnState::Udp, std::memory_order_relaxed);
  f->last_active.store(now_, std::memory_order_relaxed);
  f->bfd = std::move(fd);
  f->listener = l;
  f->client_sa = sa;
  f->client_len = len;
  svc->stats.conns.fetch_add(1, std::memory_order_relaxed);
  d->stats.conns.fetch_add(1, std::memory_order_relaxed);
  d->connOpened(false);
  sh_.accepted.fetch_add(1, std::memory_order_relaxed);
  sh_.udp_active.fetch_add(1, std::memory_order_relaxed);
  link(f);
  udp_flows_[UdpKey{l, client}] = f;
  if (!epollAdd(f->bfd.get(), EPOLLIN | EPOLLET, &f->bh)) {
    closeConn(f, false);
    return nullptr;
  }
  notifySync(f);
  return f;
}

void Worker::onUdpBackend(UdpFlow* f) {
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
