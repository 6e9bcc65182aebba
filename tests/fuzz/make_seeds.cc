// make_seeds OUT_DIR: writes the binary seed corpora of the fuzz targets
// (tests/fuzz/README.md) into OUT_DIR/<corpus>/, signed with the keys of
// the fixed fuzzing PKI (tests/fuzz/pki): for each target a handful of
// valid inputs and near-valid ones (one field off), a few KiB each at most.
// The committed corpora were made with
//   build-clang/fuzz/make_seeds tests/fuzz
// Signatures (ECDSA) differ on each run; the inputs are otherwise the same.
// Each valid seed is checked with the verifier its target calls (and each
// near-valid one must fail it), so a corpus that no longer reaches the code
// behind the signature is noticed here. Exit 1 with a message when a key, a
// step or such a check fails.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/alert_signature.h"
#include "ibsm/audit_verify.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"
#include "ibsm/internal/v1/federation.pb.h"
#include "ibsm/merkle.h"
#include "ibsm/v1/alert.pb.h"
#include "ibsm/v1/audit.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace ibsm::fuzz {
namespace {

std::filesystem::path out_dir;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().message()));
  return *std::move(value);
}

void Write(const std::string& corpus, const std::string& name,
           const std::string& bytes) {
  std::filesystem::path dir = out_dir / corpus;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) Fail(absl::StrCat("cannot write ", (dir / name).string()));
}

void Expect(bool holds, const std::string& what) {
  if (!holds) Fail(absl::StrCat("check failed: ", what));
}

// ---- Alerts ----

std::vector<std::string> ChainDer(const std::string& chain_file) {
  return Must(SigningChainFromPem(PkiFile(chain_file)), chain_file);
}

v1::Alert BaseAlert(const std::string& id, const std::string& originator,
                    const std::string& topic) {
  v1::Alert a;
  a.set_id(id);
  a.set_topic(topic);
  a.set_classification("RESTRICTED");
  a.add_releasable_to("SAHEL");
  a.set_severity(v1::SEVERITY_HIGH);
  a.mutable_created_at()->set_seconds(kVerifyAtUnix - 60);
  a.mutable_expires_at()->set_seconds(kVerifyAtUnix + 86400);
  a.mutable_location()->set_latitude(5.35);
  a.mutable_location()->set_longitude(-4.0);
  (*a.mutable_attributes())["vehicle"] = "white pick-up";
  (*a.mutable_attributes())["plate"] = "CI-1234-AB";
  a.set_content_type("text/plain");
  a.set_payload("suspect vehicle crossed at Noe, heading north");
  a.set_originator(originator);
  return a;
}

v1::Alert Signed(v1::Alert alert, const std::string& key_file,
                 const std::string& chain_file) {
  SigningKey key = Must(SigningKey::FromPem(PkiFile(key_file)), key_file);
  absl::Status signed_ok = SignAlert(key, ChainDer(chain_file), &alert);
  if (!signed_ok.ok()) Fail(std::string(signed_ok.message()));
  return alert;
}

v1::Alert SignedByCiv(const std::string& id, const std::string& topic) {
  return Signed(BaseAlert(id, kAgency, topic), "agency-CIV_police.key",
                "agency-CIV_police-chain.pem");
}

void AlertSeeds() {
  v1::Alert good = SignedByCiv("civ-0001", "border.crossing");
  Write("alert_corpus", "signed", good.SerializeAsString());
  Expect(VerifyAlertSignature(good, TrustStore(), FixedTimeChainOptions()).ok(),
         "the signed alert seed verifies");
  v1::Alert update = BaseAlert("civ-0002", kAgency, "border.crossing");
  v1::AlertReference* ref = update.add_references();
  ref->set_originator(kAgency);
  ref->set_alert_id("civ-0001");
  ref->set_kind(v1::AlertReference::KIND_UPDATE);
  update.set_tlp("AMBER");
  update.set_orcon(true);
  Write("alert_corpus", "signed-update",
        Signed(update, "agency-CIV_police.key", "agency-CIV_police-chain.pem")
            .SerializeAsString());
  v1::Alert unsigned_alert = BaseAlert("civ-0003", kAgency, "local.note");
  Write("alert_corpus", "unsigned", unsigned_alert.SerializeAsString());
  // Near-valid: signed by MLI/customs but claiming CIV/police; a changed
  // payload after signing; a bad classification.
  v1::Alert claims =
      Signed(BaseAlert("civ-0004", kAgency, "border.crossing"),
             "agency-MLI_customs.key", "agency-MLI_customs-chain.pem");
  Write("alert_corpus", "wrong-signer", claims.SerializeAsString());
  Expect(
      !VerifyAlertSignature(claims, TrustStore(), FixedTimeChainOptions()).ok(),
      "the wrong-signer seed is refused");
  v1::Alert edited = good;
  edited.set_payload("edited after signing");
  Write("alert_corpus", "edited", edited.SerializeAsString());
  v1::Alert bad = unsigned_alert;
  bad.set_classification("TOP SECRET");
  bad.set_id("");
  Write("alert_corpus", "invalid", bad.SerializeAsString());
}

