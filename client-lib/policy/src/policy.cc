#include "ibsm/policy.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "ibsm/crypto.h"
#include "ibsm/internal/v1/policy.pb.h"
#include "ibsm/status_macros.h"
#include "ibsm/topic.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// A set of small indices (nodes or agencies), one bit each.
class IndexSet {
 public:
  IndexSet() = default;
  explicit IndexSet(size_t size) : words_((size + 63) / 64, 0) {}
  void Add(int i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  bool Has(int i) const {
    return i >= 0 && static_cast<size_t>(i >> 6) < words_.size() &&
           (words_[i >> 6] >> (i & 63)) & 1;
  }
  bool Any() const {
    for (uint64_t w : words_) {
      if (w != 0) return true;
    }
    return false;
  }
  void Union(const IndexSet& other) {
    for (size_t i = 0; i < words_.size() && i < other.words_.size(); ++i) {
      words_[i] |= other.words_[i];
    }
  }

 private:
  std::vector<uint64_t> words_;
};

// Source lines of the fields of one message of the parsed text (1-based), or
// `fallback` (the line of the enclosing message) when the field is absent.
class Lines {
 public:
  Lines(const TextFormat::ParseInfoTree* tree, const Descriptor* descriptor,
        int fallback)
      : tree_(tree), descriptor_(descriptor), fallback_(fallback) {}

  // `index` is the element of a repeated field, -1 for a singular one.
  int Of(absl::string_view field, int index = -1) const {
    const FieldDescriptor* f = descriptor_->FindFieldByName(std::string(field));
    if (tree_ == nullptr || f == nullptr) return fallback_;
    if (f->is_repeated() != (index >= 0)) return fallback_;
    TextFormat::ParseLocation loc = tree_->GetLocation(f, index);
    return loc.line >= 0 ? loc.line + 1 : fallback_;
  }

  Lines Nested(absl::string_view field, int index = -1) const {
    const FieldDescriptor* f = descriptor_->FindFieldByName(std::string(field));
    const TextFormat::ParseInfoTree* sub = nullptr;
    if (tree_ != nullptr && f != nullptr && f->is_repeated() == (index >= 0)) {
      sub = tree_->GetTreeForNested(f, index);
    }
    return Lines(sub, f != nullptr ? f->message_type() : nullptr,
                 Of(field, index));
  }

  int line() const { return fallback_; }

 private:
  const TextFormat::ParseInfoTree* tree_;
  const Descriptor* descriptor_;
  int fallback_;
};

class SyntaxErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!message_.empty()) return;  // the first error is the useful one
    line_ = std::max(1, line + 1);
    message_ = message;
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}

  int line() const { return line_; }
  const std::string& message() const { return message_; }

 private:
  int line_ = 1;
  std::string message_;
};

std::string Sha256Prefix(absl::string_view text) {
  const crypto::Hash digest = crypto::Sha256(text);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::vector<std::string> Segments(absl::string_view pattern) {
  return absl::StrSplit(pattern, '.');
}

// True when some topic matches both patterns.
bool PatternsOverlap(const std::vector<std::string>& a,
                     const std::vector<std::string>& b) {
  size_t i = 0;
  for (;; ++i) {
    bool a_end = i == a.size(), b_end = i == b.size();
    if (a_end || b_end) return a_end && b_end;
    if (a[i] == ">") return true;  // b has at least one segment left
    if (b[i] == ">") return true;
    if (a[i] != "*" && b[i] != "*" && a[i] != b[i]) return false;
  }
}

bool IsOriginatorControlled(const AlertFacts& alert) {
  return alert.orcon || absl::EqualsIgnoreCase(alert.tlp, "AMBER+STRICT") ||
         absl::EqualsIgnoreCase(alert.tlp, "RED");
}

std::string ControlLabel(const AlertFacts& alert) {
  if (alert.orcon) return "ORCON";
  return absl::StrCat("TLP:", alert.tlp);
}

absl::string_view NodeOf(absl::string_view id) {
  size_t slash = id.find('/');
  return slash == absl::string_view::npos ? id : id.substr(0, slash);
}

}  // namespace

// ---------------------------------------------------------------------------
// The compiled form: every name resolved to an index, every principal to a set
// of agencies, every share to a level per node.

struct CompiledNode {
  std::string id;
  int clearance = 0;
  bool hub = false;
  std::vector<std::string> groups;
  int line = 1;
};

struct CompiledAgency {
  std::string id;
  std::string name;  // after the '/'
  int node = 0;
  int clearance = 0;
  bool publisher = false, subscriber = false, auditor = false, admin = false;
  // Other nodes where a role may be exercised (remote_access), per role.
  IndexSet remote_publisher, remote_subscriber, remote_auditor, remote_admin;
  bool audit_metadata_above_clearance = false;
  int line = 1;

  // The flag that says the agency holds `role`, and the other nodes where it
  // may exercise it; both null for a role the schema does not know.
  std::pair<bool*, IndexSet*> RoleSlots(internal::v1::Role role) {
    switch (role) {
      case internal::v1::ROLE_PUBLISHER:
        return {&publisher, &remote_publisher};
      case internal::v1::ROLE_SUBSCRIBER:
        return {&subscriber, &remote_subscriber};
      case internal::v1::ROLE_AUDITOR:
        return {&auditor, &remote_auditor};
      case internal::v1::ROLE_ADMIN:
        return {&admin, &remote_admin};
      default:
        return {nullptr, nullptr};
    }
  }
  std::pair<const bool*, const IndexSet*> RoleSlots(
      internal::v1::Role role) const {
    return const_cast<CompiledAgency*>(this)->RoleSlots(role);
  }
};

namespace {

// The role names of the schema, for reasons.
absl::string_view RoleName(internal::v1::Role role) {
  switch (role) {
    case internal::v1::ROLE_PUBLISHER:
      return "ROLE_PUBLISHER";
    case internal::v1::ROLE_SUBSCRIBER:
      return "ROLE_SUBSCRIBER";
    case internal::v1::ROLE_AUDITOR:
      return "ROLE_AUDITOR";
    case internal::v1::ROLE_ADMIN:
      return "ROLE_ADMIN";
    default:
      return "ROLE_UNSPECIFIED";
  }
}

}  // namespace

struct CompiledRule {
  std::string name;
  int line = 1;
  std::vector<TopicPattern> patterns;
  std::vector<std::vector<std::string>> pattern_segments;
  std::vector<int> pattern_lines;
  IndexSet publishers, subscribers;  // agencies
  std::string publishers_text, subscribers_text;
  int max_level = 0;
  std::vector<int> share_level;  // per node: highest level shared, or -1
  bool has_share = false;
  bool has_retention = false;
  absl::Duration retention;
};

// One pattern of one rule, with its precedence key.
struct PatternRef {
  int rule = 0;
  int pattern = 0;
  int literals = 0;
  int tails = 0;  // '>' wildcards (0 or 1)
  int segments = 0;

  // True when this pattern wins over `o` for a topic both match.
  bool Before(const PatternRef& o) const {
    if (literals != o.literals) return literals > o.literals;
    if (tails != o.tails) return tails < o.tails;
    if (segments != o.segments) return segments > o.segments;
    if (rule != o.rule) return rule < o.rule;
    return pattern < o.pattern;
  }
};

