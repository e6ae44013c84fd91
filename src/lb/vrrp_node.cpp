#include "lb/vrrp_node.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/strings.h"

namespace vmstack::lb::ha {

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

uint32_t parse_v4(const std::string& s, const std::string& what) {
  in_addr a{};
  std::string ip = s.substr(0, s.find('/'));
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) throw std::runtime_error(what + ": not an IPv4 address: " + s);
  return a.s_addr;
}

std::string v4str(uint32_t a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

}  // namespace

VrrpNodeConfig VrrpNodeConfig::parse(const std::string& text, const std::string& source) {
  VrrpNodeConfig c;
  std::istringstream in(text);
  std::string raw;
  int lineno = 0;
  auto fail = [&](const std::string& m) {
    throw std::runtime_error(source + ":" + std::to_string(lineno) + ": " + m);
  };
  auto num = [&](const std::string& k, const std::string& v, double lo, double hi) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !std::isfinite(d) || d < lo || d > hi)
      fail(k + ": expected a number in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v + "'");
    return d;
  };
  while (std::getline(in, raw)) {
    ++lineno;
    auto hash = raw.find('#');
    std::string line = trim(hash == std::string::npos ? raw : raw.substr(0, hash));
    if (line.empty()) continue;
    std::string k, v;
    auto eq = line.find('=');
    if (eq != std::string::npos) {
      k = trim(line.substr(0, eq));
      v = trim(line.substr(eq + 1));
    } else {
      auto sp = line.find_first_of(" \t");
      k = line.substr(0, sp);
      v = sp == std::string::npos ? "" : trim(line.substr(sp));
    }
    if (k == "interface") c.interface = v;
    else if (k == "vrid" || k == "virtual_router_id") c.vrid = static_cast<uint8_t>(num(k, v, 1, 255));
    else if (k == "priority") c.priority = static_cast<uint8_t>(num(k, v, 1, 255));
    else if (k == "advert_int") c.advert_int_s = num(k, v, 0.01, 40.95);
    else if (k == "preempt") {
      if (v == "yes" || v.empty()) c.preempt = true;
      else if (v == "no") c.preempt = false;
      else fail("preempt: expected yes or no");
    } else if (k == "nopreempt") c.preempt = false;
    else if (k == "vip" || k == "virtual_ipaddress") {
      try {
        parse_v4(v, k);
      } catch (const std::exception& e) {
        fail(e.what());
      }
      c.vips.push_back(v);
    } else if (k == "unicast_peer") {
      try {
        parse_v4(v, k);
      } catch (const std::exception& e) {
        fail(e.what());
      }
      c.unicast_peers.push_back(v);
    } else if (k == "unicast_src" || k == "unicast_src_ip") {
      try {
        parse_v4(v, k);
      } catch (const std::exception& e) {
        fail(e.what());
      }
      c.src_addr = v;
    } else if (k == "mcast_group") {
      uint32_t g = 0;
      try {
        g = parse_v4(v, k);
      } catch (const std::exception& e) {
        fail(e.what());
      }
      if ((ntohl(g) >> 28) != 0xe) fail("mcast_group: not a multicast address: " + v);
      c.mcast_group = v;
    } else if (k == "port") c.port = static_cast<uint16_t>(num(k, v, 1, 65535));
    else fail("unknown key '" + k + "'");
  }
  if (c.interface.empty()) {
    lineno = 0;
    fail("interface is required");
  }
  return c;
}

VrrpNodeConfig VrrpNodeConfig::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot read file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

VrrpNode::VrrpNode(VrrpNodeConfig cfg, Callbacks cb, std::shared_ptr<VipManager> vips)
    : cfg_(std::move(cfg)), cb_(std::move(cb)), vips_(std::move(vips)) {
  if (!vips_) vips_ = std::make_shared<NetlinkVipManager>();
}

VrrpNode::~VrrpNode() { stop(true); }

