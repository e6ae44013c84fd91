// TCP proxying: accept, connect to the scheduled real server, move bytes
// both ways with back-pressure and half-close.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lb/proxy_worker.h"

namespace vmstack::lb::detail {
namespace {

void set_no_delay(int fd) {
  // Proxied request/response traffic: never hold small segments back.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void rst_close(UniqueFd fd) {
  linger lg{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

}  // namespace

void Worker::accept_tcp(Listener* l) {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    int fd = ::accept4(l->fd.get(), reinterpret_cast<sockaddr*>(&sa), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (would_block(errno)) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the queue stays; edge-triggered
      // epoll will not tell us again, so the sweep retries.
      sh_.accept_errors.fetch_add(1, std::memory_order_relaxed);
      l->retry_accept = true;
      return;
    }
    new_tcp(l, UniqueFd(fd), sa);
  }
}

void Worker::new_tcp(Listener* l, UniqueFd cfd, const sockaddr_storage& sa) {
  const Endpoint client = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa));
  Placement p = place(l->svc, client, SOCK_STREAM);
  if (!p.dest) {
    // No real server (LVS drops the SYN) or none reachable: having accepted
    // already, we reset.
    rst_close(std::move(cfd));
    return;
  }
  set_no_delay(cfd.get());
  set_no_delay(p.fd.get());

  auto* c = new TcpConn;
  c->proto = Proto::TCP;
  c->state.store(ConnState::SynSent, std::memory_order_relaxed);
  c->cfd = std::move(cfd);
  c->bfd = std::move(p.fd);
  c->c2b.splice = c->b2c.splice = sh_.opts.splice == SpliceMode::Always;
  sh_.tcp_active.fetch_add(1, std::memory_order_relaxed);
  adopt(c, l, client, p);
  constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  if (!epoll_add(c->cfd.get(), kEvents, &c->ch) || !epoll_add(c->bfd.get(), kEvents, &c->bh)) {
    sh_.reset.fetch_add(1, std::memory_order_relaxed);
    close_conn(c, true);
  }
  // The backend's EPOLLOUT (connect finished) drives the rest.
}

void Worker::on_tcp(TcpConn* c, bool client_side, uint32_t ev) {
  if (c->dead) return;
  constexpr uint32_t kRd = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
  constexpr uint32_t kWr = EPOLLOUT | EPOLLHUP | EPOLLERR;
  if (client_side) {
    if (ev & kRd) c->c_rd = true;
    if (ev & kWr) c->c_wr = true;
  } else {
    if (!c->connected) {
      if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->bfd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        // Real server refused or unreachable: the client sees a reset.
        close_conn(c, true);
        sh_.connect_failed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      c->connected = true;
      c->state.store(ConnState::Established, std::memory_order_relaxed);
      c->last_active.store(now_, std::memory_order_relaxed);
      notify_sync(c);
    }
    if (ev & kRd) c->b_rd = true;
    if (ev & kWr) c->b_wr = true;
  }
  pump_conn(c);
}