class CompiledPolicy {
 public:
  internal::v1::Policy proto;
  std::string source;
  std::string version;
  // The node this policy is enforced at; empty for a policy read by tools.
  std::string local_node;
  std::vector<std::string> levels;
  absl::flat_hash_map<std::string, int> level_rank;
  std::vector<CompiledNode> nodes;
  absl::flat_hash_map<std::string, int> node_index;
  absl::flat_hash_map<std::string, IndexSet> groups;   // group -> nodes
  absl::flat_hash_map<std::string, IndexSet> targets;  // node or group -> nodes
  std::vector<CompiledAgency> agencies;
  absl::flat_hash_map<std::string, int> agency_index;
  std::vector<CompiledRule> rules;
  // Candidate patterns, best first: by literal first segment (those patterns
  // merged with the wildcard-first ones), and the wildcard-first ones alone.
  absl::flat_hash_map<std::string, std::vector<PatternRef>> by_first_segment;
  std::vector<PatternRef> wildcard_first;

  int Level(absl::string_view name) const {
    auto it = level_rank.find(name);
    return it == level_rank.end() ? -1 : it->second;
  }
  int Node(absl::string_view id) const {
    auto it = node_index.find(id);
    return it == node_index.end() ? -1 : it->second;
  }
  int Agency(absl::string_view id) const {
    auto it = agency_index.find(id);
    return it == agency_index.end() ? -1 : it->second;
  }

  const CompiledRule* Match(absl::string_view topic) const {
    absl::string_view first = topic.substr(0, topic.find('.'));
    auto it = by_first_segment.find(first);
    const std::vector<PatternRef>& candidates =
        it == by_first_segment.end() ? wildcard_first : it->second;
    for (const PatternRef& ref : candidates) {
      const CompiledRule& rule = rules[ref.rule];
      if (rule.patterns[ref.pattern].Matches(topic)) return &rule;
    }
    return nullptr;
  }

  // `node` is named in the alert's releasability list, by id or by group.
  bool Released(const AlertFacts& alert, int node) const {
    for (const std::string& entry : alert.releasable_to) {
      auto it = targets.find(entry);
      if (it != targets.end() && it->second.Has(node)) return true;
    }
    return false;
  }
  bool NamedExplicitly(const AlertFacts& alert, int node) const {
    for (const std::string& entry : alert.releasable_to) {
      if (entry == nodes[node].id) return true;
    }
    return false;
  }

  absl::Status Compile(const TextFormat::ParseInfoTree* tree);
  std::vector<std::string> Lint() const;

 private:
  absl::Status Error(int line, absl::string_view reason) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", line, ": ", reason));
  }
  // The rank of level `value`, which `what` names (at `line`), or the error
  // that it is missing or not a level.
  absl::StatusOr<int> KnownLevel(const std::string& value, int line,
                                 absl::string_view what) const;

  // The steps of Compile, in the order they run: each step may use what the
  // ones before it compiled.
  absl::Status CompileLevels(const Lines& root);
  absl::Status CompileNodes(const Lines& root);
  absl::StatusOr<CompiledNode> CompileNode(const internal::v1::NodeSpec& spec,
                                           const Lines& lines) const;
  absl::Status CompileGroups(const Lines& root);
  void IndexTargets();
  absl::Status CompileAgencies(const Lines& root);
  absl::StatusOr<CompiledAgency> CompileAgency(
      const internal::v1::AgencySpec& spec, const Lines& lines) const;
  absl::Status CompileRoles(const internal::v1::AgencySpec& spec,
                            const Lines& lines, CompiledAgency* agency) const;
  absl::Status CompileRemoteAccess(const internal::v1::AgencySpec& spec,
                                   const Lines& lines,
                                   CompiledAgency* agency) const;
  absl::StatusOr<IndexSet> GrantedNodes(const internal::v1::RemoteAccess& grant,
                                        const Lines& grant_lines,
                                        absl::string_view where) const;
  absl::Status GrantRemoteRoles(const internal::v1::RemoteAccess& grant,
                                const Lines& grant_lines,
                                absl::string_view where, const IndexSet& at,
                                CompiledAgency* agency) const;
  absl::Status CheckLocalNode() const;
  absl::Status CompileRules(const Lines& root);
  absl::StatusOr<CompiledRule> CompileRule(const internal::v1::TopicRule& spec,
                                           const Lines& lines) const;
  absl::Status CompileTopics(const internal::v1::TopicRule& spec,
                             const Lines& lines, CompiledRule* rule) const;
  absl::Status CompilePrincipals(const internal::v1::TopicRule& spec,
                                 const Lines& lines, CompiledRule* rule) const;
  absl::Status CompileShare(const internal::v1::TopicRule& spec, int index,
                            const Lines& lines, CompiledRule* rule) const;
  absl::Status CompileRetention(const internal::v1::TopicRule& spec,
                                const Lines& lines, CompiledRule* rule) const;
  void IndexCandidates();
  absl::Status ResolvePrincipal(const std::string& principal, int line,
                                absl::string_view where, IndexSet* out) const;

  // The checks of Lint, each appending its warnings to `out`.
  std::string Warning(int line, absl::string_view what) const;
  void LintShadowedRules(std::vector<std::string>* out) const;
  void LintAgencies(std::vector<std::string>* out) const;
  void LintUnusedRules(std::vector<std::string>* out) const;
};

absl::Status CompiledPolicy::CompileRemoteAccess(
    const internal::v1::AgencySpec& spec, const Lines& lines,
    CompiledAgency* agency) const {
  agency->remote_publisher = IndexSet(nodes.size());
  agency->remote_subscriber = IndexSet(nodes.size());
  agency->remote_auditor = IndexSet(nodes.size());
  agency->remote_admin = IndexSet(nodes.size());
  agency->audit_metadata_above_clearance =
      spec.audit_metadata_above_clearance();
  if (agency->audit_metadata_above_clearance && !agency->auditor) {
    return Error(lines.Of("audit_metadata_above_clearance"),
                 absl::StrCat("agency ", agency->id,
                              ": audit_metadata_above_clearance needs "
                              "ROLE_AUDITOR"));
  }
  for (int r = 0; r < spec.remote_access_size(); ++r) {
    const internal::v1::RemoteAccess& grant = spec.remote_access(r);
    Lines grant_lines = lines.Nested("remote_access", r);
    const std::string where =
        absl::StrCat("agency ", agency->id, ": remote_access");
    if (grant.nodes().empty()) {
      return Error(grant_lines.line(), absl::StrCat(where, " names no node"));
    }
    if (grant.roles().empty()) {
      return Error(grant_lines.line(), absl::StrCat(where, " grants no role"));
    }
    IBSM_ASSIGN_OR_RETURN(IndexSet at, GrantedNodes(grant, grant_lines, where));
    IBSM_RETURN_IF_ERROR(
        GrantRemoteRoles(grant, grant_lines, where, at, agency));
  }
  return absl::OkStatus();
}

// The nodes a remote_access grant names: node ids, groups or '*'.
absl::StatusOr<IndexSet> CompiledPolicy::GrantedNodes(
    const internal::v1::RemoteAccess& grant, const Lines& grant_lines,
    absl::string_view where) const {
  IndexSet at(nodes.size());
  for (int n = 0; n < grant.nodes_size(); ++n) {
    const std::string& entry = grant.nodes(n);
    if (entry == "*") {
      for (size_t i = 0; i < nodes.size(); ++i) at.Add(static_cast<int>(i));
      continue;
    }
    auto it = targets.find(entry);
    if (it == targets.end()) {
      return Error(
          grant_lines.Of("nodes", n),
          absl::StrCat(where, " '", entry, "' is not a node, a group or '*'"));
    }
    at.Union(it->second);
  }
  return at;
}

