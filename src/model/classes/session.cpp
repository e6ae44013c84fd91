// session, event and task: the classes that live in memory only.
#include "model/declare.h"

namespace vmstack::model::declare {

namespace {

ClassDef session_class() {
  ClassDef c = cls("session", "A session", "session",
             {
                 uuid(),
                 ro("this_host", ref("host"), "Currently connected host"),
                 ro("last_active", datetime(), "Timestamp for last time session was active"),
                 ro("pool", boolean(), "True if this session relates to a intra-pool login, false otherwise"),
                 ro("is_local_superuser", boolean(), "true iff this session was created using local superuser credentials"),
                 ro("auth_user_name", str(), "the user name of the session's authenticated user"),
                 ro("originator", str(), "the originator of the session (client identifier)"),
                 ro("this_user", ref("user"), "Currently connected user"),
                 ro("subject", ref("subject"), "references the subject instance that created the session. If a session instance has is_local_superuser set, then the value of this field is undefined."),
                 ro("validation_time", datetime(), "time when session was last validated"),
                 ro("auth_user_sid", str(), "the subject identifier of the user that was externally authenticated. If a session instance has is_local_superuser set, then the value of this field is undefined."),
                 ro("rbac_permissions", set_str(), "list with all RBAC permissions for this session (empty: vmstack has no RBAC; every session may call everything)"),
                 ro("tasks", set_ref("task"), "list of tasks created using the current session (vmstack does not track this: empty)"),
                 ro("parent", ref("session"), "references the parent session that created this session"),
                 other_config(),
             },
             {
                 Msg("login_with_password", "Attempt to authenticate the user, returning a session reference if successful")
                     .param(str(), "uname", "Username for login.")
                     .param(str(), "pwd", "Password for login.")
                     .param(str(), "version", "Client API version.", "1.1")
                     .param(str(), "originator", "Key string for distinguishing different API users sharing the same login name.", "")
                     .returns(ref("session"))
                     .errors({"SESSION_AUTHENTICATION_FAILED"})
                     .no_session()
                     .no_async(),
                 Msg("slave_local_login_with_password",
                     "Authenticate locally (accepted from clients of older API versions; the same as login_with_password)")
                     .param(str(), "uname", "Username for login.")
                     .param(str(), "pwd", "Password for login.")
                     .returns(ref("session"))
                     .errors({"SESSION_AUTHENTICATION_FAILED"})
                     .no_session()
                     .no_async(),
                 Msg("logout", "Log out of a session").no_async(),
                 Msg("local_logout", "Log out of local session.").no_async(),
                 Msg("get_all_subject_identifiers", "Return a list of all the user subject-identifiers of all existing "
                                                    "sessions (none here: no external directory)")
                     .returns(set_str()),
                 Msg("logout_subject_identifier", "Log out all sessions associated to a user subject-identifier, except "
                                                  "the session associated with the context calling this function")
                     .param(str(), "subject_identifier", "User subject-identifier of the sessions to be destroyed"),
                 Msg("change_password",
                     "Change the account password of the session's user; the old password is checked unless the "
                     "session is the local superuser's")
                     .param(str(), "old_pwd", "Old password for account")
                     .param(str(), "new_pwd", "New password for account")
                     .errors({"SESSION_AUTHENTICATION_FAILED", "INVALID_VALUE"})
                     .no_async(),
             });
  // As xapi: no get_all / get_all_records (a session reference is a
  // credential; xapi lists session among none of its get_all classes).
  c.get_all = false;
  return c;
}

ClassDef event_class() {
  ClassDef c = cls("event", "Asynchronous event registration and handling", "event",
                   {
                       ro("id", i64(), "An ID, monotonically increasing, and local to the current session"),
                       ro("timestamp", datetime(), "The time at which the event occurred"),
                       ro("class", str(), "The name of the class of the object that changed"),
                       ro("operation", en("event_operation"), "The operation that was performed"),
                       ro("ref", str(), "A reference to the object that changed"),
                       ro("obj_uuid", str(), "The uuid of the object that changed"),
                       ro("snapshot", any(), "The record of the database object that was added, changed or deleted"),
                   },
                   {
                       Msg("register", "Registers this session with the event system for a set of given classes "
                                       "(legacy, for event.next); * registers for all classes")
                           .param(set_str(), "classes", "the classes for which the session will register with the event system"),
                       Msg("unregister", "Removes this session's registration with the event system for a set of given classes")
                           .param(set_str(), "classes", "the classes for which the registration is removed"),
                       Msg("next", "Blocking call which returns a (possibly empty) batch of events since the last call "
                                   "(legacy; event.from supersedes it)")
                           .returns(any())
                           .errors({"SESSION_NOT_REGISTERED", "EVENTS_LOST"})
                           .no_async(),
                       Msg("from", "Blocking call which returns a new token and a (possibly empty) batch of events "
                                   "(one per changed object) after the token; the empty token is the beginning")
                           .param(set_str(), "classes", "register for events for the indicated classes (* for all)")
                           .param(str(), "token", "A token from an earlier call; the empty string represents the beginning.")
                           .param(flt(), "timeout", "Return after this many seconds if no events match")
                           .returns(any())
                           .errors({"EVENT_FROM_TOKEN_PARSE_FAILURE"})
                           .no_async(),
                       Msg("get_current_id", "Return the ID of the next event to be generated by the system")
                           .returns(i64())
                           .no_async(),
                       Msg("inject", "Injects an artificial event (a mod) on the given object and returns a token "
                                     "for event.from: the next event.from from it includes that event")
                           .param(str(), "class", "class of the object")
                           .param(str(), "ref", "A reference to the object that will be changed.")
                           .returns(str())
                           .errors({"HANDLE_INVALID"})
                           .no_async(),
                   });
  c.persistent = false;
  c.stored = false;
  return c;
}

ClassDef task_class() {
  ClassDef c = cls("task", "A long-running asynchronous task", "task",
                   {
                       uuid(),
                       ro("name_label", str(), "a human-readable name"),
                       ro("name_description", str(), "a notes field containing human-readable description"),
                       ro("allowed_operations", set_en("task_allowed_operations"), "list of the operations allowed in this state"),
                       current_ops("task_allowed_operations"),
                       ro("created", datetime(), "Time task was created"),
                       ro("finished", datetime(), "Time task finished (i.e. succeeded or failed). If task-status is pending, then the value of this field has no meaning"),
                       ro("status", en("task_status_type"), "current status of the task", "pending"),
                       ro("resident_on", ref("host"), "the host on which the task is running"),
                       ro("progress", flt(), "This field contains the estimated fraction of the task which is complete."),
                       ro("type", str(), "if the task has completed successfully, this field contains the type of the encoded result"),
                       ro("result", str(), "if the task has completed successfully, this field contains the result value (either Void or an object reference)"),
                       ro("error_info", set_str(), "if the task has failed, this field contains the set of associated error strings"),
                       other_config(),
                       ro("subtask_of", ref("task"), "Ref pointing to the task this is a substask of."),
                       inv("subtasks", "task", "subtask_of", "List pointing to all the substasks."),
                       ro("backtrace", str(), "Function call trace for debugging."),
                   },
                   {
                       Msg("create", "Create a new task object which must be manually destroyed.")
                           .param(str(), "label", "short label for the new task")
                           .param(str(), "description", "longer description for the new task")
                           .returns(ref("task"))
                           .no_async(),
                       Msg("destroy", "Destroy the task object").param(ref("task"), "self", "Reference to the task object").no_async(),
                       Msg("cancel", "Request that a task be cancelled. The task records the request; the verbs here "
                                     "finish what they started (none is interruptible half-way).")
                           .param(ref("task"), "task", "The task")
                           .errors({"OPERATION_NOT_ALLOWED"})
                           .no_async(),
                       Msg("set_status", "Set the task status")
                           .param(ref("task"), "self", "Reference to the task object")
                           .param(en("task_status_type"), "value", "task status value to be set")
                           .no_async(),
                   });
  c.persistent = false;
  return c;
}

}  // namespace

void declare_session(Datamodel& dm) {
  dm.enums.push_back({"task_status_type", {"pending", "success", "failure", "cancelling", "cancelled"}});
  dm.enums.push_back({"task_allowed_operations", {"cancel", "destroy"}});
  dm.enums.push_back({"event_operation", {"add", "del", "mod"}});
  ClassDef s = session_class();
  s.persistent = false;
  dm.classes.push_back(std::move(s));
  dm.classes.push_back(task_class());
  dm.classes.push_back(event_class());
}

}  // namespace vmstack::model::declare
