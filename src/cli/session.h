// How xe talks to the daemon: an Rpc transport (one XenAPI call at a time)
// and a logged-in Session on top of it. Commands only ever see Session, so
// tests can drive them through any Rpc (the real api::Client against an
// in-process api::Server, or a direct dispatcher).
#pragma once

#include <memory>
#include <string>

#include "api/client.h"
#include "cli/args.h"
#include "core/value.h"

namespace vmstack::cli {

class Rpc {
 public:
  virtual ~Rpc() = default;
  // Returns the Value of a Success; throws ApiError on Failure (including the
  // transport's CONNECTION_FAILED / PROTOCOL_ERROR).
  virtual Value call(const std::string& method, const Array& params) = 0;
};

// The production transport: api::Client over the unix socket or TCP.
class ClientRpc : public Rpc {
 public:
  explicit ClientRpc(api::Endpoint ep) : ep_(ep), client_(std::move(ep)) {}
  Value call(const std::string& method, const Array& params) override { return client_.call(method, params); }
  const api::Endpoint& endpoint() const { return ep_; }

 private:
  api::Endpoint ep_;
  api::Client client_;
};

// Where to connect: TCP when a server is given, else the unix socket
// ($VMSTACK_SOCKET, or kDefaultSocket). `socket_env` is the value of
// VMSTACK_SOCKET (null when unset): passed in so nothing reads the
// environment behind the caller's back.
api::Endpoint endpoint_for(const ConnOptions& conn, const char* socket_env);

// The credentials to log in with. Reads -pwf files (throws CliError with
// xe's texts on failure). Over the local socket without credentials: root
// with an empty password, which vmstackd accepts from a uid-0 peer.
struct Credentials {
  std::string username;
  std::string password;
  bool explicit_username = false;  // selects xe's authentication error text
};
Credentials credentials_for(const ConnOptions& conn);

// A XenAPI session: logs in on construction (session.login_with_password
// user pass "1.0" "xe"), logs out on destruction, and passes its reference
// as the first parameter of every call.
class Session {
 public:
  Session(Rpc& rpc, const Credentials& creds);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Value call(const std::string& method, Array params = {});
  const std::string& ref() const { return ref_; }

 private:
  Rpc& rpc_;
  std::string ref_;
};

}  // namespace vmstack::cli