void VrrpNode::start() {
  if (running_.load()) return;
  vip_addrs_.clear();
  peers_.clear();
  std::vector<std::string> vip_ips;
  for (const auto& v : cfg_.vips) {
    vip_addrs_.push_back(parse_v4(v, "vip"));
    vip_ips.push_back(v4str(vip_addrs_.back()));
  }
  for (const auto& p : cfg_.unicast_peers) peers_.push_back(parse_v4(p, "unicast_peer"));
  // A VIP left behind by a crashed instance must not become our identity.
  std::string src = cfg_.src_addr.empty() ? net::first_ipv4(cfg_.interface, vip_ips) : cfg_.src_addr;
  if (src.empty()) throw std::runtime_error("vrrp: interface " + cfg_.interface + " has no IPv4 address");
  src_ = parse_v4(src, "source address");

  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error(std::string("vrrp: socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int ttl = 255;
  setsockopt(fd.get(), IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(cfg_.port);
  // Unicast: bind to our own address so adverts leave with it as source
  // (peers filter on it, and a VIP on the same subnet must never be
  // picked). Multicast needs the wildcard address to receive the group.
  sa.sin_addr.s_addr = peers_.empty() ? htonl(INADDR_ANY) : src_;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    throw std::runtime_error("vrrp: bind " + v4str(sa.sin_addr.s_addr) + ":" + std::to_string(cfg_.port) +
                             ": " + std::strerror(errno));
  if (peers_.empty()) {
    ip_mreqn mr{};
    mr.imr_multiaddr.s_addr = parse_v4(cfg_.mcast_group, "mcast_group");
    mr.imr_ifindex = static_cast<int>(if_nametoindex(cfg_.interface.c_str()));
    if (mr.imr_ifindex == 0) throw std::runtime_error("vrrp: no such interface: " + cfg_.interface);
    if (setsockopt(fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
      throw std::runtime_error(std::string("vrrp: join ") + cfg_.mcast_group + ": " + std::strerror(errno));
    ip_mreqn ifm{};
    ifm.imr_address.s_addr = src_;
    ifm.imr_ifindex = mr.imr_ifindex;
    setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &ifm, sizeof ifm);
    setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    int loop = 0;
    setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
  }
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) throw std::runtime_error(std::string("vrrp: eventfd: ") + std::strerror(errno));
  fd_ = std::move(fd);
  wake_fd_ = std::move(wake);

  VrrpStateMachine::Config sc;
  sc.vrid = cfg_.vrid;
  sc.priority = cfg_.priority;
  sc.advert_int_cs = static_cast<uint16_t>(std::lround(cfg_.advert_int_s * 100));
  if (sc.advert_int_cs == 0) sc.advert_int_cs = 1;
  sc.preempt = cfg_.preempt;
  sc.self_addr.resize(4);
  std::memcpy(sc.self_addr.data(), &src_, 4);
  VrrpStateMachine::Actions act;
  act.send_advert = [this](uint8_t p) { send_advert(p); };
  act.state_change = [this](VrrpState f, VrrpState t) { transitions_.emplace_back(f, t); };
  sm_ = std::make_unique<VrrpStateMachine>(sc, act);

  if (cfg_.manage_vips && cfg_.remove_vips_on_start && cfg_.priority != 255) {
    for (const auto& v : cfg_.vips) {
      try {
        vips_->del(cfg_.interface, v);
      } catch (const std::exception& e) {
        spdlog::error("vrrp: {}", e.what());
      }
    }
  }
  running_ = true;
  spdlog::info("vrrp: vrid {} priority {} on {} ({}, src {})", cfg_.vrid, cfg_.priority, cfg_.interface,
               peers_.empty() ? "multicast " + cfg_.mcast_group : "unicast", v4str(src_));
  {
    std::lock_guard lk(mu_);
    sm_->startup(now_ms());
  }
  thread_ = std::thread([this] { loop(); });
}

void VrrpNode::stop(bool graceful) {
  if (!running_.load()) return;
  graceful_ = graceful;
  running_ = false;
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  fd_.reset();
  wake_fd_.reset();
}

void VrrpNode::set_priority(uint8_t p) {
  pending_priority_ = p;
  uint64_t one = 1;
  if (wake_fd_) {
    [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
  }
}

void VrrpNode::send_advert(uint8_t prio) {
  VrrpAdvert a;
  a.vrid = cfg_.vrid;
  a.priority = prio;
  a.interval_cs = sm_->config().advert_int_cs;
  a.addrs = vip_addrs_;
  auto pkt = encode_advert(a);
  auto send_to = [&](uint32_t dst) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg_.port);
    sa.sin_addr.s_addr = dst;
    if (::sendto(fd_.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      // Expected while a peer's namespace/link is gone; keep quiet-ish.
      if (errno != ECONNREFUSED && errno != ENETUNREACH && errno != EHOSTUNREACH)
        spdlog::warn("vrrp: send advert: {}", std::strerror(errno));
    }
  };
  if (peers_.empty()) send_to(parse_v4(cfg_.mcast_group, "mcast_group"));
  else
    for (auto p : peers_) send_to(p);
  sent_.fetch_add(1);
}

void VrrpNode::handle_transition(VrrpState from, VrrpState to) {
  state_ = to;
  spdlog::info("vrrp: vrid {}: {} -> {}", cfg_.vrid, to_string(from), to_string(to));
  if (to == VrrpState::Master) {
    if (cfg_.manage_vips) {
      for (const auto& v : cfg_.vips) {
        try {
          vips_->add(cfg_.interface, v);
        } catch (const std::exception& e) {
          spdlog::error("vrrp: {}", e.what());
        }
      }
      announce_vips();
      garp_left_ = cfg_.garp_repeats;
      garp_next_ms_ = now_ms() + static_cast<int64_t>(cfg_.garp_repeat_s * 1000);
    }
    if (cb_.on_state) cb_.on_state(from, to);
  } else {
    if (cb_.on_state) cb_.on_state(from, to);
    if (from == VrrpState::Master && cfg_.manage_vips) {
      for (const auto& v : cfg_.vips) {
        try {
          vips_->del(cfg_.interface, v);
        } catch (const std::exception& e) {
          spdlog::error("vrrp: {}", e.what());
        }
      }
    }
  }
}

void VrrpNode::announce_vips() {
  for (const auto& v : cfg_.vips) {
    try {
      vips_->announce(cfg_.interface, v.substr(0, v.find('/')));
    } catch (const std::exception& e) {
      spdlog::warn("vrrp: {}", e.what());
    }
  }
}

void VrrpNode::loop() {
  auto drain = [&] {
    std::vector<std::pair<VrrpState, VrrpState>> t;
    {
      std::lock_guard lk(mu_);
      t.swap(transitions_);
    }
    for (auto& [f, to] : t) handle_transition(f, to);
  };
  drain();
  uint8_t buf[1500];
  while (running_.load()) {
    int timeout = 1000;
    {
      std::lock_guard lk(mu_);
      int p = pending_priority_.exchange(-1);
      if (p > 0) sm_->set_priority(static_cast<uint8_t>(p));
      if (auto d = sm_->next_deadline()) timeout = static_cast<int>(std::max<int64_t>(0, *d - now_ms()));
    }
    if (garp_left_ > 0) timeout = std::min(timeout, static_cast<int>(std::max<int64_t>(0, garp_next_ms_ - now_ms())));
    pollfd pfd[2] = {{fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int rc = ::poll(pfd, 2, std::min(timeout, 1000));
    if (rc < 0 && errno != EINTR) break;
    if (pfd[1].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto n = ::read(wake_fd_.get(), &v, sizeof v);
    }
    if (pfd[0].revents & POLLIN) {
      for (int i = 0; i < 64; ++i) {
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n < 0) break;
        if (from.sin_addr.s_addr == src_) continue;  // our own (multicast loop)
        if (!peers_.empty() &&
            std::find(peers_.begin(), peers_.end(), from.sin_addr.s_addr) == peers_.end())
          continue;
        std::string why;
        auto a = decode_advert(buf, static_cast<size_t>(n), &why);
        if (!a) continue;
        if (a->vrid != cfg_.vrid) continue;
        a->sender.resize(4);
        std::memcpy(a->sender.data(), &from.sin_addr.s_addr, 4);
        received_.fetch_add(1);
        std::lock_guard lk(mu_);
        sm_->on_advert(now_ms(), *a);
      }
    }
    {
      std::lock_guard lk(mu_);
      sm_->tick(now_ms());
    }
    drain();
    if (garp_left_ > 0 && now_ms() >= garp_next_ms_) {
      if (state_.load() == VrrpState::Master && cfg_.manage_vips) {
        announce_vips();
        --garp_left_;
        garp_next_ms_ = now_ms() + static_cast<int64_t>(cfg_.garp_repeat_s * 1000);
      } else {
        garp_left_ = 0;
      }
    }
  }
  {
    std::lock_guard lk(mu_);
    if (graceful_.load()) sm_->shutdown(now_ms());
    else {
      // Crash-like stop: no priority-0 advert, but still leave the state.
      transitions_.emplace_back(sm_->state(), VrrpState::Init);
    }
  }
  drain();
}

}  // namespace vmstack::lb::ha
