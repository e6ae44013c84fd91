// xe's output layout. A record prints one "name ( RO): value" line per field
// with the names right-aligned (the first line left-aligned) and a blank
// line after it; --minimal prints only the first field of every record (or
// every list item), comma-separated on one line, the last printed first (as
// xapi's printer, which prepends each to its buffer).
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace vmstack::cli {

using PrintedRecord = std::vector<std::pair<std::string, std::string>>;

// The text of one record, newline-terminated (no trailing blank line).
std::string format_record(const PrintedRecord& r);

class Printer {
 public:
  Printer(std::ostream& out, bool minimal) : out_(out), minimal_(minimal) {}
  // Not flushed on destruction: xe prints nothing of a --minimal command
  // that failed half-way.
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  void table(const std::vector<PrintedRecord>& records);
  void list(const std::vector<std::string>& lines);
  void line(const std::string& s) { list({s}); }
  // Text for a reader, not a result ("Disk 0 VBD:"): --minimal leaves it out,
  // as xapi's printer drops its PMsg.
  void message(const std::string& s);
  // Minimal mode prints everything at the end, on one line: call once the
  // command succeeded.
  void flush();
  bool minimal() const { return minimal_; }

 private:
  std::ostream& out_;
  bool minimal_;
  bool flushed_ = false;
  std::vector<std::string> buffer_;
};

// "a,b" -> "a\,b" (and "\" -> "\\"), so --minimal output can be split on ','.
std::string escape_commas(const std::string& s);

}  // namespace vmstack::cli
