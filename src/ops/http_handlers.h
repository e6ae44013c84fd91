// xapi's HTTP handlers beside the RPC endpoint: /import_raw_vdi and
// /export_raw_vdi move a disk's bytes; /export, /import (XVA) and the RRD
// handlers (/rrd_updates, /vm_rrd, /host_rrd) are routed, authenticated and
// tasked the same way and answer NOT_IMPLEMENTED until the storage and
// monitoring work gives them something to move.
//
// Every handler authenticates as xapi's do: `session_id=` in the query or
// a session_id cookie, else HTTP basic auth (a login for the request's
// length); without credentials, 401 with a Basic challenge. Its work is a
// task: the client's own (`task_id=`, made with task.create, whose
// progress, status and result the handler then writes) or one of its own;
// the answer carries it in a Task-id header, as xapi's.
#pragma once

#include <string>

#include "api/server.h"
#include "model/store.h"

namespace vmstack::ops {

class Sessions;
class Storage;
class Tasks;

class HttpHandlers {
 public:
  // Uploads and exports are staged in `tmp_dir` (emptied here: anything in
  // it is from a daemon that died mid-transfer).
  HttpHandlers(model::Store& store, Sessions& sessions, Tasks& tasks, Storage& storage, std::string tmp_dir);
  void add_routes(api::Server& server);

  struct Exchange;  // one request being served (http_handlers.cpp)

 private:
  void serve(api::HttpRequest& rq, int fd, const char* what, Value (HttpHandlers::*handler)(Exchange&));
  // Each returns the task's result.
  Value import_raw_vdi(Exchange& x);
  Value export_raw_vdi(Exchange& x);
  std::string resolve_vdi(const std::string& given) const;

  model::Store& store_;
  Sessions& sessions_;
  Tasks& tasks_;
  Storage& storage_;
  std::string tmp_dir_;
};

}  // namespace vmstack::ops
