#include "api/http_transfer.h"

#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "api/wire_util.h"
#include "core/strings.h"

namespace vmstack::api {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr std::size_t kMaxChunkLine = 4096;  // a chunk-size line with extensions, or a trailer

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::string_view target_path(std::string_view target) { return target.substr(0, target.find('?')); }

std::string query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto eq = part.find('=');
    if (part.substr(0, eq) != key) continue;
    if (eq == std::string_view::npos) return {};
    std::string_view v = part.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      int hi = 0, lo = 0;
      if (v[i] == '%' && i + 2 < v.size() && (hi = hex_digit(v[i + 1])) >= 0 && (lo = hex_digit(v[i + 2])) >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        out.push_back(v[i] == '+' ? ' ' : v[i]);
      }
    }
    return out;
  }
  return {};
}

std::string cookie_value(const HttpRequest& rq, std::string_view name) {
  for (const auto& [k, v] : rq.headers) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view part = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      auto eq = part.find('=');
      if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    }
  }
  return {};
}

std::optional<std::pair<std::string, std::string>> basic_credentials(const HttpRequest& rq) {
  std::string auth = rq.header("authorization");
  if (auth.size() < 6 || !iequal(std::string_view(auth).substr(0, 6), "basic ")) return std::nullopt;
  std::string decoded;
  if (!detail::decode_base64(std::string_view(auth).substr(6), decoded)) return std::nullopt;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

HttpBodyReader::HttpBodyReader(int fd, HttpRequest& rq) : fd_(fd), pending_(std::move(rq.buffered)) {
  rq.buffered.clear();
  std::string te = rq.header("transfer-encoding");
  chunked_ = !te.empty() && iequal(std::string_view(te).substr(te.size() >= 7 ? te.size() - 7 : 0), "chunked");
  if (!chunked_) {
    std::string cl = rq.header("content-length");
    if (!cl.empty()) {
      std::uint64_t v = 0;
      for (char c : cl) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) throw std::runtime_error("bad Content-Length: " + cl);
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      length_ = v;
      done_ = v == 0;
    } else if (rq.method == "GET" || rq.method == "HEAD") {
      done_ = true;  // no body unless one is framed
    }
  }
}

std::size_t HttpBodyReader::raw_read(char* buf, std::size_t n) {
  if (pending_pos_ < pending_.size()) {
    std::size_t k = std::min(n, pending_.size() - pending_pos_);
    std::memcpy(buf, pending_.data() + pending_pos_, k);
    pending_pos_ += k;
    if (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
    }
    return k;
  }
  for (;;) {
    ssize_t r = ::recv(fd_, buf, n, 0);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) throw std::runtime_error("the client stopped sending");
    throw std::runtime_error(std::string("reading the body: ") + std::strerror(errno));
  }
}

bool HttpBodyReader::raw_line(std::string& line) {
  line.clear();
  char c = 0;
  while (line.size() < kMaxChunkLine) {
    if (raw_read(&c, 1) == 0) return false;
    if (c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    }
    line.push_back(c);
  }
  throw std::runtime_error("chunked body: line too long");
}

std::size_t HttpBodyReader::read(char* buf, std::size_t n) {
  if (done_ || n == 0) return 0;
  if (!chunked_) {
    std::size_t want = n;
    if (length_) want = static_cast<std::size_t>(std::min<std::uint64_t>(n, *length_ - consumed_));
    std::size_t got = raw_read(buf, want);
    if (got == 0) {
      if (length_) throw std::runtime_error("the client left after " + std::to_string(consumed_) + " of " +
                                            std::to_string(*length_) + " bytes");
      done_ = true;  // close-delimited: the client's end is the body's
      return 0;
    }
    consumed_ += got;
    if (length_ && consumed_ == *length_) done_ = true;
    return got;
  }
  std::string line;
  if (chunk_left_ == 0) {
    if (!raw_line(line)) throw std::runtime_error("chunked body: the client left before its last chunk");
    std::uint64_t size = 0;
    std::size_t i = 0;
    for (; i < line.size() && hex_digit(line[i]) >= 0; ++i) {
      if (size >> 60) throw std::runtime_error("chunked body: chunk too large");
      size = size * 16 + static_cast<std::uint64_t>(hex_digit(line[i]));
    }
    if (i == 0 || (i < line.size() && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
      throw std::runtime_error("chunked body: bad chunk size line");
    if (size == 0) {
      // Trailers (ignored) up to the empty line.
      for (;;) {
        if (!raw_line(line)) throw std::runtime_error("chunked body: the client left in its trailer");
        if (line.empty()) break;
      }
      done_ = true;
      return 0;
    }
    chunk_left_ = size;
  }
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk_left_));
  std::size_t got = raw_read(buf, want);
  if (got == 0) throw std::runtime_error("chunked body: the client left inside a chunk");
  chunk_left_ -= got;
  consumed_ += got;
  if (chunk_left_ == 0) {
    if (!raw_line(line) || !line.empty()) throw std::runtime_error("chunked body: a chunk does not end with CRLF");
  }
  return got;
}

void send_continue(int fd, const HttpRequest& rq) {
  if (iequal(rq.header("expect"), "100-continue")) detail::send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
}

bool send_head(int fd, int code, std::string_view reason, const HttpHeaders& headers,
               std::optional<std::uint64_t> length) {
  std::string h = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  for (const auto& [k, v] : headers) h += k + ": " + v + "\r\n";
  if (length) h += "Content-Length: " + std::to_string(*length) + "\r\n";
  h += "Connection: close\r\n\r\n";
  return detail::send_all(fd, h);
}

bool send_text(int fd, int code, std::string_view reason, std::string_view body, const HttpHeaders& headers) {
  HttpHeaders h = headers;
  h.emplace_back("Content-Type", "text/plain; charset=utf-8");
  return send_head(fd, code, reason, h, body.size()) && detail::send_all(fd, body);
}

}  // namespace vmstack::api