// ---- A trail ----

class MapStorage : public MerkleStorage {
 public:
  std::optional<Hash> Get(int level, uint64_t index) const override {
    auto it = nodes_.find({level, index});
    if (it == nodes_.end()) return std::nullopt;
    return it->second;
  }
  void Apply(const std::vector<MerkleWrite>& writes) {
    for (const MerkleWrite& w : writes) nodes_[{w.level, w.index}] = w.hash;
  }

 private:
  std::map<std::pair<int, uint64_t>, Hash> nodes_;
};

std::string Bytes(const Hash& h) { return std::string(crypto::HashView(h)); }

struct Trail {
  std::vector<std::string> records;
  std::vector<v1::AuditRecord> parsed;
  MapStorage storage;

  explicit Trail(uint64_t n) {
    std::vector<Hash> leaves;
    for (uint64_t i = 0; i < n; ++i) {
      v1::AuditRecord r;
      r.set_index(i);
      r.mutable_time()->set_seconds(kVerifyAtUnix - 1000 + i);
      r.set_node(kNode);
      r.set_actor(kAgency);
      r.set_action(i % 3 == 2 ? v1::AUDIT_RETENTION_REMOVE : v1::AUDIT_PUBLISH);
      r.set_allowed(true);
      r.set_reason("allowed");
      r.set_rule("border");
      r.set_policy_version("fuzz-1");
      r.set_alert_id(absl::StrCat("civ-", i / 3));
      r.set_originator(kAgency);
      r.set_topic("border.crossing");
      r.set_classification("RESTRICTED");
      r.set_sequence(i / 3 + 1);
      r.set_payload_sha256(
          Bytes(crypto::Sha256(absl::StrCat("payload ", i / 3))));
      parsed.push_back(r);
      records.push_back(r.SerializeAsString());
      leaves.push_back(LeafHash(records.back()));
    }
    storage.Apply(Must(AppendLeaves(storage, 0, leaves), "append leaves"));
  }

  v1::SignedCheckpoint SignedAt(uint64_t size) const {
    Checkpoint c{kOrigin, size, Must(RootHash(storage, size), "root"),
                 kVerifyAtUnix - 10};
    v1::SignedCheckpoint s;
    s.set_note(Must(SignCheckpoint(c, NodeSigningKey()), "sign checkpoint"));
    s.set_tree_size(size);
    s.set_root_hash(Bytes(c.root));
    s.mutable_time()->set_seconds(c.time_unix);
    return s;
  }

  v1::AuditExport Export(uint64_t first, uint64_t size) const {
    v1::AuditExport e;
    e.set_node_id(kNode);
    *e.mutable_checkpoint() = SignedAt(size);
    e.set_first_index(first);
    for (uint64_t i = first; i < size; ++i) {
      e.add_records(records[i]);
      e.add_stored_leaf_hashes(Bytes(LeafHash(records[i])));
    }
    for (const Hash& h : Must(CompactRange(storage, first), "compact range")) {
      e.add_left_subtree_hashes(Bytes(h));
    }
    return e;
  }
};

