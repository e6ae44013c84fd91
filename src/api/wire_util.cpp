#include "api/wire_util.h"

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <boost/beast/core/error.hpp>

namespace vmstack::api::detail {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
std::size_t utf8_seq_len(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = s.size() - i;
  auto cont = [&](std::size_t k) { return k < n && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Shared scanner: `special(c)` says whether an ASCII byte needs `emit`.
template <class Special, class Emit>
void append_escaped(std::string& out, std::string_view s, Special special, Emit emit, bool xml) {
  out.reserve(out.size() + s.size());
  std::size_t run = 0;  // start of the pending verbatim run
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (special(c)) {
        out.append(s.data() + run, i - run);
        emit(out, c);
        run = ++i;
      } else {
        ++i;
      }
      continue;
    }
    std::size_t len = utf8_seq_len(s, i);
    bool bad = len == 0;
    // U+FFFE / U+FFFF are not XML characters.
    if (!bad && xml && len == 3 && c == 0xEF && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
        static_cast<unsigned char>(s[i + 2]) >= 0xBE)
      bad = true;
    if (bad) {
      out.append(s.data() + run, i - run);
      out.append(kReplacement);
      i += len == 0 ? 1 : len;
      run = i;
    } else {
      i += len;
    }
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace

void append_xml_escaped(std::string& out, std::string_view s) {
  append_escaped(
      out, s, [](unsigned char c) { return c == '&' || c == '<' || c == '>' || c == '"' || c < 0x20; },
      [](std::string& o, unsigned char c) {
        switch (c) {
          case '&': o.append("&amp;"); break;
          case '<': o.append("&lt;"); break;
          case '>': o.append("&gt;"); break;
          case '"': o.append("&quot;"); break;
          case '\t': o.push_back('\t'); break;
          case '\n': o.push_back('\n'); break;
          case '\r': o.append("&#13;"); break;  // a literal CR would be normalised away
          default: break;                       // other C0 controls: not representable in XML 1.0
        }
      },
      true);
}

void append_json_escaped(std::string& out, std::string_view s) {
  append_escaped(
      out, s, [](unsigned char c) { return c == '"' || c == '\\' || c < 0x20; },
      [](std::string& o, unsigned char c) {
        switch (c) {
          case '"': o.append("\\\""); break;
          case '\\': o.append("\\\\"); break;
          case '\n': o.append("\\n"); break;
          case '\r': o.append("\\r"); break;
          case '\t': o.append("\\t"); break;
          case '\b': o.append("\\b"); break;
          case '\f': o.append("\\f"); break;
          default: {
            static constexpr char hex[] = "0123456789abcdef";
            char buf[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            o.append(buf, 6);
          }
        }
      },
      false);
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_double(std::string& out, double d, bool json) {
  if (json && !std::isfinite(d)) {
    out.append("null");
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view sv(buf, static_cast<std::size_t>(r.ptr - buf));
  out.append(sv);
  if (json && sv.find_first_of(".eE") == std::string_view::npos) out.append(".0");
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}
}  // namespace

bool decode_base64(std::string_view s, std::string& out) {
  unsigned buf = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    else return false;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return true;
}

bool parse_int(std::string_view s, int64_t& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

ssize_t recv_polling(int fd, void* p, std::size_t n, std::chrono::steady_clock::time_point until,
                     const std::atomic<bool>* give_up) {
  for (;;) {
    ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return r;
    sched_yield();  // a runnable thread (a worker, a guest's vCPU) goes first
    if (std::chrono::steady_clock::now() >= until || (give_up && give_up->load(std::memory_order_relaxed))) {
      errno = EAGAIN;
      return -1;
    }
  }
}

ssize_t FdStream::poll_then_read(void* p, std::size_t n) {
  using clock = std::chrono::steady_clock;
  if (poll_.count() > 0 && quick_ && *quick_) {
    ssize_t r = recv_polling(fd_, p, n, clock::now() + poll_);
    if (r >= 0 || errno != EAGAIN) return r;
    *quick_ = false;
  }
  const auto asleep = clock::now();
  ssize_t r = ::read(fd_, p, n);
  if (quick_ && r > 0 && !*quick_) *quick_ = clock::now() - asleep < poll_;
  return r;
}

std::size_t FdStream::read_raw(void* p, std::size_t n, boost::system::error_code& ec) {
  for (;;) {
    ssize_t r = poll_then_read(p, n);
    if (r > 0) {
      ec = {};
      return static_cast<std::size_t>(r);
    }
    if (r == 0) {
      ec = boost::asio::error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    ec = boost::system::error_code(errno, boost::system::system_category());
    return 0;
  }
}

bool send_all(int fd, std::string_view a, std::string_view b, int flags) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  int idx = 0, cnt = b.empty() ? 1 : 2;
  while (idx < cnt) {
    msghdr msg{};
    msg.msg_iov = iov + idx;
    msg.msg_iovlen = static_cast<std::size_t>(cnt - idx);
    ssize_t r = ::sendmsg(fd, &msg, MSG_NOSIGNAL | flags);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<std::size_t>(r);
    while (idx < cnt && left >= iov[idx].iov_len) {
      left -= iov[idx].iov_len;
      ++idx;
    }
    if (idx < cnt) {
      iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
      iov[idx].iov_len -= left;
    }
  }
  return true;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// XML-RPC's dateTime.iso8601 as clients really send it: 20261123T10:58:15
// (Python's xmlrpc.client), the same with a trailing Z (xapi), the extended
// 2026-11-23T10:58:15Z form, or 20261123T105815; fractional seconds are
// ignored. All are taken as UTC. Checked strictly, field by field, so junk
// cannot slip through as a normalised-but-wrong time.
bool parse_xmlrpc_datetime(std::string_view s, DateTime& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  std::size_t i = 0;
  auto digits = [&](int n, int& v) {
    v = 0;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  auto opt = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int Y, M, D, h, m, sec;
  if (!digits(4, Y)) return false;
  bool dashes = opt('-');
  if (!digits(2, M) || (dashes && !opt('-')) || !digits(2, D) || !opt('T')) return false;
  if (!digits(2, h)) return false;
  bool colons = opt(':');
  if (!digits(2, m) || (colons && !opt(':')) || !digits(2, sec)) return false;
  if (opt('.')) {
    int frac_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
    if (frac_digits == 0) return false;
  }
  opt('Z');
  if (i != s.size()) return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (M < 1 || M > 12 || D < 1 || D > kDays[M - 1] || h > 23 || m > 59 || sec > 60) return false;
  char canon[64];  // ample: the fields are range-checked above, but the compiler cannot know
  std::snprintf(canon, sizeof canon, "%04d%02d%02dT%02d:%02d:%02dZ", Y, M, D, h, m, sec);
  return DateTime::parse(canon, out);
}

}  // namespace vmstack::api::detail
