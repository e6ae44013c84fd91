// Methods derived from the datamodel: for every class, get_all,
// get_all_records, get_record, get_by_uuid, get_by_name_label, get_<field>,
// set_<field> (RW fields), add_to_/remove_from_<map>, add_/remove_<set>.
// Verbs registered later (e.g. VM.set_memory_static_max with its checks)
// override these by name.
#include "core/error.h"
#include "model/datamodel.h"
#include "ops/xapi.h"

namespace vmstack::ops {

namespace {
using model::Field;
using model::Kind;
using model::Qual;

const std::string& ref_arg(const Array& a, size_t i) { return a.at(i).as_string(); }
}  // namespace

void register_generic(MethodTable& t) {
  for (const auto& c : model::datamodel().classes) {
    if (!c.stored) continue;
    const std::string cls = c.name;
    t.add(cls + ".get_all", 0, [cls](CallCtx& x, const Array&) {
      Array out;
      for (auto& r : x.xapi.db().all(cls)) out.emplace_back(std::move(r));
      return Value(std::move(out));
    });
    t.add(cls + ".get_all_records", 0, [cls](CallCtx& x, const Array&) {
      Struct out;
      for (auto& [ref, rec] : x.xapi.db().all_records(cls)) out.emplace(ref, std::move(rec));
      return Value(std::move(out));
    });
    t.add(cls + ".get_record", 1,
          [cls](CallCtx& x, const Array& a) { return Value(x.xapi.db().get_record(cls, ref_arg(a, 0))); });
    if (c.field("uuid"))
      t.add(cls + ".get_by_uuid", 1,
            [cls](CallCtx& x, const Array& a) { return Value(x.xapi.db().ref_by_uuid(cls, a.at(0).as_string())); });
    if (c.has_name_label())
      t.add(cls + ".get_by_name_label", 1, [cls](CallCtx& x, const Array& a) {
        Array out;
        for (auto& r : x.xapi.db().refs_by_name_label(cls, a.at(0).as_string())) out.emplace_back(std::move(r));
        return Value(std::move(out));
      });
    for (const auto& f : c.fields) {
      const std::string field = f.name;
      t.add(cls + ".get_" + field, 1,
            [cls, field](CallCtx& x, const Array& a) { return x.xapi.db().get_field(cls, ref_arg(a, 0), field); });
      if (f.qual != Qual::RW) continue;
      t.add(cls + ".set_" + field, 2, [cls, field](CallCtx& x, const Array& a) {
        x.xapi.db().set_field(cls, ref_arg(a, 0), field, a.at(1));
        return Value();
      });
      if (f.is_map()) {
        t.add(cls + ".add_to_" + field, 3, [cls, field](CallCtx& x, const Array& a) {
          auto& db = x.xapi.db();
          auto m = db.get_field(cls, ref_arg(a, 0), field);
          const auto& key = a.at(1).as_string();
          if (m.as_struct().count(key)) throw ApiError(errors::MAP_DUPLICATE_KEY, {cls, field, ref_arg(a, 0), key});
          m.as_struct()[key] = a.at(2);
          db.set_field(cls, ref_arg(a, 0), field, std::move(m));
          return Value();
        });
        t.add(cls + ".remove_from_" + field, 2, [cls, field](CallCtx& x, const Array& a) {
          auto& db = x.xapi.db();
          auto m = db.get_field(cls, ref_arg(a, 0), field);
          m.as_struct().erase(a.at(1).as_string());
          db.set_field(cls, ref_arg(a, 0), field, std::move(m));
          return Value();
        });
      }
      if (f.is_set()) {
        t.add(cls + ".add_" + field, 2, [cls, field](CallCtx& x, const Array& a) {
          auto& db = x.xapi.db();
          auto s = db.get_field(cls, ref_arg(a, 0), field);
          auto& arr = s.as_array();
          if (std::find(arr.begin(), arr.end(), a.at(1)) == arr.end()) arr.push_back(a.at(1));
          db.set_field(cls, ref_arg(a, 0), field, std::move(s));
          return Value();
        });
        t.add(cls + ".remove_" + field, 2, [cls, field](CallCtx& x, const Array& a) {
          auto& db = x.xapi.db();
          auto s = db.get_field(cls, ref_arg(a, 0), field);
          auto& arr = s.as_array();
          arr.erase(std::remove(arr.begin(), arr.end(), a.at(1)), arr.end());
          db.set_field(cls, ref_arg(a, 0), field, std::move(s));
          return Value();
        });
      }
    }
  }
}

}  // namespace vmstack::ops
