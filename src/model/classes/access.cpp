// user, role, subject and secret: xapi's access-control classes. vmstack
// authenticates local accounts (PAM) and has no RBAC or external directory,
// so the classes are declared for the clients that read them; role and
// subject messages say why they are refused (classes/refused.cpp).
#include "model/declare.h"

namespace vmstack::model::declare {

void declare_access(Datamodel& dm) {
  dm.classes.push_back(cls(
      "user", "A user of the system", "",
      {
          uuid(),
          rc("short_name", str(), "short name (e.g. userid)"),
          rw("fullname", str(), "full name"),
          other_config(),
      }));
  dm.classes.push_back(cls(
      "role", "A set of permissions associated with a subject", "role",
      {
          uuid(),
          rc("name_label", str(), "a short user-friendly name for the role"),
          rc("name_description", str(), "what this role is for"),
          rc("subroles", set_ref("role"), "a list of pointers to other roles or permissions"),
      }));
  dm.classes.push_back(cls(
      "subject", "A user or group that can log in xapi", "subject",
      {
          uuid(),
          rc("subject_identifier", str(), "the subject identifier, unique in the external directory service"),
          rc("other_config", map_ss(), "additional configuration"),
          ro("roles", set_ref("role"), "the roles associated with this subject"),
      }));
  dm.classes.push_back(cls(
      "secret", "A secret", "secret",
      {
          uuid(),
          rw("value", str(), "the secret"),
          rw("other_config", map_ss(), "other_config"),
      }));
}

}  // namespace vmstack::model::declare