// Adds the nodes `at` to the agency's remote set of every role the grant
// names; a grant may only extend a role the agency holds.
absl::Status CompiledPolicy::GrantRemoteRoles(
    const internal::v1::RemoteAccess& grant, const Lines& grant_lines,
    absl::string_view where, const IndexSet& at, CompiledAgency* agency) const {
  for (int k = 0; k < grant.roles_size(); ++k) {
    const internal::v1::Role role =
        static_cast<internal::v1::Role>(grant.roles(k));
    auto [held, remote] = agency->RoleSlots(role);
    if (held == nullptr) {
      return Error(
          grant_lines.Of("roles", k),
          absl::StrCat(where, ": unknown role (", grant.roles(k), ")"));
    }
    if (!*held) {
      return Error(grant_lines.Of("roles", k),
                   absl::StrCat(where, " grants ", RoleName(role),
                                ", which the agency does not have"));
    }
    remote->Union(at);
  }
  return absl::OkStatus();
}

absl::Status CompiledPolicy::ResolvePrincipal(const std::string& principal,
                                              int line, absl::string_view where,
                                              IndexSet* out) const {
  auto bad = [&](absl::string_view why) {
    return Error(line,
                 absl::StrCat(where, " principal '", principal, "': ", why));
  };
  if (principal == "*" || principal == "*/*") {
    for (size_t i = 0; i < agencies.size(); ++i) out->Add(static_cast<int>(i));
    return absl::OkStatus();
  }
  if (absl::StartsWith(principal, "@")) {
    std::string group = principal.substr(1);
    auto it = groups.find(group);
    if (group.empty()) return bad("empty group name after '@'");
    if (it == groups.end()) {
      return bad(absl::StrCat("no node declares group '", group, "'"));
    }
    for (size_t i = 0; i < agencies.size(); ++i) {
      if (it->second.Has(agencies[i].node)) out->Add(static_cast<int>(i));
    }
    return absl::OkStatus();
  }
  std::vector<std::string> parts = absl::StrSplit(principal, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return bad("expected NODE/agency, NODE/*, */agency, @GROUP or *");
  }
  const std::string& node = parts[0];
  const std::string& name = parts[1];
  if (node == "*") {
    bool any = false;
    for (size_t i = 0; i < agencies.size(); ++i) {
      if (agencies[i].name == name) {
        out->Add(static_cast<int>(i));
        any = true;
      }
    }
    if (!any)
      return bad(absl::StrCat("no agency is named '", name, "' on any node"));
    return absl::OkStatus();
  }
  int n = Node(node);
  if (n < 0) return bad(absl::StrCat("unknown node '", node, "'"));
  if (name == "*") {
    for (size_t i = 0; i < agencies.size(); ++i) {
      if (agencies[i].node == n) out->Add(static_cast<int>(i));
    }
    return absl::OkStatus();
  }
  int a = Agency(principal);
  if (a < 0) return bad(absl::StrCat("unknown agency '", principal, "'"));
  out->Add(a);
  return absl::OkStatus();
}

absl::Status CompiledPolicy::Compile(const TextFormat::ParseInfoTree* tree) {
  Lines root(tree, internal::v1::Policy::descriptor(), 1);
  IBSM_RETURN_IF_ERROR(CompileLevels(root));
  IBSM_RETURN_IF_ERROR(CompileNodes(root));
  IBSM_RETURN_IF_ERROR(CompileGroups(root));
  IndexTargets();
  IBSM_RETURN_IF_ERROR(CompileAgencies(root));
  IBSM_RETURN_IF_ERROR(CheckLocalNode());
  IBSM_RETURN_IF_ERROR(CompileRules(root));
  IndexCandidates();
  return absl::OkStatus();
}

absl::StatusOr<int> CompiledPolicy::KnownLevel(const std::string& value,
                                               int line,
                                               absl::string_view what) const {
  if (value.empty()) {
    return Error(line, absl::StrCat(what, " is missing; one of: ",
                                    absl::StrJoin(levels, ", ")));
  }
  int rank = Level(value);
  if (rank < 0) {
    return Error(line, absl::StrCat(what, " '", value,
                                    "' is not a classification level (",
                                    absl::StrJoin(levels, ", "), ")"));
  }
  return rank;
}

// Levels, lowest first.
absl::Status CompiledPolicy::CompileLevels(const Lines& root) {
  if (proto.classification_levels().empty()) {
    return Error(1, "no classification_levels: list the levels, lowest first");
  }
  for (int i = 0; i < proto.classification_levels_size(); ++i) {
    const std::string& level = proto.classification_levels(i);
    int line = root.Of("classification_levels", i);
    if (level.empty()) return Error(line, "empty classification level");
    if (!level_rank.emplace(level, i).second) {
      return Error(
          line, absl::StrCat("duplicate classification level '", level, "'"));
    }
    levels.push_back(level);
  }
  return absl::OkStatus();
}