void CheckpointSeeds(const Trail& trail) {
  for (uint64_t size : {0, 1, 7, 12}) {
    const std::string note = trail.SignedAt(size).note();
    Write("checkpoint_corpus", absl::StrCat("size-", size), note);
    Expect(VerifyCheckpoint(note, kOrigin, NodeVerifyingKey()).ok(),
           "the checkpoint seeds verify");
  }
  std::string note = trail.SignedAt(7).note();
  std::string other = note;
  other.replace(0, std::string(kOrigin).size(), "ibsm/MLI");
  Write("checkpoint_corpus", "other-origin", other);
  std::string cut = note.substr(0, note.size() - 10) + "\n";
  Write("checkpoint_corpus", "cut-signature", cut);
}

void AuditProofSeeds(const Trail& trail) {
  for (auto [index, size] :
       {std::pair<uint64_t, uint64_t>{0, 1}, {3, 7}, {6, 7}, {5, 12}}) {
    v1::InclusionProof p;
    p.set_index(index);
    p.set_tree_size(size);
    p.set_record(trail.records[index]);
    for (const Hash& h :
         Must(InclusionProof(trail.storage, index, size), "inclusion proof")) {
      p.add_hashes(Bytes(h));
    }
    *p.mutable_checkpoint() = trail.SignedAt(size);
    Expect(VerifyInclusionProof(p, &NodeVerifyingKey(), kOrigin).verdict ==
               InclusionVerdict::kVerified,
           "the inclusion proof seeds verify");
    Write("audit_proof_corpus", absl::StrCat("index-", index, "-of-", size),
          p.SerializeAsString());
    if (index == 3) {
      p.set_index(4);  // the record claims 3
      Write("audit_proof_corpus", "wrong-index", p.SerializeAsString());
    }
  }
}

v1::AlertExport AlertsOf(const Trail& trail, uint64_t size) {
  v1::AlertExport a;
  a.set_node_id(kNode);
  a.set_from_sequence(1);
  uint64_t last = 0;
  for (uint64_t i = 0; i < size; ++i) {
    const v1::AuditRecord& r = trail.parsed[i];
    if (r.action() != v1::AUDIT_PUBLISH || r.sequence() == last) continue;
    last = r.sequence();
    v1::StoredAlertDigest* d = a.add_alerts();
    d->set_sequence(r.sequence());
    bool removed = false;
    for (uint64_t j = 0; j < size; ++j) {
      removed |= trail.parsed[j].action() == v1::AUDIT_RETENTION_REMOVE &&
                 trail.parsed[j].sequence() == r.sequence();
    }
    if (removed) {
      d->set_absent(true);
      continue;
    }
    d->set_alert_id(r.alert_id());
    d->set_originator(r.originator());
    d->set_topic(r.topic());
    d->set_classification(r.classification());
    d->set_payload_sha256(r.payload_sha256());
  }
  a.set_to_sequence(last);
  return a;
}

void ExpectExport(const v1::AuditExport& e, const std::string* kept,
                  const v1::AlertExport* alerts, const std::string& name) {
  VerifyReport r =
      Must(VerifyExport(e, NodeVerifyingKey(), kOrigin, kept), name);
  Expect(r.ok, absl::StrCat(name, " verifies: ", r.problem));
  if (alerts != nullptr) {
    AlertsReport a = VerifyAlerts(e, *alerts);
    Expect(a.ok, absl::StrCat(name, " alerts verify: ", a.problem));
  }
}

void AuditExportSeeds(const Trail& trail) {
  const std::string kept = trail.SignedAt(4).note();
  ExpectExport(trail.Export(0, 12), nullptr, nullptr, "whole");
  ExpectExport(trail.Export(3, 12), &kept, nullptr, "partial-kept");
  const v1::AlertExport alerts = AlertsOf(trail, 12);
  ExpectExport(trail.Export(0, 12), nullptr, &alerts, "with-alerts");
  Write("audit_export_corpus", "whole",
        JoinParts({trail.Export(0, 12).SerializeAsString()}));
  Write("audit_export_corpus", "partial-kept",
        JoinParts({trail.Export(3, 12).SerializeAsString(), kept}));
  v1::AuditExport with_proof = trail.Export(6, 12);
  *with_proof.mutable_earlier_checkpoint() = trail.SignedAt(4);
  for (const Hash& h :
       Must(ConsistencyProof(trail.storage, 4, 12), "consistency proof")) {
    with_proof.add_consistency_proof(Bytes(h));
  }
  ExpectExport(with_proof, &kept, nullptr, "consistency-proof");
  Write("audit_export_corpus", "consistency-proof",
        JoinParts({with_proof.SerializeAsString(), kept}));
  Write("audit_export_corpus", "with-alerts",
        JoinParts({trail.Export(0, 12).SerializeAsString(), "",
                   AlertsOf(trail, 12).SerializeAsString()}));
  v1::AuditExport edited = trail.Export(0, 7);
  edited.set_records(3, edited.records(3) + "x");
  Write("audit_export_corpus", "edited-record",
        JoinParts({edited.SerializeAsString()}));
}

