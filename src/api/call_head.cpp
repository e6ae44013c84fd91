// Reading a call's method and first parameter from the start of its body,
// before the rest has arrived (see call_head.h). Never throws on input.
#include "api/call_head.h"

#include <nlohmann/json.hpp>

namespace vmstack::api {

namespace {

// A cursor over the XML prefix. `more` is set when the prefix ended before
// the construct being read did.
class XmlCursor {
 public:
  explicit XmlCursor(std::string_view s) : s_(s) {}
  bool more = false;

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  // True and consumed when the text continues with `lit`; a prefix of it at
  // the very end sets `more`.
  bool eat(std::string_view lit) {
    std::string_view rest = s_.substr(i_);
    if (rest.size() < lit.size()) {
      if (lit.substr(0, rest.size()) == rest) more = true;
      return false;
    }
    if (rest.substr(0, lit.size()) != lit) return false;
    i_ += lit.size();
    return true;
  }
  std::size_t pos() const { return i_; }
  void seek(std::size_t i) { i_ = i; }
  // Skips `<?xml ... ?>`.
  bool declaration() {
    if (!eat("<?xml")) return !more;
    auto end = s_.find("?>", i_);
    if (end == std::string_view::npos) {
      more = true;
      return false;
    }
    i_ = end + 2;
    return true;
  }
  // Character data up to the next '<', with the five named entities
  // decoded; false for anything else ('&#', CDATA) or when the prefix ends.
  bool text(std::string& out) {
    auto end = s_.find('<', i_);
    if (end == std::string_view::npos) {
      more = true;
      return false;
    }
    out.clear();
    for (std::size_t j = i_; j < end; ++j) {
      if (s_[j] != '&') {
        out.push_back(s_[j]);
        continue;
      }
      static constexpr std::pair<std::string_view, char> kEntities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool known = false;
      for (auto [name, ch] : kEntities) {
        if (s_.compare(j, name.size(), name) == 0) {
          out.push_back(ch);
          j += name.size() - 1;
          known = true;
          break;
        }
      }
      if (!known) return false;
    }
    i_ = end;
    return true;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

// Builds nothing: watches the SAX events of the top-level object for
// "method" and the first element of "params".
class HeadWatcher {
 public:
  using json = nlohmann::json;
  CallHead& head;
  bool params_decided = false;
  bool object_done = false;
  bool syntax_error = false;
  HeadWatcher(CallHead& h, std::size_t n) : head(h), size_(n) {}

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool string(json::string_t& s) {
    if (depth_ == 1 && key_ == "method") head.method = s;
    if (first_param_slot()) head.first_param = s;
    return value();
  }
  bool start_object(std::size_t) {
    value();  // e.g. JSON-RPC v2 named params: no session there
    ++depth_;
    return true;
  }
  bool start_array(std::size_t) {
    bool params = depth_ == 1 && key_ == "params";
    value();
    ++depth_;
    if (params) {
      in_params_ = true;
      params_decided = false;  // decided by its first element, or by its end
    }
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() {
    if (in_params_ && depth_ == 2) params_decided = true;  // "params": [] has no session
    return close();
  }
  bool key(json::string_t& k) {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception&) {
    // Running out of prefix is not an error: more may come. nlohmann counts
    // the end of input as a character read, so a cut-off prefix fails at
    // size + 1 and a real syntax error at or before `size`.
    syntax_error = pos <= size_;
    return false;
  }

 private:
  bool first_param_slot() const { return in_params_ && depth_ == 2 && !params_decided; }
  // Any value starting: the first one inside "params" decides it, and a
  // "params" that is not an array has no session.
  bool value() {
    if (first_param_slot() || (depth_ == 1 && key_ == "params")) params_decided = true;
    return true;
  }
  bool close() {
    --depth_;
    if (depth_ == 1) in_params_ = false;
    if (depth_ == 0) object_done = true;
    return true;
  }
  std::size_t size_;
  int depth_ = 0;
  bool in_params_ = false;
  std::string key_;
};

}  // namespace

HeadScan scan_xmlrpc_head(std::string_view prefix, CallHead& head) {
  XmlCursor x(prefix);
  auto verdict = [&] { return x.more ? HeadScan::need_more : HeadScan::unreadable; };
  x.ws();
  if (!x.declaration()) return verdict();
  x.ws();
  if (!x.eat("<methodCall>")) return verdict();
  x.ws();
  if (!x.eat("<methodName>")) return verdict();
  std::string method;
  if (!x.text(method)) return verdict();
  if (!x.eat("</methodName>")) return verdict();
  x.ws();
  head.method = method;
  head.first_param.reset();
  if (x.eat("</methodCall>") || x.eat("<params/>")) return HeadScan::found;
  if (!x.eat("<params>")) return verdict();
  x.ws();
  if (x.eat("</params>")) return HeadScan::found;
  if (!x.eat("<param>")) return verdict();
  x.ws();
  if (!x.eat("<value>")) return verdict();
  std::string s;
  const std::size_t value_start = x.pos();
  x.ws();
  if (x.eat("<string>")) {
    if (!x.text(s)) return verdict();
    if (!x.eat("</string>")) return verdict();
    head.first_param = std::move(s);
    return HeadScan::found;
  }
  if (x.more) return HeadScan::need_more;
  x.seek(value_start);  // bare text keeps its whitespace
  if (!x.text(s)) return verdict();
  if (x.eat("</value>")) {
    head.first_param = std::move(s);  // bare text is a string
    return HeadScan::found;
  }
  if (x.more) return HeadScan::need_more;
  // Another type (<int>, <nil/>, <struct>...): the call has no string first
  // parameter, which is all we need to know.
  return HeadScan::found;
}

HeadScan scan_jsonrpc_head(std::string_view prefix, CallHead& head) {
  head.method.clear();
  head.first_param.reset();
  HeadWatcher w(head, prefix.size());
  try {
    nlohmann::json::sax_parse(prefix.begin(), prefix.end(), &w);
  } catch (const std::exception&) {
    return HeadScan::unreadable;
  }
  if (w.syntax_error) return HeadScan::unreadable;
  if (w.params_decided || w.object_done) return HeadScan::found;
  return HeadScan::need_more;
}

}  // namespace vmstack::api