// Nodes (their groups come next, once every node id is known).
absl::Status CompiledPolicy::CompileNodes(const Lines& root) {
  for (int i = 0; i < proto.nodes_size(); ++i) {
    IBSM_ASSIGN_OR_RETURN(CompiledNode node,
                          CompileNode(proto.nodes(i), root.Nested("nodes", i)));
    node_index.emplace(node.id, static_cast<int>(nodes.size()));
    nodes.push_back(std::move(node));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompiledNode> CompiledPolicy::CompileNode(
    const internal::v1::NodeSpec& spec, const Lines& lines) const {
  CompiledNode node;
  node.id = spec.id();
  node.line = lines.line();
  node.hub = spec.hub();
  if (node.id.empty()) return Error(lines.line(), "node without an id");
  if (node.id.find_first_of("/*@>., ") != std::string::npos) {
    return Error(lines.Of("id"), absl::StrCat("node id '", node.id,
                                              "' may not contain '/', '*', "
                                              "'@', '>', '.', ',' or spaces"));
  }
  if (node_index.contains(node.id)) {
    return Error(lines.Of("id"),
                 absl::StrCat("duplicate node id '", node.id, "'"));
  }
  IBSM_ASSIGN_OR_RETURN(
      node.clearance, KnownLevel(spec.clearance(), lines.Of("clearance"),
                                 absl::StrCat("clearance of node ", node.id)));
  return node;
}

// Groups of nodes; a group may not have the name of a node.
absl::Status CompiledPolicy::CompileGroups(const Lines& root) {
  for (int i = 0; i < proto.nodes_size(); ++i) {
    Lines lines = root.Nested("nodes", i);
    for (int g = 0; g < proto.nodes(i).groups_size(); ++g) {
      const std::string& group = proto.nodes(i).groups(g);
      int line = lines.Of("groups", g);
      if (group.empty() || group.find_first_of("/*@>, ") != std::string::npos) {
        return Error(line, absl::StrCat("bad group name '", group,
                                        "' (write it without '@')"));
      }
      if (node_index.contains(group)) {
        return Error(
            line, absl::StrCat("group '", group, "' has the name of a node"));
      }
      auto [it, inserted] = groups.try_emplace(group, IndexSet(nodes.size()));
      it->second.Add(i);
      nodes[i].groups.push_back(group);
    }
  }
  return absl::OkStatus();
}

// Every name that stands for nodes (a node id or a group) and its nodes.
void CompiledPolicy::IndexTargets() {
  for (size_t i = 0; i < nodes.size(); ++i) {
    IndexSet one(nodes.size());
    one.Add(static_cast<int>(i));
    targets.emplace(nodes[i].id, std::move(one));
  }
  for (const auto& [name, set] : groups) targets.emplace(name, set);
}

// Agencies, with their roles and remote access.
absl::Status CompiledPolicy::CompileAgencies(const Lines& root) {
  for (int i = 0; i < proto.agencies_size(); ++i) {
    IBSM_ASSIGN_OR_RETURN(
        CompiledAgency agency,
        CompileAgency(proto.agencies(i), root.Nested("agencies", i)));
    agency_index.emplace(agency.id, static_cast<int>(agencies.size()));
    agencies.push_back(std::move(agency));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompiledAgency> CompiledPolicy::CompileAgency(
    const internal::v1::AgencySpec& spec, const Lines& lines) const {
  int id_line = lines.Of("id");
  CompiledAgency agency;
  agency.id = spec.id();
  agency.line = lines.line();
  std::vector<std::string> parts = absl::StrSplit(agency.id, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty() ||
      agency.id.find_first_of("*@>, ") != std::string::npos) {
    return Error(id_line,
                 absl::StrCat("agency id '", agency.id, "' is not NODE/name"));
  }
  agency.node = Node(parts[0]);
  if (agency.node < 0) {
    return Error(id_line,
                 absl::StrCat("agency '", agency.id,
                              "' belongs to unknown node '", parts[0], "'"));
  }
  agency.name = parts[1];
  if (agency_index.contains(agency.id)) {
    return Error(id_line,
                 absl::StrCat("duplicate agency id '", agency.id, "'"));
  }
  IBSM_ASSIGN_OR_RETURN(
      agency.clearance,
      KnownLevel(spec.clearance(), lines.Of("clearance"),
                 absl::StrCat("clearance of agency ", agency.id)));
  IBSM_RETURN_IF_ERROR(CompileRoles(spec, lines, &agency));
  IBSM_RETURN_IF_ERROR(CompileRemoteAccess(spec, lines, &agency));
  return agency;
}

absl::Status CompiledPolicy::CompileRoles(const internal::v1::AgencySpec& spec,
                                          const Lines& lines,
                                          CompiledAgency* agency) const {
  for (int r = 0; r < spec.roles_size(); ++r) {
    bool* held =
        agency->RoleSlots(static_cast<internal::v1::Role>(spec.roles(r))).first;
    if (held == nullptr) {
      return Error(
          lines.Of("roles", r),
          absl::StrCat("agency ", agency->id, ": unknown role (", spec.roles(r),
                       "); use ROLE_PUBLISHER, "
                       "ROLE_SUBSCRIBER, ROLE_AUDITOR or ROLE_ADMIN"));
    }
    *held = true;
  }
  return absl::OkStatus();
}

// The node the policy is loaded for must be one of its nodes.
absl::Status CompiledPolicy::CheckLocalNode() const {
  if (!local_node.empty() && Node(local_node) < 0) {
    return Error(1, absl::StrCat("this node, ", local_node,
                                 ", is not a node of the policy; add a "
                                 "nodes { id: \"",
                                 local_node, "\" } entry"));
  }
  return absl::OkStatus();
}

// Topic rules, named uniquely.
absl::Status CompiledPolicy::CompileRules(const Lines& root) {
  absl::flat_hash_set<std::string> rule_names;
  for (int i = 0; i < proto.topic_rules_size(); ++i) {
    const internal::v1::TopicRule& spec = proto.topic_rules(i);
    Lines lines = root.Nested("topic_rules", i);
    if (spec.name().empty()) {
      return Error(lines.line(), "topic rule without a name");
    }
    if (!rule_names.insert(spec.name()).second) {
      return Error(lines.Of("name"), absl::StrCat("duplicate topic rule name '",
                                                  spec.name(), "'"));
    }
    IBSM_ASSIGN_OR_RETURN(CompiledRule rule, CompileRule(spec, lines));
    rules.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompiledRule> CompiledPolicy::CompileRule(
    const internal::v1::TopicRule& spec, const Lines& lines) const {
  CompiledRule rule;
  rule.name = spec.name();
  rule.line = lines.line();
  IBSM_RETURN_IF_ERROR(CompileTopics(spec, lines, &rule));
  if (spec.publishers().empty() && spec.subscribers().empty() &&
      spec.share().empty()) {
    return Error(lines.line(),
                 absl::StrCat("rule '", rule.name,
                              "' has no publishers, subscribers nor share "
                              "and can never take effect"));
  }
  IBSM_RETURN_IF_ERROR(CompilePrincipals(spec, lines, &rule));
  IBSM_ASSIGN_OR_RETURN(
      rule.max_level,
      KnownLevel(spec.max_classification(), lines.Of("max_classification"),
                 absl::StrCat("max_classification of rule ", rule.name)));
  rule.share_level.assign(nodes.size(), -1);
  for (int s = 0; s < spec.share_size(); ++s) {
    IBSM_RETURN_IF_ERROR(CompileShare(spec, s, lines, &rule));
  }
  IBSM_RETURN_IF_ERROR(CompileRetention(spec, lines, &rule));
  return rule;
}

// The rule's topic patterns; a rule without any could never match.
absl::Status CompiledPolicy::CompileTopics(const internal::v1::TopicRule& spec,
                                           const Lines& lines,
                                           CompiledRule* rule) const {
  if (spec.topics().empty()) {
    return Error(lines.line(),
                 absl::StrCat("rule '", rule->name,
                              "' has no topics and can never match"));
  }
  for (int t = 0; t < spec.topics_size(); ++t) {
    int line = lines.Of("topics", t);
    absl::StatusOr<TopicPattern> pattern = TopicPattern::Parse(spec.topics(t));
    if (!pattern.ok()) {
      return Error(line, absl::StrCat(pattern.status().message(), " (rule ",
                                      rule->name, ")"));
    }
    rule->patterns.push_back(*std::move(pattern));
    rule->pattern_segments.push_back(Segments(spec.topics(t)));
    rule->pattern_lines.push_back(line);
  }
  return absl::OkStatus();
}

// Publishers and subscribers: principals resolved to sets of agencies.
absl::Status CompiledPolicy::CompilePrincipals(
    const internal::v1::TopicRule& spec, const Lines& lines,
    CompiledRule* rule) const {
  rule->publishers = IndexSet(agencies.size());
  rule->subscribers = IndexSet(agencies.size());
  for (int p = 0; p < spec.publishers_size(); ++p) {
    IBSM_RETURN_IF_ERROR(ResolvePrincipal(
        spec.publishers(p), lines.Of("publishers", p),
        absl::StrCat("rule ", rule->name, ": publisher"), &rule->publishers));
  }
  for (int s = 0; s < spec.subscribers_size(); ++s) {
    IBSM_RETURN_IF_ERROR(ResolvePrincipal(
        spec.subscribers(s), lines.Of("subscribers", s),
        absl::StrCat("rule ", rule->name, ": subscriber"), &rule->subscribers));
  }
  rule->publishers_text = absl::StrJoin(spec.publishers(), ", ");
  rule->subscribers_text = absl::StrJoin(spec.subscribers(), ", ");
  return absl::OkStatus();
}

// Share entry `index` of the rule: raises the level shared with each node it
// names, up to the rule's own ceiling.
absl::Status CompiledPolicy::CompileShare(const internal::v1::TopicRule& spec,
                                          int index, const Lines& lines,
                                          CompiledRule* rule) const {
  const internal::v1::Share& share = spec.share(index);
  Lines share_lines = lines.Nested("share", index);
  const std::string in_rule = absl::StrCat(" (rule ", rule->name, ")");
  if (share.to().empty()) {
    return Error(
        share_lines.line(),
        absl::StrCat("share entry of rule ", rule->name, " names no node"));
  }
  IBSM_ASSIGN_OR_RETURN(
      int level,
      KnownLevel(
          share.max_classification(), share_lines.Of("max_classification"),
          absl::StrCat("share max_classification of rule ", rule->name)));
  if (level > rule->max_level) {
    return Error(
        share_lines.Of("max_classification"),
        absl::StrCat("share max_classification ", share.max_classification(),
                     " is above the rule's max_classification ",
                     spec.max_classification(), in_rule));
  }
  for (int t = 0; t < share.to_size(); ++t) {
    const std::string& to = share.to(t);
    auto it = targets.find(to);
    if (it == targets.end()) {
      return Error(share_lines.Of("to", t),
                   absl::StrCat("share.to '", to, "' is not a node or group",
                                absl::StartsWith(to, "@")
                                    ? " (write groups without '@' here)"
                                    : "",
                                in_rule));
    }
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (it->second.Has(static_cast<int>(n))) {
        rule->share_level[n] = std::max(rule->share_level[n], level);
      }
    }
  }
  rule->has_share = true;
  return absl::OkStatus();
}

absl::Status CompiledPolicy::CompileRetention(
    const internal::v1::TopicRule& spec, const Lines& lines,
    CompiledRule* rule) const {
  if (!spec.has_retention()) return absl::OkStatus();
  const auto& r = spec.retention();
  if (r.seconds() < 0 || r.nanos() < 0 || r.nanos() >= 1000000000) {
    return Error(
        lines.Of("retention"),
        absl::StrCat("retention must not be negative (rule ", rule->name, ")"));
  }
  rule->has_retention = true;
  rule->retention = absl::Seconds(r.seconds()) + absl::Nanoseconds(r.nanos());
  return absl::OkStatus();
}

// The candidate index Match() searches: every pattern of every rule, best
// first, by literal first segment and for wildcard-first patterns alone.
void CompiledPolicy::IndexCandidates() {
  std::vector<PatternRef> refs;
  for (size_t r = 0; r < rules.size(); ++r) {
    const CompiledRule& rule = rules[r];
    for (size_t p = 0; p < rule.pattern_segments.size(); ++p) {
      PatternRef ref;
      ref.rule = static_cast<int>(r);
      ref.pattern = static_cast<int>(p);
      for (const std::string& seg : rule.pattern_segments[p]) {
        if (seg == ">") {
          ++ref.tails;
        } else if (seg != "*") {
          ++ref.literals;
        }
      }
      ref.segments = static_cast<int>(rule.pattern_segments[p].size());
      refs.push_back(ref);
    }
  }
  std::sort(
      refs.begin(), refs.end(),
      [](const PatternRef& a, const PatternRef& b) { return a.Before(b); });
  for (const PatternRef& ref : refs) {
    const std::string& first = rules[ref.rule].pattern_segments[ref.pattern][0];
    if (first == "*" || first == ">") {
      wildcard_first.push_back(ref);
    } else {
      by_first_segment[first];  // create
    }
  }
  for (auto& [first, list] : by_first_segment) {
    for (const PatternRef& ref : refs) {
      const std::string& f = rules[ref.rule].pattern_segments[ref.pattern][0];
      if (f == first || f == "*" || f == ">") list.push_back(ref);
    }
  }
}

std::vector<std::string> CompiledPolicy::Lint() const {
  std::vector<std::string> out;
  LintShadowedRules(&out);
  LintAgencies(&out);
  LintUnusedRules(&out);
  return out;
}

std::string CompiledPolicy::Warning(int line, absl::string_view what) const {
  return absl::StrCat(source, ":", line, ": warning: ", what);
}

// Shadowed rules: every pattern also appears in an earlier rule.
void CompiledPolicy::LintShadowedRules(std::vector<std::string>* out) const {
  absl::flat_hash_map<std::string, int> first_rule;  // pattern -> rule
  for (size_t r = 0; r < rules.size(); ++r) {
    const CompiledRule& rule = rules[r];
    std::vector<std::string> by;
    for (const TopicPattern& p : rule.patterns) {
      auto it = first_rule.find(p.text());
      if (it != first_rule.end() && it->second != static_cast<int>(r)) {
        by.push_back(absl::StrCat("'", p.text(), "' (rule ",
                                  rules[it->second].name, ")"));
      }
    }
    if (by.size() == rule.patterns.size()) {
      out->push_back(
          Warning(rule.line, absl::StrCat("rule '", rule.name,
                                          "' is shadowed and never decides: "
                                          "every pattern is already in an "
                                          "earlier rule: ",
                                          absl::StrJoin(by, ", "))));
    }
    for (const TopicPattern& p : rule.patterns) {
      first_rule.try_emplace(p.text(), static_cast<int>(r));
    }
  }
}

// Agencies with no rights, and agencies cleared above their node.
void CompiledPolicy::LintAgencies(std::vector<std::string>* out) const {
  for (size_t a = 0; a < agencies.size(); ++a) {
    const CompiledAgency& agency = agencies[a];
    if (agency.auditor || agency.admin) continue;
    bool rights = false;
    for (const CompiledRule& rule : rules) {
      if ((agency.publisher && rule.publishers.Has(static_cast<int>(a))) ||
          (agency.subscriber && rule.subscribers.Has(static_cast<int>(a)))) {
        rights = true;
        break;
      }
    }
    if (!rights) {
      out->push_back(Warning(
          agency.line,
          absl::StrCat("agency ", agency.id,
                       " has no rights: no rule lets it publish or subscribe "
                       "(check its roles and the rules' principals)")));
    }
    if (agency.clearance > nodes[agency.node].clearance) {
      out->push_back(Warning(
          agency.line, absl::StrCat("agency ", agency.id, " clearance ",
                                    levels[agency.clearance],
                                    " is above its node's clearance ",
                                    levels[nodes[agency.node].clearance],
                                    "; it receives at most the node's level")));
    }
  }
}

// Topics nobody may receive, rules nobody may publish on.
void CompiledPolicy::LintUnusedRules(std::vector<std::string>* out) const {
  for (const CompiledRule& rule : rules) {
    bool receiver = false, publisher = false;
    for (size_t a = 0; a < agencies.size(); ++a) {
      int ai = static_cast<int>(a);
      receiver |= agencies[a].subscriber && rule.subscribers.Has(ai);
      publisher |= agencies[a].publisher && rule.publishers.Has(ai);
    }
    if (!receiver && !rule.has_share) {
      out->push_back(
          Warning(rule.line,
                  absl::StrCat("nobody may receive topics of rule '", rule.name,
                               "': no subscriber principal matches an "
                               "agency with ROLE_SUBSCRIBER and it is not "
                               "shared")));
    }
    if (!publisher) {
      out->push_back(Warning(
          rule.line, absl::StrCat("nobody may publish on rule '", rule.name,
                                  "': no publisher principal matches an "
                                  "agency with ROLE_PUBLISHER")));
    }
  }
}

// ---------------------------------------------------------------------------

AlertFacts AlertFacts::Of(const v1::Alert& alert) {
  AlertFacts facts;
  facts.topic = alert.topic();
  facts.classification = alert.classification();
  facts.releasable_to.assign(alert.releasable_to().begin(),
                             alert.releasable_to().end());
  facts.orcon = alert.orcon();
  facts.tlp = alert.tlp();
  facts.originator = alert.originator();
  return facts;
}

Recipient Recipient::Agency(std::string id, std::string at) {
  return Recipient{Kind::kAgency, std::move(id), false, std::move(at)};
}

Recipient Recipient::Node(std::string id, bool relay) {
  return Recipient{Kind::kNode, std::move(id), relay, ""};
}

Policy::Policy(std::unique_ptr<CompiledPolicy> compiled)
    : compiled_(std::move(compiled)) {}

Policy::~Policy() = default;

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Parse(
    absl::string_view text, absl::string_view source,
    absl::string_view local_node) {
  auto compiled = std::make_unique<CompiledPolicy>();
  compiled->source = std::string(source);
  compiled->local_node = std::string(local_node);
  compiled->version = Sha256Prefix(text);
  TextFormat::Parser parser;
  SyntaxErrors errors;
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  parser.AllowUnknownField(false);
  parser.AllowUnknownExtension(false);
  google::protobuf::io::ArrayInputStream input(text.data(),
                                               static_cast<int>(text.size()));
  if (text.size() > (size_t{1} << 30) ||
      !parser.Parse(&input, &compiled->proto)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", errors.line(), ": ",
                     errors.message().empty() ? "cannot parse the policy"
                                              : errors.message()));
  }
  IBSM_RETURN_IF_ERROR(compiled->Compile(&tree));
  return std::shared_ptr<const Policy>(new Policy(std::move(compiled)));
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Load(
    const std::string& path, absl::string_view local_node) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open policy file ", path));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read policy file ", path));
  }
  return Parse(buffer.str(), path, local_node);
}

