// message (alerts: what happened to which object, kept on disk) and blob.
#include "model/declare.h"

namespace vmstack::model::declare {

void declare_message(Datamodel& dm) {
  dm.enums.push_back({"cls", {"VM", "Host", "SR", "Pool", "VMPP", "VMSS", "PVS_proxy", "VDI"}});

  dm.classes.push_back(cls(
      "message", "An message for the attention of the administrator", "message",
      {
          uuid(),
          ro("name", str(), "The name of the message"),
          ro("priority", i64(), "The message priority, 0 being low priority"),
          ro("cls", en("cls"), "The class of the object this message is associated with"),
          ro("obj_uuid", str(), "The uuid of the object this message is associated with"),
          ro("timestamp", datetime(), "The time at which the message was created"),
          ro("body", str(), "The body of the message"),
      },
      {
          Msg("create", "Create a new message.")
              .param(str(), "name", "The name of the message")
              .param(i64(), "priority", "The priority of the message")
              .param(en("cls"), "cls", "The class of object this message is associated with")
              .param(str(), "obj_uuid", "The uuid of the object this message is associated with")
              .param(str(), "body", "The body of the message")
              .returns(ref("message"))
              .errors({"UUID_INVALID", "INVALID_VALUE"}),
          Msg("destroy", "Destroy the message.").param(ref("message"), "self", "The reference of the message to destroy"),
          Msg("get", "Get the messages of an object since a time.")
              .param(en("cls"), "cls", "The class of object")
              .param(str(), "obj_uuid", "The uuid of the object")
              .param(datetime(), "since", "The cutoff time")
              .returns(map_of("message")),
          Msg("get_since", "Get the messages created after a time.")
              .param(datetime(), "since", "The cutoff time")
              .returns(map_of("message")),
      }));

  dm.classes.push_back(cls(
      "blob", "A placeholder for a binary blob", "",
      {
          uuid(),
          name_label(),
          name_description(),
          ro("size", i64(), "Size of the binary data, in bytes"),
          rw("public", boolean(), "True if the blob is publicly accessible"),
          rc("last_updated", datetime(), "Time at which the data in the blob was last updated"),
          rc("mime_type", str(), "The mime type associated with this object. Defaults to 'application/octet-stream' if the empty string is supplied"),
      }));
}

}  // namespace vmstack::model::declare
