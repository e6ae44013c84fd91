#!/usr/bin/env python3
"""Writes tests/model/xapi_datamodel.txt, the names of xapi's published datamodel.

Input: the JSON that xapi's IDL writes for its SDK documentation
(ocaml/idl/json_backend, the data behind xapi-project.github.io/xen-api/classes),
one list of classes with their fields and messages. Output: one line per
class, field and explicit message, which tests/model/conformance_test.cpp
compares with vmstack's declarations:

    class VM
    field VM power_state enum vm_power_state RO/runtime
    message VM start

Implicit messages (get_<field>, set_<field>, get_record, ...) are left out:
they follow from the fields. Usage: tools/xapi-names.py xenapi.json > FILE
"""
import html
import json
import sys


def main() -> None:
    classes = json.load(open(sys.argv[1]))
    print("# xapi's published datamodel: classes, fields (type, qualifier) and explicit")
    print("# messages; written by tools/xapi-names.py from xapi's SDK JSON. Do not edit.")
    for c in sorted(classes, key=lambda c: c["name"].lower()):
        name = c["name"]
        print(f"class {name}")
        for f in c["fields"]:
            if any(t["transition"] == "removed" for t in lifecycle(f)):
                continue
            print(f"field {name} {f['name']} {html.unescape(f['type'])} {f['qualifier']}")
        for m in c["messages"]:
            if m.get("implicit") or any(t["transition"] == "removed" for t in lifecycle(m)):
                continue
            print(f"message {name} {m['name']}")


def lifecycle(item):
    lc = item.get("lifecycle", [])
    return lc.get("transitions", []) if isinstance(lc, dict) else lc


if __name__ == "__main__":
    main()