const std::string& Policy::version() const { return compiled_->version; }

const std::vector<std::string>& Policy::classification_levels() const {
  return compiled_->levels;
}

const internal::v1::Policy& Policy::proto() const { return compiled_->proto; }

const std::string& Policy::local_node() const { return compiled_->local_node; }

std::vector<std::string> Policy::Lint() const { return compiled_->Lint(); }

absl::Duration Policy::RetentionFor(absl::string_view topic) const {
  const CompiledRule* rule = compiled_->Match(topic);
  if (rule == nullptr || !rule->has_retention) return absl::ZeroDuration();
  return rule->retention;
}

namespace {

// The alert's classification level and its topic rule.
struct LevelAndRule {
  int level;
  const CompiledRule* rule;
};

// Both, or the denial when the level is unknown or no rule covers the topic
// (deny by default). Shared by publish and delivery decisions.
std::variant<LevelAndRule, Decision> Classify(const CompiledPolicy& p,
                                              const AlertFacts& alert) {
  int level = p.Level(alert.classification);
  if (level < 0) {
    return Decision::Deny("unknown-classification",
                          absl::StrCat("classification '", alert.classification,
                                       "' is not a level of this policy (",
                                       absl::StrJoin(p.levels, ", "), ")"),
                          p.version);
  }
  const CompiledRule* rule = p.Match(alert.topic);
  if (rule == nullptr) {
    return Decision::Deny("no-rule",
                          absl::StrCat("no topic rule covers topic ",
                                       alert.topic, "; deny by default"),
                          p.version);
  }
  return LevelAndRule{level, rule};
}

// One delivery decision of Policy::Decide once the recipient is resolved and
// the alert classified: its steps, in the order they run. A step returns the
// final decision when it makes one (nearly always a denial), and nothing
// when the next step decides.
class DeliveryCheck {
 public:
  // `agency` is the recipient agency's index, -1 for a node recipient;
  // `node` the recipient node (an agency's own node).
  DeliveryCheck(const CompiledPolicy& p, const AlertFacts& alert,
                const Recipient& recipient, int agency, int node,
                LevelAndRule classified)
      : p_(p),
        alert_(alert),
        recipient_(recipient),
        agency_(agency),
        node_(node),
        level_(classified.level),
        rule_(*classified.rule),
        in_rule_(absl::StrCat(" (rule ", rule_.name, ")")),
        origin_(p.Node(NodeOf(alert.originator))),
        controlled_(IsOriginatorControlled(alert)) {}

