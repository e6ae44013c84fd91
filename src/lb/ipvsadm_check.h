// Internal to the ipvsadm code (parser, JSON reader, validator): ipvsadm's
// option-legality table and the limits of every numeric field, kept in one
// place so the CLI and vmstack-lbd's control socket refuse the same values
// with the same messages. The public entry point is validate_command() in
// lb/ipvsadm.h.
#pragma once

#include <string>
#include <string_view>

#include "lb/ipvsadm.h"

namespace vmstack::lb::detail {

// Option bits in ipvsadm's order (its commands_v_options columns).
enum OptBit : int {
  kNumeric, kConnection, kService, kScheduler, kPersistent, kNetmask, kServer, kForward,
  kWeight, kUThreshold, kLThreshold, kMcast, kTimeout, kDaemon, kStats, kRate, kThresholds,
  kPersistentConn, kNoSort, kSyncId, kExact, kOps, kNumOpts
};
const char* option_name(int bit);  // "service-address", ... as ipvsadm names them

// ipvsadm's check of which options a command needs, allows or refuses.
// Returns its message, or "" when `options` (OptBit bits) are legal for op.
std::string option_error(Op op, unsigned options);

// The numeric fields and their limits (ipvsadm's, plus what the field's
// type can hold).
enum class Num {
  PersistTimeout,  // -p: 1 .. 31 days
  Timeout,         // --set tcp tcpfin udp: 0 .. 31 days
  Netmask,         // -M on an IPv4 service: a 32-bit mask
  V6Prefix,        // -M on an IPv6 service: 1 .. 128
  Weight,          // -w: 0 .. 65535
  UThreshold,      // -x: 0 .. INT_MAX
  LThreshold,      // -y: 0 .. INT_MAX
  SyncId,          // --syncid: 0 .. 255
};
bool num_ok(Num f, long long v);
// The CLI's message for a bad value; `text` is the value as it was written.
std::string num_error(Num f, std::string_view text);

}  // namespace vmstack::lb::detail