void Worker::pump_conn(TcpConn* c) {
  if (!c->connected) return;  // client bytes wait in its socket until then
  if (pump(c, c->c2b, c->cfd.get(), c->bfd.get(), c->c_rd, c->b_wr, true) == Pump::Fatal ||
      pump(c, c->b2c, c->bfd.get(), c->cfd.get(), c->b_rd, c->c_wr, false) == Pump::Fatal) {
    close_conn(c, true);
    sh_.reset.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (c->c2b.shut && c->b2c.shut) close_conn(c, false);  // both FINs passed on
}

Worker::Pump Worker::flush(Dir& d, int to, bool& to_wr) {
  if (d.pipe && d.pipe->bytes) {
    ssize_t m = ::splice(d.pipe->r.get(), nullptr, to, nullptr, d.pipe->bytes,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      d.pipe->bytes -= size_t(m);
      if (d.pipe->bytes == 0) {
        sh_.pipes_in_use.fetch_sub(1, std::memory_order_relaxed);
        put_pipe(std::move(d.pipe));
      }
      return Pump::Ok;
    }
    if (m < 0 && would_block(errno)) {
      to_wr = false;
      return Pump::Ok;
    }
    return m < 0 && errno == EINTR ? Pump::Ok : Pump::Fatal;
  }
  ssize_t m = ::send(to, d.buf.get() + d.off, d.len - d.off, MSG_NOSIGNAL);
  if (m > 0) {
    d.off += uint32_t(m);
    if (d.off == d.len) {
      d.buf.reset();
      d.off = d.len = 0;
    }
    return Pump::Ok;
  }
  if (m < 0 && would_block(errno)) {
    to_wr = false;
    return Pump::Ok;
  }
  return m < 0 && errno == EINTR ? Pump::Ok : Pump::Fatal;
}

// Moves data from `from` to `to` until one side would block. Reads only when
// nothing is pending and the destination can take data: a slow reader on
// one side stops us reading the other (back-pressure through the kernel's
// socket buffers, no unbounded queue here).
Worker::Pump Worker::pump(TcpConn* c, Dir& d, int from, int to, bool& from_rd, bool& to_wr,
                          bool inbound) {
  for (;;) {
    if (d.pending()) {
      if (!to_wr) return Pump::Ok;
      if (flush(d, to, to_wr) == Pump::Fatal) return Pump::Fatal;
      continue;
    }
    if (d.eof) {
      if (!d.shut) {
        // Half-close: pass the FIN on, keep the other direction open.
        ::shutdown(to, SHUT_WR);
        d.shut = true;
        on_fin(c);
      }
      return Pump::Ok;
    }
    if (!from_rd || !to_wr) return Pump::Ok;

    if (d.splice) {
      if (!d.pipe) d.pipe = get_pipe();
      if (!d.pipe) {
        d.splice = false;  // out of descriptors: copy instead
        continue;
      }
      ssize_t n = ::splice(from, nullptr, d.pipe->w.get(), nullptr, kSpliceChunk,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.pipe->bytes = size_t(n);
        sh_.pipes_in_use.fetch_add(1, std::memory_order_relaxed);
        sh_.spliced_bytes.fetch_add(uint64_t(n), std::memory_order_relaxed);
        account(c, inbound, size_t(n));
        continue;
      }
      int e = errno;
      put_pipe(std::move(d.pipe));
      if (n == 0) {
        d.eof = true;
        continue;
      }
      if (would_block(e)) {
        from_rd = false;
        return Pump::Ok;
      }
      if (e == EINTR) continue;
      return Pump::Fatal;
    }

    ssize_t n = ::read(from, scratch_.get(), kScratchSize);
    if (n > 0) {
      account(c, inbound, size_t(n));
      // Bulk transfer: later reads in this direction go through a pipe.
      if (sh_.opts.splice == SpliceMode::Auto && size_t(n) >= kScratchSize / 2) d.splice = true;
      ssize_t w = ::send(to, scratch_.get(), size_t(n), MSG_NOSIGNAL);
      if (w < 0) {
        if (!would_block(errno) && errno != EINTR) return Pump::Fatal;
        to_wr = would_block(errno) ? false : to_wr;
        w = 0;
      }
      if (w < n) {
        d.len = uint32_t(n - w);
        d.off = 0;
        d.buf.reset(new char[d.len]);
        std::memcpy(d.buf.get(), scratch_.get() + w, d.len);
      }
      continue;
    }
    if (n == 0) {
      d.eof = true;
      continue;
    }
    if (would_block(errno)) {
      from_rd = false;
      return Pump::Ok;
    }
    if (errno == EINTR) continue;
    return Pump::Fatal;
  }
}

void Worker::on_fin(TcpConn* c) {
  if (c->state.load(std::memory_order_relaxed) == ConnState::FinWait) return;
  c->state.store(ConnState::FinWait, std::memory_order_relaxed);
  c->last_active.store(now_, std::memory_order_relaxed);
  if (c->active) {
    c->dest->conn_deactivated();  // LVS: ActiveConn -> InActConn on FIN
    c->active = false;
  }
  notify_sync(c);
}

}  // namespace vmstack::lb::detail