  Decision Run() const {
    if (std::optional<Decision> d = TopicCeiling()) return *d;
    if (std::optional<Decision> d =
            agency_ >= 0 ? AgencyRecipient() : NodeRecipient()) {
      return *d;
    }
    if (std::optional<Decision> d = NodeClearance()) return *d;
    if (node_ != origin_) {
      if (std::optional<Decision> d = Sharing()) return *d;
    }
    return Allowed();
  }

 private:
  Decision Deny(absl::string_view reason) const {
    return Decision::Deny(rule_.name, absl::StrCat(reason, in_rule_),
                          p_.version);
  }

  std::optional<Decision> TopicCeiling() const {
    if (level_ <= rule_.max_level) return std::nullopt;
    return Deny(absl::StrCat("alert classification ", alert_.classification,
                             " is above the topic ceiling ",
                             p_.levels[rule_.max_level]));
  }

  // A node: whether it may relay; the originator's node gets its own alerts.
  std::optional<Decision> NodeRecipient() const {
    const std::string& who = recipient_.id;
    if (recipient_.relay) {
      if (controlled_) {
        return Deny(absl::StrCat(ControlLabel(alert_), " alert: node ", who,
                                 " may not relay it to other nodes"));
      }
      if (!p_.nodes[node_].hub) {
        return Deny(
            absl::StrCat("node ", who, " is not a hub and may not relay"));
      }
    }
    if (node_ == origin_) {
      return Decision::Allow(
          "origin", absl::StrCat("node ", who, " is the originator's node"),
          p_.version);
    }
    return std::nullopt;
  }

  // An agency: among the rule's subscribers, and cleared for the alert.
  std::optional<Decision> AgencyRecipient() const {
    const std::string& who = recipient_.id;
    if (!rule_.subscribers.Has(agency_)) {
      return Deny(absl::StrCat(who, " is not among the subscribers [",
                               rule_.subscribers_text, "]"));
    }
    const CompiledAgency& agency = p_.agencies[agency_];
    if (agency.clearance < level_) {
      return Deny(absl::StrCat(who, " clearance ", p_.levels[agency.clearance],
                               " < alert classification ",
                               alert_.classification));
    }
    return std::nullopt;
  }

  std::optional<Decision> NodeClearance() const {
    const CompiledNode& node = p_.nodes[node_];
    if (node.clearance >= level_) return std::nullopt;
    return Deny(
        absl::StrCat("node ", node.id, " clearance ", p_.levels[node.clearance],
                     " < alert classification ", alert_.classification));
  }

