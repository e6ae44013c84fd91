#include "cli/printer.h"

#include <algorithm>

namespace vmstack::cli {

std::string format_record(const PrintedRecord& r) {
  size_t width = 0;
  for (const auto& [k, v] : r) width = std::max(width, k.size());
  width += 4;
  std::string out;
  for (size_t i = 0; i < r.size(); ++i) {
    const auto& [k, v] = r[i];
    std::string pad(width > k.size() ? width - k.size() : 0, ' ');
    // The first name is left-aligned, the rest right-aligned: the colons
    // line up under the first one.
    out += i == 0 ? k + pad : pad + k;
    out += ": " + v + "\n";
  }
  return out;
}

std::string escape_commas(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void Printer::table(const std::vector<PrintedRecord>& records) {
  if (minimal_) {
    if (records.empty() || records.front().empty()) return;
    std::string joined;
    for (size_t i = 0; i < records.size(); ++i) {
      if (i) joined += ",";
      joined += records[i].empty() ? "" : escape_commas(records[i].front().second);
    }
    buffer_.push_back(std::move(joined));
    return;
  }
  for (const auto& r : records) out_ << format_record(r) << "\n";
  out_.flush();
}

void Printer::list(const std::vector<std::string>& lines) {
  if (minimal_) {
    std::string joined;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) joined += ",";
      joined += escape_commas(lines[i]);
    }
    buffer_.push_back(std::move(joined));
    return;
  }
  for (const auto& l : lines) out_ << l << "\n";
  out_.flush();
}

void Printer::message(const std::string& s) {
  if (minimal_) return;
  out_ << s << "\n";
  out_.flush();
}

void Printer::flush() {
  if (!minimal_ || flushed_) return;
  flushed_ = true;
  std::string joined;
  for (auto it = buffer_.rbegin(); it != buffer_.rend(); ++it) {
    if (!joined.empty() || it != buffer_.rbegin()) joined += ",";
    joined += *it;
  }
  out_ << joined << "\n";
  out_.flush();
}

}  // namespace vmstack::cli