// ---- Federation link sessions, from CIV to MLI ----

std::string Frame(const internal::v1::LinkFrame& f) {
  return f.SerializeAsString();
}

std::string Hello(uint32_t min_version, uint32_t max_version) {
  internal::v1::LinkFrame f;
  f.mutable_hello()->set_min_version(min_version);
  f.mutable_hello()->set_max_version(max_version);
  f.mutable_hello()->set_node_id(kNode);
  f.mutable_hello()->set_software_version("ibsm-broker fuzz");
  f.mutable_hello()->set_policy_version("fuzz-1");
  return Frame(f);
}

internal::v1::LinkOffer Offer(uint64_t id, const v1::Alert& alert,
                              std::vector<std::string> hops,
                              bool with_chain = true) {
  internal::v1::LinkOffer o;
  o.set_id(id);
  *o.mutable_alert() = alert;
  o.set_chain_sha256(SigningChainSha256(alert));
  if (!with_chain) o.mutable_alert()->clear_signing_chain();
  for (std::string& h : hops) o.add_hops(std::move(h));
  return o;
}

void FederationSeeds() {
  const v1::Alert a1 = SignedByCiv("civ-0100", "border.crossing");
  const v1::Alert a2 = SignedByCiv("civ-0101", "trafficking.route");
  const v1::Alert a3 = SignedByCiv("civ-0102", "local.note");
  internal::v1::LinkFrame offers;
  *offers.mutable_offers()->add_offers() = Offer(1, a1, {kNode});
  *offers.mutable_offers()->add_offers() = Offer(2, a2, {kNode}, false);
  *offers.mutable_offers()->add_offers() = Offer(3, a3, {kNode}, false);
  internal::v1::LinkFrame heartbeat;
  heartbeat.mutable_heartbeat();
  internal::v1::LinkFrame acks;
  internal::v1::LinkAck* ack = acks.mutable_acks()->add_acks();
  ack->set_id(7);
  ack->set_result(internal::v1::LinkAck::STORED);
  internal::v1::LinkFrame goodbye;
  goodbye.mutable_goodbye()->set_reason(
      internal::v1::LinkGoodbye::SHUTTING_DOWN);
  goodbye.mutable_goodbye()->set_message("bye");
  Write("federation_link_corpus", "session",
        JoinParts({Hello(1, 1), Frame(offers), Frame(heartbeat), Frame(acks),
                   Frame(goodbye)}));
  // Relayed through NER, a refused relay; the same offer again (duplicate);
  // a chain named but never sent; a hop loop through MLI.
  internal::v1::LinkFrame more;
  *more.mutable_offers()->add_offers() = Offer(4, a1, {"NER", kNode});
  *more.mutable_offers()->add_offers() = Offer(5, a1, {kNode});
  *more.mutable_offers()->add_offers() = Offer(6, a2, {kNode}, false);
  *more.mutable_offers()->add_offers() =
      Offer(7, a1, {kNode, kPeerNode, kNode});
  Write("federation_link_corpus", "refusals",
        JoinParts({Hello(1, 3), Frame(more)}));
  Write("federation_link_corpus", "old-version", JoinParts({Hello(2, 3)}));
  Write("federation_link_corpus", "no-hello", JoinParts({Frame(offers)}));
}

}  // namespace
}  // namespace ibsm::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR (e.g. tests/fuzz)\n");
    return 2;
  }
  ibsm::fuzz::out_dir = argv[1];
  ibsm::fuzz::AlertSeeds();
  const ibsm::fuzz::Trail trail(12);
  ibsm::fuzz::CheckpointSeeds(trail);
  ibsm::fuzz::AuditProofSeeds(trail);
  ibsm::fuzz::AuditExportSeeds(trail);
  ibsm::fuzz::FederationSeeds();
  return 0;
}