  // Leaving the originator's node: releasability, the topic's share with
  // the node, and originator control.
  std::optional<Decision> Sharing() const {
    const CompiledNode& node = p_.nodes[node_];
    if (!alert_.releasable_to.empty() && !p_.Released(alert_, node_)) {
      return Deny(absl::StrCat("node ", node.id,
                               " is not in the alert's releasability [",
                               absl::StrJoin(alert_.releasable_to, ", "), "]"));
    }
    int shared = rule_.share_level[node_];
    if (shared < 0) {
      return Deny(absl::StrCat("the topic is not shared with node ", node.id));
    }
    if (shared < level_) {
      return Deny(absl::StrCat("the topic is shared with node ", node.id,
                               " only up to ", p_.levels[shared],
                               " < alert classification ",
                               alert_.classification));
    }
    if (controlled_ && !p_.NamedExplicitly(alert_, node_)) {
      return Deny(absl::StrCat(
          ControlLabel(alert_), " alert: node ", node.id,
          " is not named explicitly in releasable_to (groups do not count)"));
    }
    return std::nullopt;
  }

  Decision Allowed() const {
    const std::string& who = recipient_.id;
    if (agency_ >= 0) {
      return Decision::Allow(
          rule_.name,
          absl::StrCat(who, " may receive ", alert_.classification,
                       " alerts on ", alert_.topic,
                       node_ == origin_ ? " (originator's node)"
                                        : " (shared with its node)",
                       in_rule_),
          p_.version);
    }
    return Decision::Allow(
        rule_.name,
        absl::StrCat("topic shared with node ", who, " up to ",
                     p_.levels[rule_.share_level[node_]],
                     recipient_.relay ? "; hub relay allowed" : "", in_rule_),
        p_.version);
  }

  const CompiledPolicy& p_;
  const AlertFacts& alert_;
  const Recipient& recipient_;
  const int agency_;
  const int node_;
  const int level_;
  const CompiledRule& rule_;
  const std::string in_rule_;
  const int origin_;
  const bool controlled_;
};

}  // namespace

Decision Policy::DecideAccess(const std::string& agency_id,
                              internal::v1::Role role,
                              absl::string_view at_node) const {
  const CompiledPolicy& p = *compiled_;
  auto deny = [&](std::string rule, std::string reason) {
    return Decision::Deny(std::move(rule), std::move(reason), p.version);
  };
  const int a = p.Agency(agency_id);
  if (a < 0) {
    return deny("unknown-agency",
                absl::StrCat("agency '", agency_id, "' is not in the policy"));
  }
  const CompiledAgency& agency = p.agencies[a];
  auto [held, remote] = agency.RoleSlots(role);
  if (held == nullptr || !*held) {
    return deny("role",
                absl::StrCat(agency_id, " does not have ", RoleName(role)));
  }
  const std::string& own = p.nodes[agency.node].id;
  if (at_node.empty() || at_node == own) {
    return Decision::Allow("own-node",
                           absl::StrCat(agency_id, " has ", RoleName(role),
                                        " at its own node ", own),
                           p.version);
  }
  const int at = p.Node(at_node);
  if (at < 0) {
    return deny("unknown-node",
                absl::StrCat("node '", at_node, "' is not in the policy"));
  }
  if (!remote->Has(at)) {
    return deny("own-node",
                absl::StrCat(agency_id, " acts only at its own node ", own,
                             ", not at ", at_node,
                             ": the policy grants it no "
                             "remote_access with ",
                             RoleName(role), " at ", at_node));
  }
  return Decision::Allow(
      "remote-access",
      absl::StrCat(agency_id, " has ", RoleName(role), " at ", at_node,
                   " by an explicit remote_access grant (its own node is ", own,
                   ")"),
      p.version);
}

Decision Policy::DecidePublish(const AlertFacts& alert,
                               const std::string& publisher,
                               absl::string_view at_node) const {
  const CompiledPolicy& p = *compiled_;
  auto deny = [&](std::string rule, std::string reason) {
    return Decision::Deny(std::move(rule), std::move(reason), p.version);
  };
  int a = p.Agency(publisher);
  if (a < 0) {
    return deny("unknown-agency",
                absl::StrCat("agency '", publisher, "' is not in the policy"));
  }
  const CompiledAgency& agency = p.agencies[a];
  if (Decision venue =
          DecideAccess(publisher, internal::v1::ROLE_PUBLISHER, at_node);
      !venue.allowed) {
    return venue;
  }
  std::variant<LevelAndRule, Decision> classified = Classify(p, alert);
  if (Decision* denied = std::get_if<Decision>(&classified)) return *denied;
  const int level = std::get<LevelAndRule>(classified).level;
  const CompiledRule* rule = std::get<LevelAndRule>(classified).rule;
  const std::string in_rule = absl::StrCat(" (rule ", rule->name, ")");
  if (!rule->publishers.Has(a)) {
    return deny(rule->name,
                absl::StrCat(publisher, " is not among the publishers [",
                             rule->publishers_text, "]", in_rule));
  }
  if (level > rule->max_level) {
    return deny(rule->name,
                absl::StrCat("classification ", alert.classification,
                             " is above the topic ceiling ",
                             p.levels[rule->max_level], in_rule));
  }
  if (level > agency.clearance) {
    return deny(rule->name, absl::StrCat(publisher, " clearance ",
                                         p.levels[agency.clearance],
                                         " < alert classification ",
                                         alert.classification, in_rule));
  }
  return Decision::Allow(
      rule->name,
      absl::StrCat(publisher, " may publish on ", alert.topic, " up to ",
                   p.levels[std::min(rule->max_level, agency.clearance)],
                   in_rule),
      p.version);
}

Decision Policy::Decide(const AlertFacts& alert,
                        const Recipient& recipient) const {
  const CompiledPolicy& p = *compiled_;
  auto deny = [&](std::string rule, std::string reason) {
    return Decision::Deny(std::move(rule), std::move(reason), p.version);
  };
  const std::string& who = recipient.id;
  int a = -1, n = -1;
  if (recipient.kind == Recipient::Kind::kAgency) {
    a = p.Agency(who);
    if (a < 0) {
      return deny("unknown-agency",
                  absl::StrCat("agency '", who, "' is not in the policy"));
    }
    // Where it is served changes whether it may receive there at all, never
    // what it receives: below, it gets what its own node could get.
    if (Decision venue =
            DecideAccess(who, internal::v1::ROLE_SUBSCRIBER, recipient.at);
        !venue.allowed) {
      return venue;
    }
    n = p.agencies[a].node;
  } else {
    n = p.Node(who);
    if (n < 0) {
      return deny("unknown-node",
                  absl::StrCat("node '", who, "' is not in the policy"));
    }
  }
  std::variant<LevelAndRule, Decision> classified = Classify(p, alert);
  if (Decision* denied = std::get_if<Decision>(&classified)) return *denied;
  return DeliveryCheck(p, alert, recipient, a, n,
                       std::get<LevelAndRule>(classified))
      .Run();
}

namespace {

// Entry points of the Authorizer act at the node the policy was loaded for;
// a policy loaded without one (by a tool) cannot say where the caller is and
// refuses.
std::optional<Decision> Unbound(const std::string& local_node,
                                const std::string& version) {
  if (!local_node.empty()) return std::nullopt;
  return Decision::Deny("unbound-policy",
                        "the policy was loaded without the node it is "
                        "enforced at, so no call can be decided",
                        version);
}

}  // namespace

