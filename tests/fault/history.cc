#include "tests/fault/history.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "ibsm/canonical_alert.h"
#include "ibsm/crypto.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// One table of fields, used both ways, so the encoder and the decoder
// cannot disagree on a name.
struct Fields {
  std::map<std::string, std::string*> strings;
  std::map<std::string, int64_t*> ints;
  std::map<std::string, uint64_t*> uints;
  std::map<std::string, bool*> bools;
  std::map<std::string, std::vector<std::string>*> lists;
};

template <typename E>
Fields FieldsOf(E& e) {
  Fields f;
  f.strings = {{"type", &e.type},
               {"publisher", &e.publisher},
               {"subscriber", &e.subscriber},
               {"node", &e.node},
               {"agency", &e.agency},
               {"clearance", &e.clearance},
               {"durable", &e.durable},
               {"originator", &e.originator},
               {"id", &e.id},
               {"topic", &e.topic},
               {"classification", &e.classification},
               {"tlp", &e.tlp},
               {"kind", &e.kind},
               {"references", &e.references},
               {"digest", &e.digest},
               {"outcome", &e.outcome},
               {"code", &e.code},
               {"message", &e.message},
               {"fault", &e.fault},
               {"target", &e.target},
               {"name", &e.name}};
  f.ints = {
      {"time_us", &e.time_us}, {"attempt", &e.attempt}, {"value", &e.value}};
  f.uints = {{"sequence", &e.sequence}};
  f.bools = {{"orcon", &e.orcon}, {"duplicate", &e.duplicate}};
  f.lists = {{"topics", &e.topics},
             {"releasable_to", &e.releasable_to},
             {"forwarded_to", &e.forwarded_to},
             {"nodes", &e.nodes},
             {"links", &e.links}};
  return f;
}

// Numbers travel as JSON numbers (doubles): exact up to 2^53, far beyond
// any sequence or microsecond time of a run.
constexpr double kMaxExact = 9007199254740992.0;

// A JSON string: quotes, backslashes and control characters escaped; other
// bytes as they are (the harness writes UTF-8).
void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string ContentDigest(const v1::Alert& alert) {
  crypto::Hash hash = crypto::Sha256(CanonicalAlertBytes(alert));
  return absl::BytesToHexString(crypto::HashView(hash));
}

void SetAlertFacts(const v1::Alert& alert, HistoryEvent* event) {
  event->originator = alert.originator();
  event->id = alert.id();
  event->topic = alert.topic();
  event->classification = alert.classification();
  event->releasable_to.assign(alert.releasable_to().begin(),
                              alert.releasable_to().end());
  event->orcon = alert.orcon();
  event->tlp = alert.tlp();
  event->kind.clear();
  event->references.clear();
  if (alert.references_size() > 0) {
    const v1::AlertReference& ref = alert.references(0);
    switch (ref.kind()) {
      case v1::AlertReference::KIND_UPDATE:
        event->kind = "UPDATE";
        break;
      case v1::AlertReference::KIND_RETRACTION:
        event->kind = "RETRACTION";
        break;
      case v1::AlertReference::KIND_RELATED:
        event->kind = "RELATED";
        break;
      default:
        event->kind = "UNSPECIFIED";
    }
    event->references = absl::StrCat(ref.originator(), "/", ref.alert_id());
  }
  event->digest = ContentDigest(alert);
}

