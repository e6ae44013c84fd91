#include "lb/vrrp.h"

#include <algorithm>
#include <cstring>

namespace vmstack::lb::ha {

const char* to_string(VrrpState s) {
  switch (s) {
    case VrrpState::Init: return "INIT";
    case VrrpState::Backup: return "BACKUP";
    case VrrpState::Master: return "MASTER";
  }
  return "?";
}

namespace {
uint16_t inet_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t(p[i]) << 8) | p[i + 1];
  if (n & 1) sum += uint32_t(p[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
}  // namespace

std::vector<uint8_t> encode_advert(const VrrpAdvert& a) {
  size_t n = std::min<size_t>(a.addrs.size(), 255);
  std::vector<uint8_t> b(8 + 4 * n, 0);
  b[0] = (3 << 4) | 1;
  b[1] = a.vrid;
  b[2] = a.priority;
  b[3] = static_cast<uint8_t>(n);
  uint16_t iv = a.interval_cs & 0x0fff;
  b[4] = static_cast<uint8_t>(iv >> 8);
  b[5] = static_cast<uint8_t>(iv & 0xff);
  for (size_t i = 0; i < n; ++i) std::memcpy(&b[8 + 4 * i], &a.addrs[i], 4);
  uint16_t ck = inet_checksum(b.data(), b.size());
  b[6] = static_cast<uint8_t>(ck >> 8);
  b[7] = static_cast<uint8_t>(ck & 0xff);
  return b;
}

std::optional<VrrpAdvert> decode_advert(const uint8_t* d, size_t len, std::string* why) {
  auto bad = [&](const char* w) -> std::optional<VrrpAdvert> {
    if (why) *why = w;
    return std::nullopt;
  };
  if (len < 8) return bad("short packet");
  if ((d[0] >> 4) != 3) return bad("not VRRP version 3");
  if ((d[0] & 0x0f) != 1) return bad("not an ADVERTISEMENT");
  size_t n = d[3];
  if (len != 8 + 4 * n) return bad("length does not match address count");
  if (inet_checksum(d, len) != 0) return bad("bad checksum");
  VrrpAdvert a;
  a.vrid = d[1];
  a.priority = d[2];
  a.interval_cs = static_cast<uint16_t>(((d[4] & 0x0f) << 8) | d[5]);
  if (a.interval_cs == 0) return bad("zero advertisement interval");
  for (size_t i = 0; i < n; ++i) {
    uint32_t v;
    std::memcpy(&v, d + 8 + 4 * i, 4);
    a.addrs.push_back(v);
  }
  return a;
}

VrrpStateMachine::VrrpStateMachine(Config cfg, Actions act)
    : cfg_(std::move(cfg)), act_(std::move(act)), master_adver_int_cs_(cfg_.advert_int_cs) {
  if (cfg_.advert_int_cs == 0) cfg_.advert_int_cs = master_adver_int_cs_ = 1;
}

VrrpStateMachine::Ms VrrpStateMachine::skew_ms() const {
  // (256 - Priority) * Master_Adver_Interval / 256, in ms.
  return (static_cast<Ms>(256 - cfg_.priority) * master_adver_int_cs_ * 10) / 256;
}

VrrpStateMachine::Ms VrrpStateMachine::master_down_interval_ms() const {
  return 3 * static_cast<Ms>(master_adver_int_cs_) * 10 + skew_ms();
}

void VrrpStateMachine::become(VrrpState s) {
  if (s == state_) return;
  VrrpState from = state_;
  state_ = s;
  if (act_.state_change) act_.state_change(from, s);
}

void VrrpStateMachine::send(uint8_t prio) {
  if (act_.send_advert) act_.send_advert(prio);
}

void VrrpStateMachine::set_priority(uint8_t p) { cfg_.priority = p == 0 ? 1 : p; }

void VrrpStateMachine::startup(Ms now) {
  if (state_ != VrrpState::Init) return;
  if (cfg_.priority == 255) {
    send(cfg_.priority);
    adver_timer_ = now + Ms(cfg_.advert_int_cs) * 10;
    master_down_timer_.reset();
    become(VrrpState::Master);
  } else {
    master_adver_int_cs_ = cfg_.advert_int_cs;
    master_down_timer_ = now + master_down_interval_ms();
    adver_timer_.reset();
    become(VrrpState::Backup);
  }
}

void VrrpStateMachine::shutdown(Ms) {
  if (state_ == VrrpState::Master) send(0);
  adver_timer_.reset();
  master_down_timer_.reset();
  become(VrrpState::Init);
}

void VrrpStateMachine::on_advert(Ms now, const VrrpAdvert& a) {
  if (a.vrid != cfg_.vrid) return;
  if (state_ == VrrpState::Backup) {
    if (a.priority == 0) {
      // The master is leaving: take over after Skew_Time only.
      master_down_timer_ = now + skew_ms();
    } else if (!cfg_.preempt || a.priority >= cfg_.priority) {
      master_adver_int_cs_ = a.interval_cs;
      master_down_timer_ = now + master_down_interval_ms();
    }
    // else: a lower-priority master and we preempt: ignore it and let the
    // master down timer make us master.
  } else if (state_ == VrrpState::Master) {
    if (a.priority == 0) {
      // Another router is shutting down: assert ourselves at once.
      send(cfg_.priority);
      adver_timer_ = now + Ms(cfg_.advert_int_cs) * 10;
    } else if (a.priority > cfg_.priority ||
               (a.priority == cfg_.priority && a.sender > cfg_.self_addr)) {
      adver_timer_.reset();
      master_adver_int_cs_ = a.interval_cs;
      master_down_timer_ = now + master_down_interval_ms();
      become(VrrpState::Backup);
    }
    // else: discard (we stay master; our next advert makes the other back off)
  }
}

void VrrpStateMachine::tick(Ms now) {
  if (state_ == VrrpState::Backup && master_down_timer_ && now >= *master_down_timer_) {
    master_down_timer_.reset();
    send(cfg_.priority);
    adver_timer_ = now + Ms(cfg_.advert_int_cs) * 10;
    become(VrrpState::Master);
    return;
  }
  if (state_ == VrrpState::Master && adver_timer_ && now >= *adver_timer_) {
    send(cfg_.priority);
    adver_timer_ = now + Ms(cfg_.advert_int_cs) * 10;
  }
}

std::optional<VrrpStateMachine::Ms> VrrpStateMachine::next_deadline() const {
  if (state_ == VrrpState::Backup) return master_down_timer_;
  if (state_ == VrrpState::Master) return adver_timer_;
  return std::nullopt;
}

}  // namespace vmstack::lb::ha