Decision Policy::MayPublish(const Identity& publisher,
                            const v1::Alert& alert) const {
  if (auto refused = Unbound(local_node(), version())) return *refused;
  if (!publisher.is_agency()) {
    return Decision::Deny("agencies-only",
                          absl::StrCat("'", publisher.id(),
                                       "' is a node certificate; only agency "
                                       "certificates may publish"),
                          version());
  }
  AlertFacts facts = AlertFacts::Of(alert);
  facts.originator = publisher.id();
  return DecidePublish(facts, facts.originator, local_node());
}

Decision Policy::MayAudit(const Identity& auditor) const {
  const CompiledPolicy& p = *compiled_;
  if (auto refused = Unbound(p.local_node, p.version)) return *refused;
  const std::string who = auditor.id();
  if (!auditor.is_agency() || p.Agency(who) < 0) {
    return Decision::Deny(
        "unknown-agency",
        absl::StrCat("'", who, "' is not an agency of the policy"), p.version);
  }
  return DecideAccess(who, internal::v1::ROLE_AUDITOR, p.local_node);
}

Decision Policy::MaySeeAuditMetadata(const Identity& auditor,
                                     absl::string_view classification) const {
  const CompiledPolicy& p = *compiled_;
  const std::string who = auditor.id();
  const int a = auditor.is_agency() ? p.Agency(who) : -1;
  if (a < 0 || !p.agencies[a].auditor) {
    return Decision::Deny(
        "role", absl::StrCat(who, " does not have ROLE_AUDITOR"), p.version);
  }
  const CompiledAgency& agency = p.agencies[a];
  if (agency.audit_metadata_above_clearance) {
    return Decision::Allow("audit-metadata",
                           absl::StrCat(who,
                                        " may see the metadata of every record "
                                        "(audit_metadata_above_clearance)"),
                           p.version);
  }
  const int level = p.Level(classification);
  if (level < 0) {  // fail closed: a level we cannot rank is above anyone
    return Decision::Deny("audit-clearance",
                          absl::StrCat("classification '", classification,
                                       "' is not a level of this policy"),
                          p.version);
  }
  if (level > agency.clearance) {
    return Decision::Deny(
        "audit-clearance",
        absl::StrCat(who, " clearance ", p.levels[agency.clearance],
                     " < record classification ", classification),
        p.version);
  }
  return Decision::Allow(
      "audit-clearance",
      absl::StrCat(who, " clearance ", p.levels[agency.clearance],
                   " >= record classification ", classification),
      p.version);
}

Decision Policy::MayGetNodeInfo(const Identity& caller) const {
  const CompiledPolicy& p = *compiled_;
  if (auto refused = Unbound(p.local_node, p.version)) return *refused;
  const std::string who = caller.id();
  if (!caller.is_agency()) {
    if (p.Node(caller.node) < 0) {
      return Decision::Deny(
          "unknown-node", absl::StrCat("node '", who, "' is not in the policy"),
          p.version);
    }
    return Decision::Allow("known-node",
                           absl::StrCat("node ", who, " is in the policy"),
                           p.version);
  }
  if (p.Agency(who) < 0) {
    return Decision::Deny(
        "unknown-agency",
        absl::StrCat("agency '", who, "' is not in the policy"), p.version);
  }
  // An agency that may not act here at all learns nothing of this node.
  bool holds_a_role = false;
  for (internal::v1::Role role :
       {internal::v1::ROLE_PUBLISHER, internal::v1::ROLE_SUBSCRIBER,
        internal::v1::ROLE_AUDITOR, internal::v1::ROLE_ADMIN}) {
    Decision d = DecideAccess(who, role, p.local_node);
    if (d.allowed) return d;
    holds_a_role |= d.rule != "role";
  }
  if (!holds_a_role) {
    return Decision::Deny("role", absl::StrCat(who, " has no role"), p.version);
  }
  return Decision::Deny(
      "own-node",
      absl::StrCat(who, " acts only at its own node ", caller.node,
                   " and has no remote_access at ", p.local_node),
      p.version);
}

Decision Policy::MaySeeNodeCounts(const Identity& caller) const {
  const CompiledPolicy& p = *compiled_;
  if (auto refused = Unbound(p.local_node, p.version)) return *refused;
  const std::string who = caller.id();
  if (caller.is_agency() && p.Agency(who) >= 0) {
    for (internal::v1::Role role :
         {internal::v1::ROLE_ADMIN, internal::v1::ROLE_AUDITOR}) {
      if (Decision d = DecideAccess(who, role, p.local_node); d.allowed) {
        return d;
      }
    }
  }
  return Decision::Deny(
      "node-counts",
      absl::StrCat(who, " is not an administrator or auditor at ", p.local_node,
                   "; sequence and subscription counts are withheld"),
      p.version);
}

Decision Policy::MaySubscribe(const Identity& subscriber,
                              const std::string& topic_pattern) const {
  const CompiledPolicy& p = *compiled_;
  if (auto refused = Unbound(p.local_node, p.version)) return *refused;
  const std::string who = subscriber.id();
  if (!subscriber.is_agency()) {
    return Decision::Deny("agencies-only",
                          absl::StrCat("'", who,
                                       "' is a node certificate; only agency "
                                       "certificates may subscribe"),
                          p.version);
  }
  int a = p.Agency(who);
  if (Decision venue =
          DecideAccess(who, internal::v1::ROLE_SUBSCRIBER, p.local_node);
      !venue.allowed) {
    return venue;
  }
  if (absl::StatusOr<TopicPattern> parsed = TopicPattern::Parse(topic_pattern);
      !parsed.ok()) {
    return Decision::Deny("bad-pattern", std::string(parsed.status().message()),
                          p.version);
  }
  std::vector<std::string> segments = Segments(topic_pattern);
  std::vector<std::string> granting;
  for (const CompiledRule& rule : p.rules) {
    if (!rule.subscribers.Has(a)) continue;
    for (const auto& pattern : rule.pattern_segments) {
      if (PatternsOverlap(segments, pattern)) {
        granting.push_back(rule.name);
        break;
      }
    }
  }
  if (granting.empty()) {
    return Decision::Allow(
        "subscribe",
        absl::StrCat(who, " may subscribe to ", topic_pattern,
                     ", but no rule currently lets it receive alerts there; "
                     "each alert is filtered on delivery"),
        p.version);
  }
  return Decision::Allow(
      granting.front(),
      absl::StrCat(who, " may subscribe to ", topic_pattern,
                   "; rules: ", absl::StrJoin(granting, ", "),
                   "; each alert is filtered on delivery"),
      p.version);
}

Decision Policy::MayReceive(const Identity& recipient,
                            const v1::Alert& alert) const {
  if (auto refused = Unbound(local_node(), version())) return *refused;
  if (!recipient.is_agency()) {
    return Decision::Deny("agencies-only",
                          absl::StrCat("'", recipient.id(),
                                       "' is a node certificate; only agency "
                                       "certificates receive alerts"),
                          version());
  }
  return Decide(AlertFacts::Of(alert),
                Recipient::Agency(recipient.id(), local_node()));
}

Decision Policy::MayForward(const v1::Alert& alert, absl::string_view node,
                            bool relay) const {
  return Decide(AlertFacts::Of(alert),
                Recipient::Node(std::string(node), relay));
}

Decision Policy::MayHaveOriginated(const v1::Alert& alert,
                                   absl::string_view origin_node) const {
  return DecidePublish(AlertFacts::Of(alert), alert.originator(), origin_node);
}

}  // namespace ibsm
