#include "tests/crash/crash_model.h"

#include "absl/strings/str_cat.h"

namespace quiver::crash {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Integers in [-20, 20]: sums of up to 16 squares stay far below 2^24.
float Coord(int owner, int index, int64_t version, uint32_t field, uint32_t d) {
  const uint64_t h = Mix(Mix(Mix(static_cast<uint64_t>(owner) * 1000003 + index) ^
                             static_cast<uint64_t>(version)) ^ (field * 131 + d));
  return static_cast<float>(static_cast<int>(h % 41) - 20);
}

v1::AttributeField Attr(const char* name, v1::AttributeType type, bool indexed) {
  v1::AttributeField a;
  a.set_name(name);
  a.set_type(type);
  a.set_indexed(indexed);
  return a;
}

bool SameValue(const v1::Value& a, const v1::Value& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

}  // namespace

v1::CollectionSchema CrashSchema() {
  v1::CollectionSchema s;
  v1::VectorField* v = s.add_vectors();
  v->set_name("v");
  v->set_dim(kDimV);
  v->set_metric(v1::L2);
  v->mutable_index()->set_type("HNSW");
  (*v->mutable_index()->mutable_params())["M"] = "8";
  v1::VectorField* d = s.add_vectors();
  d->set_name("d");
  d->set_dim(kDimD);
  d->set_metric(v1::L2);
  d->mutable_index()->set_type("IVF_SQ8");
  d->set_storage(v1::DISK);
  *s.add_attributes() = Attr("owner", v1::INT64, true);
  *s.add_attributes() = Attr("group", v1::INT64, true);
  *s.add_attributes() = Attr("version", v1::INT64, false);
  *s.add_attributes() = Attr("tag", v1::STRING, false);
  *s.add_attributes() = Attr("flag", v1::BOOL, false);
  *s.add_attributes() = Attr("weight", v1::DOUBLE, false);
  *s.add_attributes() = Attr("tags", v1::STRING_LIST, false);
  return s;
}

std::string PointId(int owner, int index) { return absl::StrCat("t", owner, "-", index); }

int GroupOf(int64_t version) { return static_cast<int>(version % kGroups); }

v1::Point MakePoint(int owner, int index, int64_t version) {
  v1::Point p;
  p.set_id(PointId(owner, index));
  auto* v = (*p.mutable_vectors())["v"].mutable_values();
  for (uint32_t i = 0; i < kDimV; ++i) v->Add(Coord(owner, index, version, 0, i));
  auto* d = (*p.mutable_vectors())["d"].mutable_values();
  for (uint32_t i = 0; i < kDimD; ++i) d->Add(Coord(owner, index, version, 1, i));
  auto& a = *p.mutable_attributes();
  a["owner"].set_int_value(owner);
  a["group"].set_int_value(GroupOf(version));
  a["version"].set_int_value(version);
  a["tag"].set_string_value(absl::StrCat("v", version));
  a["flag"].set_bool_value(version % 2 == 1);
  a["weight"].set_double_value(static_cast<double>(version) * 0.5);
  auto* tags = a["tags"].mutable_string_list_value();
  tags->add_values(absl::StrCat("g", GroupOf(version)));
  tags->add_values(absl::StrCat("o", owner));
  return p;
}

double L2(const google::protobuf::RepeatedField<float>& a,
          const google::protobuf::RepeatedField<float>& b) {
  double s = 0;
  for (int i = 0; i < a.size() && i < b.size(); ++i) {
    const double x = static_cast<double>(a[i]) - b[i];
    s += x * x;
  }
  return s;
}

State Model::Acked(int index) const {
  auto it = acked.find(index);
  return it == acked.end() ? State() : it->second;
}

std::vector<int> Model::Live() const {
  std::vector<int> out;
  for (const auto& [i, s] : acked) {
    if (s.has_value()) out.push_back(i);
  }
  return out;
}

void Model::Apply(const InFlight& w) {
  for (const auto& [i, s] : w.ids) acked[i] = s;
}

Found CheckPoint(int owner, int index, const v1::Point& p, int64_t* version, std::string* why) {
  auto ver = p.attributes().find("version");
  if (ver == p.attributes().end() || ver->second.kind_case() != v1::Value::kIntValue) {
    *why = "no int64 version attribute";
    return Found::kCorrupt;
  }
  *version = ver->second.int_value();
  const v1::Point want = MakePoint(owner, index, *version);
  if (p.id() != want.id()) {
    *why = absl::StrCat("id ", p.id());
    return Found::kCorrupt;
  }
  for (const auto& [name, vec] : want.vectors()) {
    auto it = p.vectors().find(name);
    if (it == p.vectors().end()) {
      *why = absl::StrCat("vector ", name, " missing");
      return Found::kCorrupt;
    }
    if (it->second.values_size() != vec.values_size() || L2(it->second.values(), vec.values()) != 0) {
      *why = absl::StrCat("vector ", name, " differs from version ", *version);
      return Found::kCorrupt;
    }
  }
  if (p.attributes().size() != want.attributes().size()) {
    *why = absl::StrCat(p.attributes().size(), " attributes, expected ", want.attributes().size());
    return Found::kCorrupt;
  }
  for (const auto& [name, val] : want.attributes()) {
    auto it = p.attributes().find(name);
    if (it == p.attributes().end() || !SameValue(it->second, val)) {
      *why = absl::StrCat("attribute ", name, " differs from version ", *version);
      return Found::kCorrupt;
    }
  }
  return Found::kOk;
}

void Reconcile(Model* m, const std::map<int, const v1::Point*>& found, RecoveryCounts* out) {
  auto note = [&](std::string s) {
    if (out->examples.size() < 8) out->examples.push_back(std::move(s));
  };
  // Per id of the in-flight write: did it land?
  std::map<int, State> flight;
  if (m->in_flight) {
    for (const auto& [i, s] : m->in_flight->ids) flight[i] = s;
  }
  int landed = 0, not_landed = 0;
  for (int i = 0; i < m->ids; ++i) {
    const State acked = m->Acked(i);
    State got;
    auto it = found.find(i);
    if (it != found.end()) {
      int64_t version = 0;
      std::string why;
      if (CheckPoint(m->owner, i, *it->second, &version, &why) == Found::kCorrupt) {
        ++out->corrupt;
        note(absl::StrCat(PointId(m->owner, i), " corrupt: ", why));
        m->acked[i] = State();  // unknown content: re-written before it is trusted again
        continue;
      }
      got = version;
    }
    auto f = flight.find(i);
    const bool in_flight = f != flight.end();
    if (got == acked && !(in_flight && f->second == acked)) {
      if (in_flight) ++not_landed;
      continue;
    }
    if (in_flight && got == f->second) {
      if (got != acked) ++landed;
      m->acked[i] = got;
      continue;
    }
    if (got == acked) continue;
    // Neither the acknowledged state nor the in-flight one.
    if (!got.has_value()) {
      ++out->lost;
      note(absl::StrCat(PointId(m->owner, i), " lost: acknowledged version ", *acked,
                        ", found nothing"));
    } else if (!acked.has_value()) {
      ++out->resurrected;
      note(absl::StrCat(PointId(m->owner, i), " resurrected: acknowledged absent, found version ",
                        *got));
    } else if (*got < *acked) {
      ++out->lost;
      note(absl::StrCat(PointId(m->owner, i), " lost: acknowledged version ", *acked,
                        ", found older version ", *got));
    } else {
      ++out->corrupt;
      note(absl::StrCat(PointId(m->owner, i), " corrupt: acknowledged version ", *acked,
                        ", found version ", *got, " that was never acknowledged"));
    }
    m->acked[i] = got;
  }
  if (landed > 0 && not_landed > 0) {
    ++out->torn;
    note(absl::StrCat("owner ", m->owner, ": in-flight ", m->in_flight->op, " landed for ", landed,
                      " ids and not for ", not_landed));
  }
  if (m->in_flight) {
    if (landed > 0) ++out->in_flight_landed;
    else ++out->in_flight_not_landed;
  }
  m->in_flight.reset();
}

}  // namespace quiver::crash
