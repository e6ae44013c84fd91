// message.*: notes for the administrator about an object (xapi's alerts),
// kept in the store and delivered through event.from like any object.
#pragma once

#include "model/store.h"

namespace vmstack::ops {

class Dispatcher;

void bind_messages(Dispatcher& d, model::Store& store);

}  // namespace vmstack::ops
