// The fast path of xmlrpc::parse_response (see xmlrpc_scan.h). It must give
// exactly what the DOM decoder gives for every input it accepts; the codec
// tests compare the two on valid and hostile inputs.
#include "api/xmlrpc_scan.h"

#include "api/wire_util.h"

namespace vmstack::api::xmlrpc {

namespace {

using detail::kMaxDepth;

struct Fallback {};  // thrown to abandon the scan; never escapes this file

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  Value response() {
    ws();
    if (eat("<?xml")) {
      // Only a plain declaration, as servers write it: blanks after the name,
      // then printable ASCII up to "?>". pugixml refuses a NUL in it or
      // anything but a blank right after the name; skipping blindly to "?>"
      // once accepted what the DOM decoder refuses (found by fuzzing).
      if (i_ >= s_.size() || (s_[i_] != ' ' && s_[i_] != '\t' && s_[i_] != '\n')) throw Fallback{};
      auto end = s_.find("?>", i_);
      if (end == std::string_view::npos) throw Fallback{};
      for (std::size_t k = i_; k < end; ++k) {
        auto c = static_cast<unsigned char>(s_[k]);
        if ((c < 0x20 && c != '\t' && c != '\n') || c > 0x7E) throw Fallback{};
      }
      i_ = end + 2;
      ws();
    }
    expect("<methodResponse>");
    ws();
    expect("<params>");
    ws();
    expect("<param>");
    ws();
    Value v = value(0);
    ws();
    expect("</param>");
    ws();
    expect("</params>");
    ws();
    expect("</methodResponse>");
    ws();
    if (i_ != s_.size()) throw Fallback{};
    return v;
  }

 private:
  bool eat(std::string_view lit) {
    if (s_.compare(i_, lit.size(), lit) != 0) return false;
    i_ += lit.size();
    return true;
  }
  void expect(std::string_view lit) {
    if (!eat(lit)) throw Fallback{};
  }
  // Whitespace between elements, which the DOM decoder drops too.
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }

  // Character data up to the next '<', with XML's five entities and
  // numeric references decoded, as pugixml's parse_escapes does.
  std::string text() {
    std::string out;
    while (i_ < s_.size() && s_[i_] != '<') {
      std::size_t run = i_;
      while (run < s_.size() && s_[run] != '<' && s_[run] != '&' && s_[run] != '\r' && s_[run] != '\0') ++run;
      out.append(s_.substr(i_, run - i_));
      i_ = run;
      if (i_ >= s_.size() || s_[i_] == '<') break;
      if (s_[i_] != '&') throw Fallback{};  // '\r' (end-of-line rules) or NUL
      entity(out);
    }
    if (i_ >= s_.size()) throw Fallback{};  // text runs off the end: malformed
    return out;
  }
  void entity(std::string& out) {
    static constexpr std::pair<std::string_view, char> kNamed[] = {
        {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (const auto& [name, c] : kNamed)
      if (eat(name)) {
        out.push_back(c);
        return;
      }
    if (!eat("&#")) throw Fallback{};
    bool hex = eat("x");
    unsigned long cp = 0;
    std::size_t digits = 0;
    for (; i_ < s_.size() && s_[i_] != ';'; ++i_, ++digits) {
      char c = s_[i_];
      int d = c >= '0' && c <= '9' ? c - '0'
              : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
              : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                            : -1;
      if (d < 0 || digits > 8) throw Fallback{};
      cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(d);
    }
    expect(";");
    if (digits == 0 || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) throw Fallback{};
    append_utf8(out, static_cast<char32_t>(cp));
  }
  static void append_utf8(std::string& out, char32_t cp) {
    auto byte = [&](unsigned v) { out.push_back(static_cast<char>(v)); };
    if (cp < 0x80) {
      byte(cp);
    } else if (cp < 0x800) {
      byte(0xC0 | (cp >> 6));
      byte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      byte(0xE0 | (cp >> 12));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    } else {
      byte(0xF0 | (cp >> 18));
      byte(0x80 | ((cp >> 12) & 0x3F));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    }
  }
  static bool blank(const std::string& t) { return t.find_first_not_of(" \t\n") == std::string::npos; }

  // <value>: bare text (a string), or one typed element amid whitespace.
  Value value(int depth) {
    if (depth > kMaxDepth) throw Fallback{};
    if (eat("<value/>")) return Value(std::string());
    expect("<value>");
    std::string t = text();
    if (eat("</value>")) return Value(std::move(t));
    if (!blank(t)) throw Fallback{};
    Value v = typed(depth);
    ws();
    expect("</value>");
    return v;
  }

  // The text of a leaf element <tag>…</tag> (or <tag/>: empty).
  std::string leaf(std::string_view tag) {
    if (!eat("<") || !eat(tag)) throw Fallback{};
    if (eat("/>")) return {};
    expect(">");
    std::string t = text();
    if (!eat("</") || !eat(tag)) throw Fallback{};
    expect(">");
    return t;
  }
  // At "<tag>" or "<tag/>"? (Nothing consumed.)
  bool at(std::string_view tag) const {
    if (i_ >= s_.size() || s_[i_] != '<' || s_.compare(i_ + 1, tag.size(), tag) != 0) return false;
    std::size_t after = i_ + 1 + tag.size();
    return after < s_.size() && (s_[after] == '>' || s_.compare(after, 2, "/>") == 0);
  }

  Value typed(int depth) {
    if (eat("<struct>")) {
      Struct st;
      for (;;) {
        ws();
        if (eat("</struct>")) break;
        expect("<member>");
        ws();
        std::string name = leaf("name");
        ws();
        Value v = value(depth + 1);
        ws();
        expect("</member>");
        // Members usually arrive sorted (map order): the end hint makes this
        // O(1). A duplicate name: last wins, as in the DOM decoder.
        st.insert_or_assign(st.end(), std::move(name), std::move(v));
      }
      return Value(std::move(st));
    }
    if (eat("<struct/>")) return Value(Struct{});
    if (eat("<array>")) {
      Array a;
      ws();
      if (!eat("<data/>")) {
        expect("<data>");
        for (;;) {
          ws();
          if (eat("</data>")) break;
          a.push_back(value(depth + 1));
        }
      }
      ws();
      expect("</array>");
      return Value(std::move(a));
    }
    if (at("string")) return Value(leaf("string"));
    for (std::string_view tag : {"int", "i4", "i8"})
      if (at(tag)) {
        int64_t n = 0;
        if (!detail::parse_int(leaf(tag), n)) throw Fallback{};
        return Value(n);
      }
    if (at("boolean")) {
      std::string t = leaf("boolean");
      if (t == "1" || t == "true") return Value(true);
      if (t == "0" || t == "false") return Value(false);
      throw Fallback{};
    }
    if (at("double")) {
      double d = 0;
      if (!detail::parse_double(leaf("double"), d)) throw Fallback{};
      return Value(d);
    }
    if (at("dateTime.iso8601")) {
      DateTime dt;
      if (!detail::parse_xmlrpc_datetime(leaf("dateTime.iso8601"), dt)) throw Fallback{};
      return Value(dt);
    }
    if (eat("<nil/>")) return Value();
    throw Fallback{};  // base64, <nil></nil>, unknown types: the DOM decoder
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::optional<Value> scan_response_value(std::string_view body) {
  try {
    return Scanner(body).response();
  } catch (const Fallback&) {
    return std::nullopt;
  }
}

}  // namespace vmstack::api::xmlrpc
