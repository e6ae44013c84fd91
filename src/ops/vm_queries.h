// VM queries (allowed devices, possible hosts, assert_*) and xapi's explicit
// setters of unguarded fields.
#pragma once

#include <string>

#include "model/store.h"

namespace vmstack::ops {

class Admission;
class Dispatcher;

// `host`: this host's ref (filled in before the daemon serves).
void bind_vm_queries(Dispatcher& d, model::Store& store, Admission& admission, const std::string& host);

}  // namespace vmstack::ops