std::string EncodeHistoryLine(const HistoryEvent& event) {
  // Written by hand rather than through protobuf's Struct, whose map order
  // varies: a line's fields come in a fixed order, "type" first, so that
  // histories diff and grep well.
  HistoryEvent copy = event;
  Fields f = FieldsOf(copy);
  std::string out = "{";
  auto key = [&](const std::string& name) {
    if (out.size() > 1) out.push_back(',');
    AppendJsonString(name, &out);
    out.push_back(':');
  };
  key("type");
  AppendJsonString(event.type, &out);
  for (const auto& [name, p] : f.ints) {
    if (*p != 0) key(name), absl::StrAppend(&out, *p);
  }
  for (const auto& [name, p] : f.strings) {
    if (name != "type" && !p->empty()) key(name), AppendJsonString(*p, &out);
  }
  for (const auto& [name, p] : f.uints) {
    if (*p != 0) key(name), absl::StrAppend(&out, *p);
  }
  for (const auto& [name, p] : f.bools) {
    if (*p) key(name), out.append("true");
  }
  for (const auto& [name, p] : f.lists) {
    if (p->empty()) continue;
    key(name);
    out.push_back('[');
    for (size_t i = 0; i < p->size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendJsonString((*p)[i], &out);
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<HistoryEvent> ParseHistoryLine(absl::string_view line) {
  Struct s;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      std::string(line.data(), line.size()), &s);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object: ", std::string(parsed.message())));
  }
  HistoryEvent event;
  Fields f = FieldsOf(event);
  for (const auto& [name, value] : s.fields()) {
    if (auto it = f.strings.find(name); it != f.strings.end()) {
      if (value.kind_case() != Value::kStringValue) {
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' must be a string"));
      }
      *it->second = value.string_value();
    } else if (auto it = f.ints.find(name); it != f.ints.end()) {
      double d = value.number_value();
      if (value.kind_case() != Value::kNumberValue || d != std::floor(d) ||
          std::fabs(d) > kMaxExact) {
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' must be an integer"));
      }
      *it->second = static_cast<int64_t>(d);
    } else if (auto it = f.uints.find(name); it != f.uints.end()) {
      double d = value.number_value();
      if (value.kind_case() != Value::kNumberValue || d != std::floor(d) ||
          d < 0 || d > kMaxExact) {
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' must be a whole number >= 0"));
      }
      *it->second = static_cast<uint64_t>(d);
    } else if (auto it = f.bools.find(name); it != f.bools.end()) {
      if (value.kind_case() != Value::kBoolValue) {
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' must be true or false"));
      }
      *it->second = value.bool_value();
    } else if (auto it = f.lists.find(name); it != f.lists.end()) {
      if (value.kind_case() != Value::kListValue) {
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' must be a list of strings"));
      }
      for (const Value& v : value.list_value().values()) {
        if (v.kind_case() != Value::kStringValue) {
          return absl::InvalidArgumentError(
              absl::StrCat("field '", name, "' must be a list of strings"));
        }
        it->second->push_back(v.string_value());
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field '", name, "' (docs/reliability.md, Histories)"));
    }
  }
  if (event.type.empty()) {
    return absl::InvalidArgumentError("the line has no 'type'");
  }
  return event;
}

absl::StatusOr<std::vector<HistoryEvent>> ReadHistoryFile(
    const std::string& path, size_t max_lines) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read history ", path, ": ", std::strerror(errno)));
  }
  std::vector<HistoryEvent> events;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (events.size() >= max_lines) {
      return absl::ResourceExhaustedError(absl::StrCat(
          path, ": more than ", max_lines, " lines; split the history"));
    }
    absl::StatusOr<HistoryEvent> event = ParseHistoryLine(line);
    if (!event.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", event.status().message()));
    }
    events.push_back(*std::move(event));
  }
  return events;
}

HistoryWriter::HistoryWriter(std::string path) : path_(std::move(path)) {
  absl::MutexLock lock(&mu_);
  file_ = std::fopen(path_.c_str(), "a");
  if (file_ == nullptr) {
    error_ = absl::InternalError(absl::StrCat("cannot open history ", path_,
                                              ": ", std::strerror(errno)));
  }
}

HistoryWriter::~HistoryWriter() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status HistoryWriter::Write(HistoryEvent event) {
  if (event.time_us == 0) event.time_us = absl::ToUnixMicros(absl::Now());
  std::string line = EncodeHistoryLine(event);
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fflush(file_) != 0) {
    error_ = absl::InternalError(absl::StrCat("cannot write history ", path_,
                                              ": ", std::strerror(errno)));
  }
  return error_;
}

}  // namespace ibsm::testing
