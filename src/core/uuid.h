// Random (version 4) UUIDs and XenAPI opaque references.
#pragma once
#include <string>
#include <string_view>

namespace vmstack {
std::string make_uuid();                       // "6f1c…-…"
std::string make_ref();                        // "OpaqueRef:<uuid>"
bool looks_like_uuid(std::string_view s);
inline constexpr std::string_view kNullRef = "OpaqueRef:NULL";
}  // namespace vmstack
