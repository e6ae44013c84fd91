// The small string helpers every component needs, written once: ASCII case
// folding and comparison, whitespace trimming, splitting and prefix tests.
// ASCII only on purpose: XenAPI names, enum values, interface names and
// config keys are ASCII, and locale-dependent folding would make a daemon
// behave differently under a different LANG.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vmstack {

std::string lower(std::string_view s);
std::string upper(std::string_view s);
// Case-insensitive (ASCII) equality.
bool iequal(std::string_view a, std::string_view b);
// Strips ASCII whitespace (space, \t, \n, \r, \f, \v) from both ends / one end.
std::string trim(std::string_view s);
std::string trim_right(std::string_view s);
std::string trim_left(std::string_view s);
// Splits on every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"};
// "" -> {""}).
std::vector<std::string> split(std::string_view s, char sep);
// Splits on runs of ASCII whitespace; no empty fields.
std::vector<std::string> split_words(std::string_view s);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s);
bool ends_with(std::string_view s, std::string_view suffix);

}  // namespace vmstack
