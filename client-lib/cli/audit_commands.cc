#include "audit_commands.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "alert_format.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "ibsm/audit_verify.h"
#include "ibsm/checkpoint.h"
#include "ibsm/merkle.h"
#include "ibsm/node_certificate.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/status_macros.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "ibsm/v1/audit.pb.h"
#include "journey.h"
#include "json_writer.h"
#include "progress.h"
#include "rpc_call.h"
#include "table.h"

namespace ibsm::cli {
namespace {

using Kind = FlagSpec::Kind;

FlagSpec Flag(std::string name, Kind kind, std::string value_name,
              std::string help, char short_name = 0) {
  return FlagSpec{std::move(name), kind, std::move(value_name),
                  std::move(help), "",   short_name};
}

// A bad command line or unusable input file: exit 2.
int Usage(Io& io, absl::string_view command, absl::string_view message) {
  io.err << "ibsm: " << message << "\nRun 'ibsm audit " << command
         << " --help' for usage.\n";
  return kExitUsage;
}

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

// ---- ibsm audit verify -----------------------------------------------------

// The node a --node-cert belongs to, from its SPIFFE id spiffe://ibsm/<NODE>.
absl::StatusOr<std::string> CertificateNode(const std::string& cert_file) {
  absl::StatusOr<std::string> uri = CertificateUri(cert_file);
  if (!uri.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-cert ", cert_file,
                     ": no spiffe://ibsm/<NODE> id: ", uri.status().message()));
  }
  absl::StatusOr<ibsm::Identity> id = ibsm::ParseSpiffeId(*uri);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-cert ", cert_file, ": ", id.status().message()));
  }
  if (id->is_agency()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-cert ", cert_file, " is the certificate of agency ", id->id(),
        ", not of a node"));
  }
  return id->node;
}

// What an offline check trusts: the IBSM root CA(s) of --ca and, with
// --crl-dir, every CRL in that directory.
struct TrustAnchors {
  std::string roots_pem;
  std::vector<std::string> crl_pems;
  std::string crl_dir;  // empty: revocation is not checked
};

absl::StatusOr<TrustAnchors> ReadTrustAnchors(const ParsedFlags& flags) {
  if (!flags.Has("ca")) {
    return absl::InvalidArgumentError(
        "missing --ca FILE (or $IBSM_CA): the IBSM root CA that the node "
        "certificate must chain to; without it any certificate could vouch "
        "for a rewritten trail");
  }
  TrustAnchors out;
  IBSM_ASSIGN_OR_RETURN(out.roots_pem, ReadFileToString(flags.Get("ca")));
  if (flags.Has("crl-dir")) {
    out.crl_dir = flags.Get("crl-dir");
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(out.crl_dir, ec)) {
      if (!entry.is_regular_file()) continue;
      IBSM_ASSIGN_OR_RETURN(std::string pem,
                            ReadFileToString(entry.path().string()));
      if (absl::StrContains(pem, "-----BEGIN X509 CRL-----")) {
        out.crl_pems.push_back(std::move(pem));
      }
    }
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--crl-dir ", out.crl_dir, ": cannot be read: ", ec.message()));
    }
    if (out.crl_pems.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--crl-dir ", out.crl_dir, " holds no PEM CRL"));
    }
  }
  return out;
}

// One --node-cert file: the node's certificate followed by its intermediate.
struct NodeCertFile {
  std::string file;
  std::string pem;
  ibsm::VerifyingKey key;
};

absl::StatusOr<std::vector<NodeCertFile>> ReadNodeCerts(
    const std::vector<std::string>& files, std::string* node) {
  std::vector<NodeCertFile> out;
  for (const std::string& file : files) {
    IBSM_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(file));
    absl::StatusOr<ibsm::VerifyingKey> key =
        ibsm::VerifyingKey::FromCertificatePem(pem);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--node-cert ", file, ": ", key.status().message()));
    }
    IBSM_ASSIGN_OR_RETURN(std::string n, CertificateNode(file));
    if (!node->empty() && n != *node) {
      return absl::InvalidArgumentError(
          absl::StrCat("--node-cert ", file, " is of node '", n, "', not '",
                       *node, "' like the first"));
    }
    *node = n;
    out.push_back(NodeCertFile{file, std::move(pem), *std::move(key)});
  }
  return out;
}

// The certificate whose key signed `note` (a checkpoint of `origin`); the
// first one when none did, so that verification reports the bad signature.
const NodeCertFile& SignerOf(const std::vector<NodeCertFile>& certs,
                             absl::string_view note, absl::string_view origin) {
  for (const NodeCertFile& c : certs) {
    if (ibsm::VerifyCheckpoint(note, origin, c.key).ok()) return c;
  }
  return certs.front();
}

std::string TrustedLine(const ibsm::TrustedNodeCertificate& t,
                        const TrustAnchors& anchors, int64_t at_unix) {
  return absl::StrCat(
      "trusted node certificate spiffe://ibsm/", t.node, " (subject ",
      t.subject, ", issued by ", t.issuer, ", SHA-256 ", t.sha256_fingerprint,
      ", valid ", Rfc3339(t.not_before_unix), " to ", Rfc3339(t.not_after_unix),
      "), checked against the root CA as of ", Rfc3339(at_unix), "; ",
      t.revocation_checked
          ? absl::StrCat("revocation checked for the whole chain with the CRLs "
                         "in ",
                         anchors.crl_dir)
          : std::string("revocation not checked (no --crl-dir)"));
}

std::string TrustedJson(const ibsm::TrustedNodeCertificate& t,
                        int64_t at_unix) {
  return JsonObject()
      .String("id", absl::StrCat("spiffe://ibsm/", t.node))
      .String("subject", t.subject)
      .String("issuer", t.issuer)
      .String("sha256", t.sha256_fingerprint)
      .String("checked_at", Rfc3339(at_unix))
      .Bool("revocation_checked", t.revocation_checked)
      .Close();
}

void PrintVerifyJson(const ibsm::VerifyReport& r, const std::string& node,
                     const std::string& file, const std::string& trusted_json,
                     const std::optional<ibsm::AlertsReport>& alerts, Io& io) {
  const bool ok = r.ok && (!alerts.has_value() || alerts->ok);
  JsonObject json;
  json.String("result", ok ? "OK" : "TAMPERED")
      .Bool("ok", ok)
      .String("file", file)
      .String("node", node)
      .Raw("trusted", trusted_json)
      .Number("records_checked", r.records_checked)
      .Number("first_index", r.first_index);
  if (r.checkpoint_verified) {
    json.Number("tree_size", r.tree_size)
        .String("root", ibsm::HexEncode(r.root))
        .String("time", Rfc3339(r.time_unix));
  } else {
    json.Null("tree_size").Null("root").Null("time");
  }
  json.OptionalNumber("first_bad_index", r.first_bad_index)
      .OptionalString("problem", r.ok ? std::nullopt
                                      : std::optional<std::string>(r.problem));
  if (r.kept_tree_size.has_value()) {
    json.Raw("kept_checkpoint",
             JsonObject()
                 .Number("tree_size", *r.kept_tree_size)
                 .String("time", Rfc3339(r.kept_time_unix))
                 .Bool("consistent", r.earlier_checkpoint_consistent)
                 .Close());
  } else {
    json.Null("kept_checkpoint");
  }
  if (alerts.has_value()) {
    json.Raw(
        "alerts",
        JsonObject()
            .Bool("ok", alerts->ok)
            .Number("checked", alerts->alerts_checked)
            .Number("removed_by_retention", alerts->removed_by_retention)
            .Number("not_covered", alerts->not_covered)
            .OptionalNumber("first_bad_sequence", alerts->first_bad_sequence)
            .OptionalString("problem", alerts->ok ? std::nullopt
                                                  : std::optional<std::string>(
                                                        alerts->problem))
            .Close());
  } else {
    json.Null("alerts");
  }
  io.out << json.Close() << "\n";
}

// What `ibsm audit verify` checks, read from its flags and files.
struct VerifyInputs {
  std::string file;  // the export
  TrustAnchors anchors;
  std::string node;    // of the --node-cert certificates
  std::string origin;  // "ibsm/<NODE>", the checkpoints' origin line
  std::vector<NodeCertFile> certs;
  std::optional<std::string> kept;  // the note of --kept-checkpoint
  v1::AuditExport exported;
  std::optional<v1::AlertExport> alert_export;  // with --alerts
};

// Parses `data` (the bytes of `inputs->file`) and --alerts into `*inputs`;
// kExitOk, or the exit code after the message.
int ParseVerifyExports(const ParsedFlags& flags, const std::string& data,
                       VerifyInputs* inputs, Io& io) {
  if (!inputs->exported.ParseFromString(data)) {
    io.err << "ibsm: " << inputs->file
           << " does not parse as an audit export (ibsm.v1.AuditExport): it "
              "is damaged or not an export\n";
    return kExitFailed;
  }
  if (inputs->exported.node_id() != inputs->node) {
    return Usage(
        io, "verify",
        absl::StrCat("the export is of node '", inputs->exported.node_id(),
                     "' but --node-cert is the certificate of node '",
                     inputs->node, "'"));
  }
  if (flags.Has("alerts")) {
    absl::StatusOr<std::string> a = ReadFileToString(flags.Get("alerts"));
    if (!a.ok()) return Usage(io, "verify", a.status().message());
    inputs->alert_export.emplace();
    if (!inputs->alert_export->ParseFromString(*a)) {
      io.err << "ibsm: " << flags.Get("alerts")
             << " does not parse as an alert export (ibsm.v1.AlertExport)\n";
      return kExitFailed;
    }
  }
  return kExitOk;
}

// The inputs, or the exit code after the message.
std::variant<VerifyInputs, int> VerifyInputsFromFlags(const ParsedFlags& flags,
                                                      Io& io) {
  if (!flags.Has("file")) return Usage(io, "verify", "missing the export FILE");
  if (!flags.Has("node-cert"))
    return Usage(io, "verify", "missing --node-cert");
  VerifyInputs inputs;
  inputs.file = flags.Get("file");
  absl::StatusOr<TrustAnchors> anchors = ReadTrustAnchors(flags);
  if (!anchors.ok()) return Usage(io, "verify", anchors.status().message());
  inputs.anchors = *std::move(anchors);

  absl::StatusOr<std::string> data = ReadFileToString(inputs.file);
  if (!data.ok()) return Usage(io, "verify", data.status().message());
  if (data->empty()) {
    return Usage(io, "verify", absl::StrCat(inputs.file, " is empty"));
  }
  absl::StatusOr<std::vector<NodeCertFile>> certs =
      ReadNodeCerts(flags.GetAll("node-cert"), &inputs.node);
  if (!certs.ok()) return Usage(io, "verify", certs.status().message());
  inputs.certs = *std::move(certs);
  inputs.origin = absl::StrCat("ibsm/", inputs.node);
  if (flags.Has("kept-checkpoint")) {
    absl::StatusOr<std::string> k =
        ReadFileToString(flags.Get("kept-checkpoint"));
    if (!k.ok()) return Usage(io, "verify", k.status().message());
    inputs.kept = *std::move(k);
  }
  if (int code = ParseVerifyExports(flags, *data, &inputs, io);
      code != kExitOk) {
    return code;
  }
  return inputs;
}

// The certificates that signed the export's checkpoint and the kept one,
// each trusted through the root as of its checkpoint's time.
struct TrustedSigners {
  const NodeCertFile* signer = nullptr;
  ibsm::TrustedNodeCertificate trusted;
  int64_t export_time = 0;
  const NodeCertFile* kept_signer = nullptr;  // with --kept-checkpoint
  // Unset when the kept checkpoint does not verify with its signer's key
  // (VerifyExport reports that).
  std::optional<ibsm::TrustedNodeCertificate> kept_trusted;
  int64_t kept_time = 0;
};

// The signers, or the exit code after the usage message.
std::variant<TrustedSigners, int> TrustSigners(const VerifyInputs& in, Io& io) {
  // Each checkpoint is checked with the certificate that signed it, and that
  // certificate against the root as of the checkpoint's time: a trail that
  // spans a key rotation verifies with both certificates given.
  TrustedSigners out;
  out.export_time = in.exported.checkpoint().time().seconds();
  out.signer = &SignerOf(in.certs, in.exported.checkpoint().note(), in.origin);
  absl::StatusOr<ibsm::TrustedNodeCertificate> trusted =
      ibsm::TrustNodeCertificate(out.signer->pem, in.anchors.roots_pem,
                                 in.anchors.crl_pems, out.export_time);
  if (!trusted.ok()) {
    return Usage(io, "verify",
                 absl::StrCat("--node-cert ", out.signer->file, ": ",
                              trusted.status().message()));
  }
  out.trusted = *std::move(trusted);
  if (!in.kept.has_value()) return out;
  out.kept_signer = &SignerOf(in.certs, *in.kept, in.origin);
  absl::StatusOr<ibsm::Checkpoint> c =
      ibsm::VerifyCheckpoint(*in.kept, in.origin, out.kept_signer->key);
  if (!c.ok()) return out;
  out.kept_time = c->time_unix;
  absl::StatusOr<ibsm::TrustedNodeCertificate> t =
      ibsm::TrustNodeCertificate(out.kept_signer->pem, in.anchors.roots_pem,
                                 in.anchors.crl_pems, out.kept_time);
  if (!t.ok()) {
    return Usage(io, "verify",
                 absl::StrCat("--node-cert ", out.kept_signer->file,
                              " (signer of the kept checkpoint): ",
                              t.status().message()));
  }
  out.kept_trusted = *std::move(t);
  return out;
}

// The 'OK: ...' / 'TAMPERED: ...' lines; the exit code.
int PrintVerifyText(const ibsm::VerifyReport& r,
                    const std::optional<ibsm::AlertsReport>& alerts,
                    const TrustedSigners& signers, const TrustAnchors& anchors,
                    Io& io) {
  if (!r.ok) {
    io.out << "TAMPERED: " << r.problem << "\n";
    return kExitFailed;
  }
  io.out << "OK: " << r.records_checked
         << " records verified up to signed checkpoint size " << r.tree_size
         << " (root " << ibsm::HexEncode(r.root) << ", time "
         << Rfc3339(r.time_unix) << ")\n";
  io.out << "OK: " << TrustedLine(signers.trusted, anchors, signers.export_time)
         << "\n";
  if (r.first_index > 0) {
    io.out << "note: the export starts at record " << r.first_index
           << "; records before it are covered by the signed root through "
              "their subtree hashes, not checked one by one\n";
  }
  if (r.kept_tree_size.has_value()) {
    io.out << "OK: consistent with the checkpoint you kept (size "
           << *r.kept_tree_size << ", time " << Rfc3339(r.kept_time_unix)
           << ")\n";
    if (signers.kept_trusted.has_value() &&
        signers.kept_trusted->sha256_fingerprint !=
            signers.trusted.sha256_fingerprint) {
      io.out << "OK: the kept checkpoint was signed by a rotated key: "
             << TrustedLine(*signers.kept_trusted, anchors, signers.kept_time)
             << "\n";
    }
  }
  if (alerts.has_value()) {
    if (!alerts->ok) {
      io.out << "TAMPERED: stored log: " << alerts->problem << "\n";
      return kExitFailed;
    }
    io.out << "OK: " << alerts->alerts_checked
           << " stored alerts match their publish records, "
           << alerts->removed_by_retention
           << " absent ones were removed by retention, " << alerts->not_covered
           << " are not covered by this export of the trail\n";
  }
  return kExitOk;
}

int RunVerify(const ParsedFlags& flags, Io& io) {
  // Damaged strings in an export make protobuf log on parsing and
  // verifying; the verdict says what is wrong instead.
  google::protobuf::LogSilencer quiet;
  std::variant<VerifyInputs, int> parsed = VerifyInputsFromFlags(flags, io);
  if (int* code = std::get_if<int>(&parsed)) return *code;
  const VerifyInputs& in = std::get<VerifyInputs>(parsed);
  std::variant<TrustedSigners, int> trusted = TrustSigners(in, io);
  if (int* code = std::get_if<int>(&trusted)) return *code;
  const TrustedSigners& signers = std::get<TrustedSigners>(trusted);

  absl::StatusOr<ibsm::VerifyReport> report = ibsm::VerifyExport(
      in.exported, signers.signer->key, in.origin,
      in.kept.has_value() ? &*in.kept : nullptr,
      signers.kept_signer != nullptr ? &signers.kept_signer->key : nullptr);
  if (!report.ok()) return Usage(io, "verify", report.status().message());
  std::optional<ibsm::AlertsReport> alerts;
  if (report->ok && in.alert_export.has_value()) {
    alerts = ibsm::VerifyAlerts(in.exported, *in.alert_export);
  }

  if (flags.Bool("json")) {
    PrintVerifyJson(*report, in.node, in.file,
                    TrustedJson(signers.trusted, signers.export_time), alerts,
                    io);
    return report->ok && (!alerts.has_value() || alerts->ok) ? kExitOk
                                                             : kExitFailed;
  }
  return PrintVerifyText(*report, alerts, signers, in.anchors, io);
}

// ---- commands that call the node's Auditor service -------------------------

// The row of `ibsm audit <name>`, for Connect's usage messages.
const Command& AuditCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.path == std::vector<std::string>{"audit", name}) return c;
  }
  // Every caller names a row of AuditCommands().
  std::abort();
}

// An Auditor call named `what` ("audit export"), with its default deadline.
RpcSpec AuditRpc(absl::string_view what, absl::Duration default_timeout) {
  return RpcSpec{what, default_timeout,
                 "the answer is too large: export a smaller range with --from"};
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds down
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) /
                                      absl::Nanoseconds(1)));
}

std::string HexBytes(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

std::vector<std::string> HexList(
    const google::protobuf::RepeatedPtrField<std::string>& hashes) {
  std::vector<std::string> out;
  out.reserve(hashes.size());
  for (const std::string& h : hashes) out.push_back(HexBytes(h));
  return out;
}

// Writes `data` to `path` through a temporary file in the same directory
// and a rename, so `path` is either the old file or the complete new one.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  auto failed = [&](absl::string_view step) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot ", step, " ", tmp, ": ", std::strerror(errno)));
    unlink(tmp.c_str());
    return s;
  };
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return failed("write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    close(fd);
    return failed("sync");
  }
  if (close(fd) != 0) return failed("close");
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = absl::UnavailableError(absl::StrCat(
        "cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

int WriteOrFail(Io& io, const std::string& path, absl::string_view data) {
  if (absl::Status s = WriteFileAtomically(path, data); !s.ok()) {
    io.err << "ibsm: " << s.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

// The tree size of a signed checkpoint note: its second line, decimal. Only
// parsed: the signature is checked by `ibsm audit verify`, which has the
// node's certificate.
absl::StatusOr<uint64_t> NoteTreeSize(absl::string_view note,
                                      absl::string_view file) {
  std::optional<uint64_t> size = ibsm::PeekTreeSize(note);
  if (!size.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file,
        " is not a signed checkpoint note (its second line must be the "
        "tree size)"));
  }
  return *size;
}

// ---- ibsm audit query ------------------------------------------------------

struct ActionName {
  v1::AuditAction action;
  const char* name;
};
constexpr ActionName kActionNames[] = {
    {v1::AUDIT_PUBLISH, "publish"},
    {v1::AUDIT_DELIVER, "deliver"},
    {v1::AUDIT_ACK, "ack"},
    {v1::AUDIT_SUBSCRIBE_OPEN, "subscribe-open"},
    {v1::AUDIT_SUBSCRIBE_CLOSE, "subscribe-close"},
    {v1::AUDIT_CALL_REFUSED, "call-refused"},
    {v1::AUDIT_POLICY_RELOAD, "policy-reload"},
    {v1::AUDIT_CERT_RELOAD, "cert-reload"},
    {v1::AUDIT_RETENTION_REMOVE, "retention-remove"},
    {v1::AUDIT_AUDITOR_QUERY, "auditor-query"},
    {v1::AUDIT_AUDITOR_EXPORT, "auditor-export"},
    {v1::AUDIT_FEDERATION_SEND, "federation-send"},
    {v1::AUDIT_FEDERATION_RECEIVE, "federation-receive"},
    {v1::AUDIT_NODE_START, "node-start"},
    {v1::AUDIT_NODE_STOP, "node-stop"},
    {v1::AUDIT_INTEGRITY_FAILURE, "integrity-failure"},
    {v1::AUDIT_ALERT_LINKS_MIGRATED, "alert-links-migrated"},
    {v1::AUDIT_FEDERATION_LINK_UP, "federation-link-up"},
    {v1::AUDIT_FEDERATION_LINK_DOWN, "federation-link-down"},
    {v1::AUDIT_BACKUP, "backup"},
    {v1::AUDIT_ROLLBACK_ACCEPTED, "rollback-accepted"},
};

std::string ActionText(v1::AuditAction action) {
  for (const ActionName& a : kActionNames) {
    if (a.action == action) return a.name;
  }
  return absl::StrCat("action-", static_cast<int>(action));
}

// "publish", "subscribe_open", "AUDIT_SUBSCRIBE_OPEN" -> the enum.
absl::StatusOr<v1::AuditAction> ParseAction(absl::string_view value) {
  std::string v = absl::AsciiStrToLower(value);
  std::replace(v.begin(), v.end(), '_', '-');
  if (absl::StartsWith(v, "audit-")) v = v.substr(6);
  std::vector<std::string> names;
  for (const ActionName& a : kActionNames) {
    if (v == a.name) return a.action;
    names.push_back(a.name);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--action: '", value, "' is not one of ", absl::StrJoin(names, ", ")));
}

// The query described by the flags; INVALID_ARGUMENT naming a bad flag.
absl::StatusOr<v1::AuditQuery> QueryFromFlags(const ParsedFlags& flags) {
  v1::AuditQuery q;
  std::optional<absl::Time> from, to;
  if (flags.Has("from-time")) {
    absl::StatusOr<absl::Time> t =
        ParseTimeValue("from-time", flags.Get("from-time"));
    if (!t.ok()) return t.status();
    from = *t;
    SetTimestamp(*t, q.mutable_from_time());
  }
  if (flags.Has("to-time")) {
    absl::StatusOr<absl::Time> t =
        ParseTimeValue("to-time", flags.Get("to-time"));
    if (!t.ok()) return t.status();
    to = *t;
    SetTimestamp(*t, q.mutable_to_time());
  }
  if (from.has_value() && to.has_value() && *to <= *from) {
    return absl::InvalidArgumentError(
        "--to-time must be after --from-time (--from-time is inclusive, "
        "--to-time exclusive)");
  }
  q.set_actor(flags.Get("actor"));
  q.set_node(flags.Get("node"));
  q.set_topic(flags.Get("topic"));
  q.set_alert_id(flags.Get("alert-id"));
  if (flags.Has("action")) {
    absl::StatusOr<v1::AuditAction> a = ParseAction(flags.Get("action"));
    if (!a.ok()) return a.status();
    q.set_action(*a);
  }
  if (flags.Has("decision")) {
    std::string d = absl::AsciiStrToLower(flags.Get("decision"));
    if (d == "allowed" || d == "allow") {
      q.set_decision(v1::AuditQuery::DECISION_ALLOWED);
    } else if (d == "denied" || d == "deny") {
      q.set_decision(v1::AuditQuery::DECISION_DENIED);
    } else if (d != "any") {
      return absl::InvalidArgumentError(
          absl::StrCat("--decision: '", flags.Get("decision"),
                       "' is not allowed, denied or any"));
    }
  }
  if (flags.Has("from-index")) {
    absl::StatusOr<uint64_t> n =
        ParseUintValue("from-index", flags.Get("from-index"));
    if (!n.ok()) return n.status();
    q.set_from_index(*n);
  }
  if (flags.Has("limit")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("limit", flags.Get("limit"));
    if (!n.ok()) return n.status();
    if (*n == 0 || *n > 100000) {
      return absl::InvalidArgumentError("--limit must be between 1 and 100000");
    }
    q.set_limit(static_cast<uint32_t>(*n));
  }
  return q;
}

std::string OrDash(absl::string_view s) {
  return s.empty() ? std::string("-") : std::string(s);
}

// Index, time, actor, action, decision, alert id, topic, classification,
// sequence, reason: aligned columns, the reason last and unpadded.
std::string FormatRecordTable(const std::vector<v1::AuditRecord>& records) {
  using Align = Table::Align;
  Table table({"INDEX", "TIME", "ACTOR", "ACTION", "DECISION", "ALERT-ID",
               "TOPIC", "CLASSIFICATION", "SEQUENCE", "REASON"},
              {Align::kRight, Align::kLeft, Align::kLeft, Align::kLeft,
               Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft,
               Align::kRight});  // numbers right-aligned
  for (const v1::AuditRecord& r : records) {
    table.AddRow({
        absl::StrCat(r.index()),
        r.has_time() ? absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                                        ToTime(r.time()), absl::UTCTimeZone())
                     : std::string("-"),
        OrDash(r.actor()),
        ActionText(r.action()),
        r.allowed() ? "allowed" : "denied",
        OrDash(r.alert_id()),
        OrDash(r.topic()),
        OrDash(r.classification()),
        r.sequence() == 0 ? std::string("-") : absl::StrCat(r.sequence()),
        OrDash(r.reason()),
    });
  }
  return table.Format(TerminalWidth());
}

int RunQuery(const ParsedFlags& flags, Io& io) {
  absl::StatusOr<v1::AuditQuery> query = QueryFromFlags(flags);
  if (!query.ok()) return Usage(io, "query", query.status().message());
  const RpcSpec spec = AuditRpc("audit query", absl::Seconds(60));
  std::variant<RpcCall<v1::Auditor>, int> started =
      RpcCall<v1::Auditor>::Start(flags, AuditCommand("query"), spec, io);
  if (int* code = std::get_if<int>(&started)) return *code;
  RpcCall<v1::Auditor>& call = std::get<RpcCall<v1::Auditor>>(started);
  std::unique_ptr<grpc::ClientReader<v1::AuditQueryResponse>> reader =
      call.stub().Query(call.context(), *query);
  const bool json = flags.Bool("json");
  std::vector<v1::AuditRecord> records;
  v1::AuditQueryResponse response;
  bool more = false;
  uint64_t next_index = query->from_index();
  while (reader->Read(&response)) {
    for (v1::AuditRecord& r : *response.mutable_records()) {
      if (json) {
        absl::StatusOr<std::string> line = ToJsonLine(r);
        if (!line.ok()) {
          io.err << "ibsm: " << line.status().message() << "\n";
          continue;
        }
        io.out << *line << "\n";
      } else {
        records.push_back(std::move(r));
      }
    }
    if (json) io.out.flush();
    more = response.more();
    next_index = response.next_index();
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return RpcFailed(io, spec, status);
  if (!json) {
    if (records.empty()) {
      io.err << "no matching records\n";
    } else {
      io.out << FormatRecordTable(records);
    }
    if (more) io.err << "next page: --from-index " << next_index << "\n";
  }
  return kExitOk;
}

// ---- ibsm audit export -----------------------------------------------------

// What `ibsm audit export` asks for, from its flags.
struct ExportArgs {
  std::string file;  // -o
  v1::ExportRequest request;
  std::optional<uint64_t> kept_size;  // of --kept-checkpoint's note
};

// The arguments, or the exit code after the usage message.
std::variant<ExportArgs, int> ExportArgsFromFlags(const ParsedFlags& flags,
                                                  Io& io) {
  if (!flags.Has("output")) return Usage(io, "export", "missing -o FILE");
  ExportArgs args;
  args.file = flags.Get("output");
  if (flags.Has("from")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("from", flags.Get("from"));
    if (!n.ok()) return Usage(io, "export", n.status().message());
    args.request.set_first_index(*n);
  }
  if (flags.Has("to")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("to", flags.Get("to"));
    if (!n.ok()) return Usage(io, "export", n.status().message());
    if (*n == 0) {
      return Usage(io, "export",
                   "--to must be the size of a signed checkpoint (>= 1); "
                   "leave it out for the latest");
    }
    args.request.set_to_size(*n);
  }
  if (flags.Has("kept-checkpoint")) {
    const std::string kept_file = flags.Get("kept-checkpoint");
    absl::StatusOr<std::string> note = ReadFileToString(kept_file);
    if (!note.ok()) return Usage(io, "export", note.status().message());
    absl::StatusOr<uint64_t> size = NoteTreeSize(*note, kept_file);
    if (!size.ok()) return Usage(io, "export", size.status().message());
    args.kept_size = *size;
    args.request.set_kept_size(*size);
  }
  return args;
}

// What was written, and a warning when the node's checkpoint is older than
// the kept one.
void PrintExport(const v1::AuditExport& exported, const ExportArgs& args,
                 bool json, Io& io) {
  const uint64_t size = exported.checkpoint().tree_size();
  if (json) {
    io.out << JsonObject()
                  .String("file", args.file)
                  .String("node", exported.node_id())
                  .Number("records", exported.records_size())
                  .Number("first_index", exported.first_index())
                  .Number("tree_size", size)
                  .OptionalNumber("kept_size", args.kept_size)
                  .Close()
           << "\n";
  } else {
    io.out << "exported " << exported.records_size() << " records ["
           << exported.first_index() << ", " << size
           << ") with checkpoint size " << size << " to " << args.file << "\n";
  }
  if (args.kept_size.has_value() && *args.kept_size > size) {
    io.err << "ibsm: warning: the node's checkpoint (size " << size
           << ") is smaller than the one you kept (size " << *args.kept_size
           << "): the trail may have been rolled back; run 'ibsm audit "
              "verify'\n";
  }
}

int RunExport(const ParsedFlags& flags, Io& io) {
  std::variant<ExportArgs, int> parsed = ExportArgsFromFlags(flags, io);
  if (int* code = std::get_if<int>(&parsed)) return *code;
  const ExportArgs& args = std::get<ExportArgs>(parsed);

  v1::AuditExport exported;
  ProgressLine progress = MakeProgressLine(flags, io.err);
  if (int code = WithElapsedTime(
          progress, "exporting the audit trail, waiting for the node",
          [&] {
            return CallUnary<v1::Auditor>(
                flags, AuditCommand("export"),
                AuditRpc("audit export", absl::Seconds(120)),
                &v1::Auditor::Stub::Export, args.request, &exported, io);
          });
      code != kExitOk) {
    return code;
  }

  std::string bytes;
  if (!exported.SerializeToString(&bytes)) {
    io.err << "ibsm: cannot serialize the export\n";
    return kExitFailed;
  }
  if (int code = WriteOrFail(io, args.file, bytes); code != kExitOk) {
    return code;
  }
  if (flags.Has("save-checkpoint")) {
    if (int code = WriteOrFail(io, flags.Get("save-checkpoint"),
                               exported.checkpoint().note());
        code != kExitOk) {
      return code;
    }
  }
  PrintExport(exported, args, flags.Bool("json"), io);
  return kExitOk;
}

// ---- ibsm audit checkpoint -------------------------------------------------

std::function<absl::Status(const ibsm::Checkpoint&)> SignerTrust(
    const NodeCertFile& signer, const TrustAnchors& anchors,
    std::string* trusted_line);

// What `ibsm audit checkpoint --node-cert` checks the note with: the node's
// certificate(s), trusted through the root of --ca (and --crl-dir).
struct CheckpointTrust {
  std::vector<NodeCertFile> certs;
  std::string origin;  // "ibsm/<NODE>" of the certificates
  TrustAnchors anchors;
};

// "VERIFIED: ..." when `note` is signed by a trusted certificate of `trust`,
// else the problem.
absl::StatusOr<std::string> VerifyCheckpointNote(const CheckpointTrust& trust,
                                                 const std::string& note) {
  const NodeCertFile& signer = SignerOf(trust.certs, note, trust.origin);
  absl::StatusOr<ibsm::Checkpoint> checkpoint =
      ibsm::VerifyCheckpoint(note, trust.origin, signer.key);
  if (!checkpoint.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the checkpoint does not verify with --node-cert ",
                     signer.file, ": ", checkpoint.status().message()));
  }
  std::string trusted_line;
  IBSM_RETURN_IF_ERROR(
      SignerTrust(signer, trust.anchors, &trusted_line)(*checkpoint));
  return absl::StrCat("VERIFIED: checkpoint of ", checkpoint->tree_size,
                      " records of ", trust.origin, ", signed at ",
                      Rfc3339(checkpoint->time_unix), "; ", trusted_line);
}

int RunCheckpoint(const ParsedFlags& flags, Io& io) {
  std::optional<CheckpointTrust> trust;
  if (flags.Has("node-cert")) {
    CheckpointTrust t;
    std::string node;
    absl::StatusOr<std::vector<NodeCertFile>> certs =
        ReadNodeCerts(flags.GetAll("node-cert"), &node);
    if (!certs.ok()) return Usage(io, "checkpoint", certs.status().message());
    absl::StatusOr<TrustAnchors> anchors = ReadTrustAnchors(flags);
    if (!anchors.ok()) {
      return Usage(io, "checkpoint", anchors.status().message());
    }
    t.certs = *std::move(certs);
    t.origin = absl::StrCat("ibsm/", node);
    t.anchors = *std::move(anchors);
    trust = std::move(t);
  } else if (flags.Has("crl-dir")) {
    return Usage(io, "checkpoint", "--crl-dir goes with --node-cert");
  }
  v1::SignedCheckpoint checkpoint;
  if (int code = CallUnary<v1::Auditor>(
          flags, AuditCommand("checkpoint"),
          AuditRpc("audit checkpoint", absl::Seconds(30)),
          &v1::Auditor::Stub::GetCheckpoint, v1::CheckpointRequest(),
          &checkpoint, io);
      code != kExitOk) {
    return code;
  }
  // Checked before anything is written or printed as the node's.
  std::optional<absl::StatusOr<std::string>> verified;
  if (trust.has_value())
    verified = VerifyCheckpointNote(*trust, checkpoint.note());
  const bool failed = verified.has_value() && !verified->ok();
  const std::string verdict =
      !verified.has_value()
          ? ""
          : (failed ? absl::StrCat("FAILED: ", verified->status().message())
                    : **verified);
  if (flags.Has("output") && !failed) {
    const std::string file = flags.Get("output");
    if (int code = WriteOrFail(io, file, checkpoint.note()); code != kExitOk) {
      return code;
    }
    io.out << "wrote the checkpoint of tree size " << checkpoint.tree_size()
           << " (time " << Rfc3339(checkpoint.time().seconds()) << ") to "
           << file << "\n";
  } else if (flags.Bool("json")) {
    JsonObject json;
    json.Number("tree_size", checkpoint.tree_size())
        .String("root", HexBytes(checkpoint.root_hash()))
        .String("time", Rfc3339(checkpoint.time().seconds()))
        .String("note", checkpoint.note());
    if (verified.has_value()) {
      json.Bool("verified", !failed).String("result", verdict);
    }
    io.out << json.Close() << "\n";
    return failed ? kExitFailed : kExitOk;
  } else if (!flags.Has("output")) {
    io.out << checkpoint.note();
    if (!absl::EndsWith(checkpoint.note(), "\n")) io.out << "\n";
  }
  if (!verdict.empty()) io.out << verdict << "\n";
  return failed ? kExitFailed : kExitOk;
}

// ---- ibsm audit export-alerts ----------------------------------------------

int RunExportAlerts(const ParsedFlags& flags, Io& io) {
  if (!flags.Has("output")) {
    return Usage(io, "export-alerts", "missing -o FILE");
  }
  const std::string file = flags.Get("output");
  v1::AlertExportRequest request;
  if (flags.Has("from-sequence")) {
    absl::StatusOr<uint64_t> n =
        ParseUintValue("from-sequence", flags.Get("from-sequence"));
    if (!n.ok()) return Usage(io, "export-alerts", n.status().message());
    request.set_from_sequence(*n);
  }
  if (flags.Has("limit")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("limit", flags.Get("limit"));
    if (!n.ok()) return Usage(io, "export-alerts", n.status().message());
    if (*n == 0 || *n > 100000) {
      return Usage(io, "export-alerts", "--limit must be 1..100000");
    }
    request.set_limit(static_cast<uint32_t>(*n));
  }
  v1::AlertExport exported;
  ProgressLine progress = MakeProgressLine(flags, io.err);
  if (int code = WithElapsedTime(
          progress, "exporting the log's digests, waiting for the node",
          [&] {
            return CallUnary<v1::Auditor>(
                flags, AuditCommand("export-alerts"),
                AuditRpc("audit export-alerts", absl::Seconds(120)),
                &v1::Auditor::Stub::ExportAlerts, request, &exported, io);
          });
      code != kExitOk) {
    return code;
  }
  std::string bytes;
  if (!exported.SerializeToString(&bytes)) {
    io.err << "ibsm: cannot serialize the alert export\n";
    return kExitFailed;
  }
  if (int code = WriteOrFail(io, file, bytes); code != kExitOk) return code;
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .String("file", file)
                  .String("node", exported.node_id())
                  .Number("from_sequence", exported.from_sequence())
                  .Number("to_sequence", exported.to_sequence())
                  .Close()
           << "\n";
  } else {
    io.out << "exported the digests of sequences [" << exported.from_sequence()
           << ", " << exported.to_sequence() << "] to " << file << "\n";
  }
  return kExitOk;
}

// ---- ibsm audit proof ------------------------------------------------------

// The check that `signer`'s certificate is trusted through the root of
// `anchors` as of a checkpoint's time, for VerifyInclusionProof; on success
// it sets *trusted_line (TrustedLine). `signer`, `anchors` and
// `trusted_line` must outlive the returned function.
std::function<absl::Status(const ibsm::Checkpoint&)> SignerTrust(
    const NodeCertFile& signer, const TrustAnchors& anchors,
    std::string* trusted_line) {
  return [&signer, &anchors,
          trusted_line](const ibsm::Checkpoint& cp) -> absl::Status {
    absl::StatusOr<ibsm::TrustedNodeCertificate> trusted =
        ibsm::TrustNodeCertificate(signer.pem, anchors.roots_pem,
                                   anchors.crl_pems, cp.time_unix);
    if (!trusted.ok()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "--node-cert ", signer.file, ": ", trusted.status().message()));
    }
    *trusted_line = TrustedLine(*trusted, anchors, cp.time_unix);
    return absl::OkStatus();
  };
}

// What `ibsm audit proof --index` asks for, from its flags.
struct InclusionProofArgs {
  v1::InclusionProofRequest request;
  // With --node-cert the checkpoint's signature is checked too, by a
  // certificate trusted through the IBSM root of --ca.
  std::optional<NodeCertFile> signer;
  std::string origin;  // "ibsm/<NODE>" of the signer
  std::optional<TrustAnchors> anchors;
};

// The arguments, or the exit code after the usage message.
std::variant<InclusionProofArgs, int> InclusionProofFromFlags(
    const ParsedFlags& flags, Io& io) {
  InclusionProofArgs args;
  absl::StatusOr<uint64_t> index = ParseUintValue("index", flags.Get("index"));
  if (!index.ok()) return Usage(io, "proof", index.status().message());
  args.request.set_index(*index);
  if (flags.Has("tree-size")) {
    absl::StatusOr<uint64_t> n =
        ParseUintValue("tree-size", flags.Get("tree-size"));
    if (!n.ok()) return Usage(io, "proof", n.status().message());
    if (*n <= *index) {
      return Usage(io, "proof", "--tree-size must be greater than --index");
    }
    args.request.set_tree_size(*n);
  }
  if (flags.Has("node-cert")) {
    std::string node;
    absl::StatusOr<std::vector<NodeCertFile>> certs =
        ReadNodeCerts({flags.Get("node-cert")}, &node);
    if (!certs.ok()) return Usage(io, "proof", certs.status().message());
    absl::StatusOr<TrustAnchors> anchors = ReadTrustAnchors(flags);
    if (!anchors.ok()) return Usage(io, "proof", anchors.status().message());
    args.anchors = *std::move(anchors);
    args.signer.emplace(std::move(certs->front()));
    args.origin = absl::StrCat("ibsm/", node);
  }
  return args;
}

// The verdict line: VERIFIED, UNVERIFIED or FAILED, and why.
struct ProofOutcome {
  std::string result;
  std::string why;
};

ProofOutcome DescribeInclusion(const ibsm::InclusionReport& report,
                               const v1::InclusionProof& proof,
                               const std::string& trusted_line) {
  using ibsm::InclusionVerdict;
  switch (report.verdict) {
    case InclusionVerdict::kVerified:
      return {
          "VERIFIED",
          absl::StrCat("record ", proof.index(), " is in the tree of size ",
                       proof.tree_size(), " with root ",
                       ibsm::HexEncode(*report.root),
                       " (checkpoint signature checked; ", trusted_line, ")")};
    case InclusionVerdict::kUnsigned:
      return {"UNVERIFIED",
              absl::StrCat(
                  "the audit path of record ", proof.index(), " leads to root ",
                  ibsm::HexEncode(*report.root),
                  " of the checkpoint the node returned (tree size ",
                  proof.tree_size(),
                  "), but that checkpoint's signature was not checked: give "
                  "--node-cert (trusted through --ca), or use 'ibsm audit "
                  "verify'")};
    case InclusionVerdict::kNoCheckpoint:
      return {"UNVERIFIED",
              absl::StrCat("the node has no signed checkpoint of tree size ",
                           proof.tree_size(),
                           "; give --tree-size of a checkpoint to verify")};
    case InclusionVerdict::kBadSignature:
      return {"FAILED",
              absl::StrCat("the checkpoint does not verify with --node-cert: ",
                           report.problem)};
    case InclusionVerdict::kFailed:
      break;
  }
  return {"FAILED", report.problem};
}

void PrintInclusionProof(const v1::InclusionProof& proof,
                         const ibsm::InclusionReport& report,
                         const ProofOutcome& outcome, bool json, Io& io) {
  if (json) {
    absl::StatusOr<std::string> record_json =
        report.record_parsed ? ToJsonLine(report.record)
                             : absl::StatusOr<std::string>("null");
    io.out << JsonObject()
                  .Number("index", proof.index())
                  .Number("tree_size", proof.tree_size())
                  .Raw("record", record_json.ok() ? *record_json : "null")
                  .String("leaf_hash", ibsm::HexEncode(report.leaf_hash))
                  .Raw("path", JsonStringArray(HexList(proof.hashes())))
                  .OptionalString("root",
                                  report.root.has_value()
                                      ? std::optional<std::string>(
                                            ibsm::HexEncode(*report.root))
                                      : std::nullopt)
                  .String("result", outcome.result)
                  .String("detail", outcome.why)
                  .Close()
           << "\n";
    return;
  }
  io.out << "record " << proof.index() << " of tree size " << proof.tree_size()
         << ":\n";
  if (report.record_parsed) {
    absl::StatusOr<std::string> line = ToJsonLine(report.record);
    io.out << "  " << (line.ok() ? *line : report.record.ShortDebugString())
           << "\n";
  } else {
    io.out << "  (does not parse as an audit record) "
           << HexBytes(proof.record()) << "\n";
  }
  io.out << "leaf hash: " << ibsm::HexEncode(report.leaf_hash) << "\n";
  io.out << "audit path (" << proof.hashes_size()
         << " hashes, the leaf's sibling first):\n";
  for (const std::string& h : proof.hashes()) {
    io.out << "  " << HexBytes(h) << "\n";
  }
  if (proof.has_checkpoint()) {
    io.out << "checkpoint: tree size " << proof.checkpoint().tree_size()
           << ", root " << HexBytes(proof.checkpoint().root_hash()) << ", time "
           << Rfc3339(proof.checkpoint().time().seconds()) << "\n";
  }
  io.out << outcome.result << ": " << outcome.why << "\n";
}

int RunInclusionProof(const ParsedFlags& flags, Io& io) {
  std::variant<InclusionProofArgs, int> parsed =
      InclusionProofFromFlags(flags, io);
  if (int* code = std::get_if<int>(&parsed)) return *code;
  const InclusionProofArgs& args = std::get<InclusionProofArgs>(parsed);

  v1::InclusionProof proof;
  if (int code = CallUnary<v1::Auditor>(
          flags, AuditCommand("proof"),
          AuditRpc("audit proof", absl::Seconds(30)),
          &v1::Auditor::Stub::GetInclusionProof, args.request, &proof, io);
      code != kExitOk) {
    return code;
  }

  // Check the proof locally against the checkpoint the node returned; the
  // signer's certificate must be trusted as of the checkpoint's time.
  std::string trusted_line;
  google::protobuf::LogSilencer quiet;  // a damaged record logs on parsing
  const ibsm::InclusionReport report = ibsm::VerifyInclusionProof(
      proof, args.signer.has_value() ? &args.signer->key : nullptr, args.origin,
      args.signer.has_value()
          ? SignerTrust(*args.signer, *args.anchors, &trusted_line)
          : std::function<absl::Status(const ibsm::Checkpoint&)>());
  const ProofOutcome outcome = DescribeInclusion(report, proof, trusted_line);
  PrintInclusionProof(proof, report, outcome, flags.Bool("json"), io);
  return outcome.result == "FAILED" ? kExitFailed : kExitOk;
}

int RunConsistencyProof(const ParsedFlags& flags, Io& io) {
  std::vector<std::string> sizes = flags.GetAll("consistency");
  if (sizes.size() > 2) {
    return Usage(io, "proof", "--consistency takes two tree sizes: A B");
  }
  v1::ConsistencyProofRequest request;
  absl::StatusOr<uint64_t> from = ParseUintValue("consistency", sizes[0]);
  if (!from.ok()) return Usage(io, "proof", from.status().message());
  request.set_from_size(*from);
  if (sizes.size() == 2) {
    absl::StatusOr<uint64_t> to = ParseUintValue("consistency", sizes[1]);
    if (!to.ok()) return Usage(io, "proof", to.status().message());
    if (*to == 0 || *to < *from) {
      return Usage(io, "proof",
                   "--consistency A B needs 0 <= A <= B and B >= 1");
    }
    request.set_to_size(*to);
  }
  v1::ConsistencyProof proof;
  if (int code = CallUnary<v1::Auditor>(
          flags, AuditCommand("proof"),
          AuditRpc("audit proof", absl::Seconds(30)),
          &v1::Auditor::Stub::GetConsistencyProof, request, &proof, io);
      code != kExitOk) {
    return code;
  }
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .Number("from_size", proof.from_size())
                  .Number("to_size", proof.to_size())
                  .Raw("hashes", JsonStringArray(HexList(proof.hashes())))
                  .Close()
           << "\n";
    return kExitOk;
  }
  io.out << "consistency proof from tree size " << proof.from_size()
         << " to tree size " << proof.to_size() << " (" << proof.hashes_size()
         << " hashes):\n";
  for (const std::string& h : proof.hashes()) {
    io.out << "  " << HexBytes(h) << "\n";
  }
  return kExitOk;
}

int RunProof(const ParsedFlags& flags, Io& io) {
  const bool inclusion = flags.Has("index");
  const bool consistency = flags.Has("consistency");
  if (inclusion == consistency) {
    return Usage(io, "proof",
                 "give either --index N (inclusion) or --consistency A B");
  }
  if (consistency && (flags.Has("tree-size") || flags.Has("node-cert"))) {
    return Usage(io, "proof",
                 "--tree-size and --node-cert go with --index, not "
                 "--consistency");
  }
  return inclusion ? RunInclusionProof(flags, io)
                   : RunConsistencyProof(flags, io);
}

// ---- ibsm audit journey ----------------------------------------------------

// Records the journey reads at one node, at most (all queries together):
// the command stays bounded however busy the node's trail is.
constexpr uint64_t kJourneyRecordBound = 10000;

// What `ibsm audit journey` asks for, from its flags.
struct JourneyArgs {
  AlertRef alert;
  std::vector<std::string> targets;
  TrustAnchors anchors;
  // The --node-cert files by the node their certificate names.
  std::map<std::string, std::vector<NodeCertFile>> certs;
};

// The arguments, or the exit code after the usage message.
std::variant<JourneyArgs, int> JourneyArgsFromFlags(const ParsedFlags& flags,
                                                    Io& io) {
  if (!flags.Has("alert")) {
    return Usage(io, "journey", "missing --alert ORIGINATOR/ID");
  }
  JourneyArgs args;
  absl::StatusOr<AlertRef> alert = ParseAlertRef(flags.Get("alert"));
  if (!alert.ok()) return Usage(io, "journey", alert.status().message());
  args.alert = *std::move(alert);
  args.targets = flags.GetAll("target");
  if (args.targets.empty()) {
    return Usage(io, "journey",
                 "missing --target HOST:PORT (or $IBSM_TARGET): give one per "
                 "node to ask");
  }
  if (args.targets.size() > 64) {
    return Usage(io, "journey", "at most 64 --target nodes");
  }
  if (!flags.Has("node-cert")) {
    return Usage(io, "journey",
                 "missing --node-cert CERT: give each target node's "
                 "certificate chain (node-<NODE>-chain.pem), to verify its "
                 "checkpoint");
  }
  absl::StatusOr<TrustAnchors> anchors = ReadTrustAnchors(flags);
  if (!anchors.ok()) return Usage(io, "journey", anchors.status().message());
  args.anchors = *std::move(anchors);
  for (const std::string& file : flags.GetAll("node-cert")) {
    std::string node;
    absl::StatusOr<std::vector<NodeCertFile>> cert =
        ReadNodeCerts({file}, &node);
    if (!cert.ok()) return Usage(io, "journey", cert.status().message());
    args.certs[node].push_back(std::move(cert->front()));
  }
  return args;
}

// What a CLI function printed on `err`, without "ibsm: " and the newline:
// a node's error, to show in its verdict line.
std::string Captured(const std::ostringstream& err) {
  const std::string text = err.str();
  absl::string_view message = text;
  absl::ConsumePrefix(&message, "ibsm: ");
  return std::string(absl::StripTrailingAsciiWhitespace(message));
}

// The message RpcFailed prints for a failed call, without "ibsm: ".
std::string CallFailure(absl::string_view what, const grpc::Status& status) {
  std::istringstream in;
  std::ostringstream out, err;
  Io quiet{in, out, err};
  RpcFailed(quiet, RpcSpec{what, absl::ZeroDuration()}, status);
  return Captured(err);
}

// One node's Auditor service, over the connection of one --target.
class JourneyNodeCalls {
 public:
  JourneyNodeCalls(const ParsedFlags& flags, Client* client)
      : flags_(flags), stub_(v1::Auditor::NewStub(client->channel())) {}

  // Every record matching `query`, page after page, into *out; stops once
  // *budget records were read (setting *truncated). Counts the redacted.
  grpc::Status Query(v1::AuditQuery query, uint64_t* budget,
                     std::vector<v1::AuditRecord>* out, uint64_t* redacted,
                     bool* truncated) {
    while (true) {
      if (*budget == 0) {
        *truncated = true;
        return grpc::Status::OK;
      }
      query.set_limit(static_cast<uint32_t>(std::min<uint64_t>(*budget, 1000)));
      grpc::ClientContext context;
      context.set_deadline(CallDeadline(flags_, absl::Seconds(60)));
      std::unique_ptr<grpc::ClientReader<v1::AuditQueryResponse>> reader =
          stub_->Query(&context, query);
      v1::AuditQueryResponse response;
      bool more = false;
      uint64_t next_index = query.from_index();
      while (reader->Read(&response)) {
        *budget -= std::min<uint64_t>(*budget, response.records_size());
        *redacted += response.redacted_indices_size();
        for (v1::AuditRecord& r : *response.mutable_records()) {
          out->push_back(std::move(r));
        }
        more = response.more();
        next_index = response.next_index();
      }
      grpc::Status status = reader->Finish();
      if (!status.ok() || !more) return status;
      if (next_index <= query.from_index()) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "the node's next page does not advance");
      }
      query.set_from_index(next_index);
    }
  }

  grpc::Status Checkpoint(v1::SignedCheckpoint* out) {
    grpc::ClientContext context;
    context.set_deadline(CallDeadline(flags_, absl::Seconds(30)));
    return stub_->GetCheckpoint(&context, v1::CheckpointRequest(), out);
  }

  grpc::Status Proof(uint64_t index, uint64_t tree_size,
                     v1::InclusionProof* out) {
    v1::InclusionProofRequest request;
    request.set_index(index);
    request.set_tree_size(tree_size);
    grpc::ClientContext context;
    context.set_deadline(CallDeadline(flags_, absl::Seconds(30)));
    return stub_->GetInclusionProof(&context, request, out);
  }

 private:
  const ParsedFlags& flags_;
  std::unique_ptr<v1::Auditor::Stub> stub_;
};

// The certificate of `node` that signed `note`, trusted through `anchors`
// as of the checkpoint's time; the problem otherwise.
absl::StatusOr<const NodeCertFile*> VerifyJourneyCheckpoint(
    const JourneyArgs& args, const std::string& node, const std::string& note) {
  auto certs = args.certs.find(node);
  if (certs == args.certs.end()) {
    std::vector<std::string> given;
    for (const auto& [n, files] : args.certs) given.push_back(n);
    return absl::FailedPreconditionError(absl::StrCat(
        "no --node-cert of node ", node, " was given (given: ",
        absl::StrJoin(given, ", "), "), so its checkpoint cannot be verified"));
  }
  const std::string origin = absl::StrCat("ibsm/", node);
  const NodeCertFile& signer = SignerOf(certs->second, note, origin);
  absl::StatusOr<ibsm::Checkpoint> checkpoint =
      ibsm::VerifyCheckpoint(note, origin, signer.key);
  if (!checkpoint.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the signature does not verify with --node-cert ",
                     signer.file, ": ", checkpoint.status().message()));
  }
  std::string trusted_line;
  IBSM_RETURN_IF_ERROR(
      SignerTrust(signer, args.anchors, &trusted_line)(*checkpoint));
  return &signer;
}

// The alert's records at one node and the link events of the peers they
// name, both bounded together by *budget.
grpc::Status GatherRecords(const JourneyArgs& args, JourneyNodeCalls& calls,
                           NodeJourney* node) {
  uint64_t budget = kJourneyRecordBound;
  node->record_bound = kJourneyRecordBound;
  v1::AuditQuery query;
  query.set_alert_id(args.alert.id);
  std::vector<v1::AuditRecord> found;
  grpc::Status status =
      calls.Query(query, &budget, &found, &node->redacted, &node->truncated);
  if (!status.ok()) return status;
  std::vector<v1::AuditRecord> kept;
  for (v1::AuditRecord& r : found) {
    if (RecordConcernsAlert(r, args.alert)) kept.push_back(std::move(r));
  }
  // The links to the peers the alert was queued for, sent to or relayed
  // to, from its first record on: why it waited, and when it could go.
  const std::vector<std::string> peers = JourneyPeers(kept);
  if (!kept.empty() && !peers.empty()) {
    google::protobuf::Timestamp first = kept.front().time();
    for (const v1::AuditRecord& r : kept) {
      if (r.time() < first) first = r.time();
    }
    for (v1::AuditAction action :
         {v1::AUDIT_FEDERATION_LINK_UP, v1::AUDIT_FEDERATION_LINK_DOWN}) {
      v1::AuditQuery links;
      links.set_action(action);
      *links.mutable_from_time() = first;
      std::vector<v1::AuditRecord> events;
      uint64_t ignored_redacted = 0;  // link records name no alert
      status = calls.Query(links, &budget, &events, &ignored_redacted,
                           &node->truncated);
      if (!status.ok()) return status;
      for (v1::AuditRecord& r : events) {
        if (IsLinkEventFor(r, peers)) kept.push_back(std::move(r));
      }
    }
  }
  for (v1::AuditRecord& r : kept) {
    JourneyRecord shown;
    shown.record = std::move(r);
    node->records.push_back(std::move(shown));
  }
  return grpc::Status::OK;
}

// Proves each record of `node` against its verified checkpoint, signed by
// `signer`.
void ProveRecords(const JourneyArgs& args, JourneyNodeCalls& calls,
                  const NodeCertFile& signer, NodeJourney* node) {
  const std::string origin = absl::StrCat("ibsm/", node->node);
  for (JourneyRecord& r : node->records) {
    if (r.record.index() >= node->checkpoint_size) continue;  // not yet
    v1::InclusionProof proof;
    grpc::Status status =
        calls.Proof(r.record.index(), node->checkpoint_size, &proof);
    r.proof = ProofState::kFailed;
    if (!status.ok()) {
      r.problem = CallFailure("audit proof", status);
      continue;
    }
    std::string trusted_line;
    const ibsm::InclusionReport report = ibsm::VerifyInclusionProof(
        proof, &signer.key, origin,
        SignerTrust(signer, args.anchors, &trusted_line));
    if (report.verdict != ibsm::InclusionVerdict::kVerified) {
      r.problem = DescribeInclusion(report, proof, trusted_line).why;
      continue;
    }
    // The record the trail holds must be the one the query showed.
    if (!google::protobuf::util::MessageDifferencer::Equals(report.record,
                                                            r.record)) {
      r.problem =
          absl::StrCat("the node's query answer for record ", r.record.index(),
                       " differs from the record its trail holds");
      continue;
    }
    r.proof = ProofState::kProven;
  }
}

// Everything one --target tells about the alert. A usage error (bad TLS
// files) is returned as its exit code after its message.
std::variant<NodeJourney, int> AskNode(const ParsedFlags& flags,
                                       const JourneyArgs& args,
                                       const std::string& target, Io& io) {
  NodeJourney node;
  node.target = target;
  ParsedFlags one = flags;
  one.Set("target", target);
  std::istringstream no_input;
  std::ostringstream unused, connect_err;
  Io quiet{no_input, unused, connect_err};
  std::variant<std::unique_ptr<Client>, int> connected =
      Connect(one, AuditCommand("journey"), quiet);
  if (int* code = std::get_if<int>(&connected)) {
    if (*code == kExitUsage) {
      io.err << connect_err.str();
      return *code;
    }
    node.error = Captured(connect_err);
    return node;
  }
  std::unique_ptr<Client> client =
      std::move(std::get<std::unique_ptr<Client>>(connected));
  absl::StatusOr<v1::NodeInfo> info = client->NodeInfo();
  if (!info.ok()) {
    std::ostringstream err;
    Io captured{no_input, unused, err};
    CallError(captured, "node info", info.status());
    node.error = Captured(err);
    return node;
  }
  node.node = info->node_id();
  JourneyNodeCalls calls(one, client.get());

  // The checkpoint first: records written after it are not yet in one.
  v1::SignedCheckpoint checkpoint;
  grpc::Status status = calls.Checkpoint(&checkpoint);
  const NodeCertFile* signer = nullptr;
  if (status.ok()) {
    node.has_checkpoint = true;
    node.checkpoint_size = checkpoint.tree_size();
    node.checkpoint_time_unix = checkpoint.time().seconds();
    absl::StatusOr<const NodeCertFile*> verified =
        VerifyJourneyCheckpoint(args, node.node, checkpoint.note());
    if (verified.ok()) {
      signer = *verified;
      node.checkpoint_verified = true;
      // The size and time the signature covers, not the unsigned fields.
      std::optional<uint64_t> size = ibsm::PeekTreeSize(checkpoint.note());
      node.checkpoint_size = size.value_or(0);
    } else {
      node.checkpoint_problem = std::string(verified.status().message());
    }
  } else if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
    node.error = CallFailure("audit checkpoint", status);
    return node;
  }

  status = GatherRecords(args, calls, &node);
  if (!status.ok()) {
    node.error = CallFailure("audit query", status);
    return node;
  }
  if (signer != nullptr) {
    ProveRecords(args, calls, *signer, &node);
  } else if (node.has_checkpoint) {
    for (JourneyRecord& r : node.records) {
      r.proof = ProofState::kFailed;
      r.problem = "the node's checkpoint did not verify";
    }
  }
  return node;
}

int RunJourney(const ParsedFlags& flags, Io& io) {
  std::variant<JourneyArgs, int> parsed = JourneyArgsFromFlags(flags, io);
  if (int* code = std::get_if<int>(&parsed)) return *code;
  const JourneyArgs& args = std::get<JourneyArgs>(parsed);
  google::protobuf::LogSilencer quiet;  // a damaged record logs on parsing

  std::vector<NodeJourney> nodes;
  for (const std::string& target : args.targets) {
    std::variant<NodeJourney, int> node = AskNode(flags, args, target, io);
    if (int* code = std::get_if<int>(&node)) return *code;
    nodes.push_back(std::get<NodeJourney>(std::move(node)));
  }

  bool known = false, failed = false;
  for (const NodeJourney& n : nodes) {
    known |= !n.records.empty();
    failed |= NodeFailed(n);
  }
  if (flags.Bool("json")) {
    io.out << JourneyJson(args.alert, nodes) << "\n";
  } else if (known) {
    io.out << FormatJourney(args.alert, nodes);
  } else {
    for (const NodeJourney& n : nodes) io.out << NodeVerdict(n) << "\n";
  }
  if (!known) {
    io.err << "ibsm: no node knows alert " << args.alert.text() << "\n";
    return kExitFailed;
  }
  return failed ? kExitFailed : kExitOk;
}

// ---- the rows of the command table ----------------------------------------

// The row of `ibsm audit verify`.
Command VerifyCommand() {
  return Command{
      {"audit", "verify"},
      "FILE --node-cert CERT [--node-cert CERT2] --ca ROOT [--crl-dir DIR] "
      "[--kept-checkpoint NOTEFILE] [--alerts ALERTS] [--json]",
      "Verify an audit trail export offline against the node's certificate",
      "Checks, without any node connection, that FILE (written by 'ibsm audit "
      "export') is complete and\nunaltered up to the node's signed checkpoint. "
      "The node certificate is trusted only if it chains to\nthe IBSM root "
      "--ca (with its intermediate in the --node-cert file, as in "
      "node-<N>-chain.pem), was\nvalid at the checkpoint's time, is not "
      "revoked (every certificate of the chain, with --crl-dir;\na CA without "
      "a CRL there fails), is a node certificate spiffe://ibsm/<NODE>, and was "
      "issued by the\nintermediate CA of that node (URI SAN "
      "spiffe://ibsm/<NODE>). Give --node-cert once per certificate\nthe node "
      "has signed with: each checkpoint is checked with the one that signed "
      "it. Then: the\ncheckpoint's signature, every record against its leaf "
      "and the root, and with --kept-checkpoint that\nthe trail only grew "
      "since a checkpoint you kept (a roll-back or a rewrite is detected). "
      "With\n--alerts (written by 'ibsm audit export-alerts'), also that each "
      "stored alert matches its publish\nrecord and each absent one was "
      "removed by retention. Prints 'OK: ...' lines, including the\ntrusted "
      "certificate, (exit 0) or 'TAMPERED: record <i>: <problem>' naming the "
      "first bad record\nwhen it can be located, or 'TAMPERED: stored log: "
      "sequence <n>: ...' (exit 1). Exit 2: bad command\nline or unusable "
      "input (unreadable files, no --ca, an untrusted certificate or one of "
      "another node,\na kept checkpoint that does not verify).",
      {
          Flag("file", Kind::kValue, "FILE",
               "the export (may also be given as the argument)"),
          Flag("node-cert", Kind::kRepeated, "CERT",
               "PEM certificate (with its intermediate) of the node that "
               "signed the export; repeat across a key rotation"),
          Flag("crl-dir", Kind::kValue, "DIR",
               "directory of PEM CRLs: check revocation of the whole chain"),
          Flag("kept-checkpoint", Kind::kValue, "NOTEFILE",
               "a signed checkpoint of the node you kept earlier"),
          Flag("alerts", Kind::kValue, "ALERTS",
               "an alert export ('ibsm audit export-alerts') to check "
               "against the trail"),
      },
      RunVerify};
}

// The row of `ibsm audit query`.
Command QueryCommand() {
  return Command{
      {"audit", "query"},
      "[--from-time T] [--to-time T] [--actor ID] [--node ID] [--topic T] "
      "[--alert-id ID] [--action A] [--decision D] [--from-index N] "
      "[--limit N] [--json]",
      "List audit trail records matching filters (auditors only)",
      "Calls ibsm.v1.Auditor/Query (the caller needs the AUDITOR role; the "
      "query is itself recorded). Prints an\naligned table (index, time, "
      "actor, action, decision, alert id, topic, classification, sequence,\n"
      "reason) or, with --json, one ibsm.v1.AuditRecord JSON object per line. "
      "When more records remain after\n--limit (default 1000), prints "
      "'next page: --from-index N' on stderr (table mode).\nActions: publish, "
      "deliver, ack, subscribe-open, subscribe-close, call-refused, "
      "policy-reload,\ncert-reload, retention-remove, auditor-query, "
      "auditor-export, federation-send, federation-receive,\nnode-start, "
      "node-stop, integrity-failure, federation-link-up, "
      "federation-link-down.",
      {
          Flag("from-time", Kind::kValue, "RFC3339",
               "records at or after this time"),
          Flag("to-time", Kind::kValue, "RFC3339", "records before this time"),
          Flag("actor", Kind::kValue, "ID",
               "identity that acted, e.g. CIV/police"),
          Flag("node", Kind::kValue, "ID", "node that wrote the record"),
          Flag("topic", Kind::kValue, "TOPIC", "alert topic (exact)"),
          Flag("alert-id", Kind::kValue, "ID", "alert id"),
          Flag("action", Kind::kValue, "ACTION",
               "e.g. publish, deliver, call-refused"),
          Flag("decision", Kind::kValue, "DECISION", "allowed or denied"),
          Flag("from-index", Kind::kValue, "N",
               "first record index to examine (pagination)"),
          Flag("limit", Kind::kValue, "N",
               "records to return, 1..100000 (default 1000)"),
      },
      RunQuery};
}

// The row of `ibsm audit export`.
Command ExportCommand() {
  return Command{
      {"audit", "export"},
      "[--from N] [--to SIZE] [--kept-checkpoint NOTEFILE] -o FILE "
      "[--save-checkpoint NOTEFILE]",
      "Export audit records up to a signed checkpoint, for offline "
      "verification",
      "Calls ibsm.v1.Auditor/Export and writes the ibsm.v1.AuditExport "
      "(binary) to FILE atomically: records\n[--from, SIZE) with the node's "
      "signed checkpoint of SIZE records (--to, default the latest) and the\n"
      "hashes needed to check them. With --kept-checkpoint (a note saved "
      "earlier) the export also carries\nthe consistency proof from it. "
      "--save-checkpoint writes the export's signed checkpoint note, to keep\n"
      "for the next export. Check the file with 'ibsm audit verify FILE "
      "--node-cert CERT'.",
      {
          Flag("from", Kind::kValue, "N", "first record index (default 0)"),
          Flag("to", Kind::kValue, "SIZE",
               "tree size of a signed checkpoint (default: the latest)"),
          Flag("kept-checkpoint", Kind::kValue, "NOTEFILE",
               "a checkpoint note you kept: include the consistency proof from "
               "it"),
          Flag("output", Kind::kValue, "FILE", "where to write the export",
               'o'),
          Flag("save-checkpoint", Kind::kValue, "NOTEFILE",
               "also write the export's signed checkpoint note here"),
          Flag("progress", Kind::kBool, "",
               "show on stderr that the export is under way (default: when "
               "stderr is a terminal)"),
      },
      RunExport};
}

// The row of `ibsm audit export-alerts`.
Command ExportAlertsCommand() {
  return Command{
      {"audit", "export-alerts"},
      "[--from-sequence N] [--limit N] -o FILE",
      "Export digests of the node's stored log, to check against the trail",
      "Calls ibsm.v1.Auditor/ExportAlerts and writes the ibsm.v1.AlertExport "
      "(binary) to FILE atomically: for\nevery log sequence from "
      "--from-sequence (default 1) on, at most --limit (default 10000, at "
      "most\n100000), what the node stores: alert id, originator, topic, "
      "classification and the SHA-256 of the\npayload (never the payload), "
      "or that the sequence is absent. Check it with 'ibsm audit verify\n"
      "EXPORT --alerts FILE ...'.",
      {
          Flag("from-sequence", Kind::kValue, "N",
               "first log sequence (default 1)"),
          Flag("limit", Kind::kValue, "N", "sequences to cover, 1..100000"),
          Flag("output", Kind::kValue, "FILE", "where to write the export",
               'o'),
          Flag("progress", Kind::kBool, "",
               "show on stderr that the export is under way (default: when "
               "stderr is a terminal)"),
      },
      RunExportAlerts};
}

// The row of `ibsm audit proof`.
Command ProofCommand() {
  return Command{
      {"audit", "proof"},
      "--index N [--tree-size S] [--node-cert CERT] | --consistency A B",
      "Get an inclusion or consistency proof from the node",
      "--index: calls ibsm.v1.Auditor/GetInclusionProof, prints the record, "
      "its leaf hash and the audit path\n(hex), and checks the proof locally "
      "against the checkpoint of that tree size. VERIFIED (exit 0) only\n"
      "with --node-cert: the checkpoint's signature by that certificate, "
      "trusted through the root of --ca\n(and --crl-dir) as 'ibsm audit "
      "verify' does. Without it: UNVERIFIED (exit 0), saying the path\n"
      "matches the unsigned root the node returned; also UNVERIFIED when S "
      "is not the size of a signed\ncheckpoint. FAILED: exit 1. "
      "--consistency A B: calls GetConsistencyProof and prints\nthe hashes "
      "proving that the tree of size B extends the tree of size A (B "
      "omitted: the latest\ncheckpoint).",
      {
          Flag("index", Kind::kValue, "N",
               "record index for an inclusion proof"),
          Flag("tree-size", Kind::kValue, "S",
               "tree size (default: the latest checkpoint's)"),
          Flag("node-cert", Kind::kValue, "CERT",
               "PEM certificate (with its intermediate) of the node: check "
               "the checkpoint signature"),
          Flag("crl-dir", Kind::kValue, "DIR",
               "directory of PEM CRLs for the --node-cert check"),
          Flag("consistency", Kind::kRepeated, "A B",
               "consistency proof from tree size A to B"),
      },
      RunProof,
      "consistency"};
}

// The row of `ibsm audit checkpoint`.
Command CheckpointCommand() {
  return Command{
      {"audit", "checkpoint"},
      "[-o NOTEFILE] [--node-cert CERT [--crl-dir DIR]] [--json]",
      "Print the node's latest signed checkpoint",
      "Calls ibsm.v1.Auditor/GetCheckpoint and prints the signed note (C2SP "
      "tlog-checkpoint), or writes it\nto NOTEFILE with -o (atomically), to "
      "keep for later roll-back detection ('ibsm audit verify\n"
      "--kept-checkpoint'). Fails (exit 1) while the node has signed no "
      "checkpoint yet.\nWith --node-cert (the node's certificate chain, "
      "trusted through --ca and --crl-dir) the note's\nsignature is checked "
      "first: VERIFIED (exit 0) or FAILED (exit 1; nothing is written).",
      {
          Flag("output", Kind::kValue, "NOTEFILE",
               "write the note to this file", 'o'),
          Flag("node-cert", Kind::kRepeated, "CERT",
               "PEM certificate (with its intermediate) of the node: check "
               "the note's signature; repeat across a key rotation"),
          Flag("crl-dir", Kind::kValue, "DIR",
               "directory of PEM CRLs for the --node-cert check"),
      },
      RunCheckpoint};
}

// The row of `ibsm audit journey`.
Command JourneyCommand() {
  return Command{
      {"audit", "journey"},
      "--alert ORIGINATOR/ID --target HOST:PORT [--target HOST:PORT ...] "
      "--node-cert CERT [--node-cert CERT ...] [--crl-dir DIR] [--json]",
      "Show one alert's path across nodes, each node's trail verified",
      "Asks every --target node (as an auditor: the AUDITOR role there) for "
      "its audit records of the alert\n(ORIGINATOR/ID, e.g. "
      "CIV/police/civ-1) and the link events of the peers it was queued "
      "for, sent\nor relayed to, and prints one timeline ordered by time: "
      "published (by whom, rule, policy, queued\nfor), refused at publish, "
      "sent to / refused by a peer, received from / refused from a peer,\n"
      "relayed, delivered to an agency, link up/down, retention removal, "
      "integrity failure. Each node's\nlatest signed checkpoint is verified "
      "with its --node-cert (matched to the node by the id in the\n"
      "certificate, trusted through --ca and --crl-dir as 'ibsm audit "
      "verify' does), and every shown record\nwith an inclusion proof "
      "against it; a record written after the checkpoint is 'not yet in a\n"
      "checkpoint'. Then one line per node: its checkpoint, signature and "
      "proofs, or what failed. At most\n10000 records are read per node. "
      "Exit 1 when a node cannot be reached or refuses, when any\n"
      "verification fails, or when no node knows the alert; 2 for a bad "
      "command line.",
      {
          Flag("alert", Kind::kValue, "ORIGINATOR/ID",
               "the alert, e.g. CIV/police/civ-1"),
          FlagSpec{"target", Kind::kRepeated, "HOST:PORT",
                   "a node to ask; repeat for each node", "IBSM_TARGET"},
          Flag("node-cert", Kind::kRepeated, "CERT",
               "PEM certificate (with its intermediate) of a target node; "
               "repeat per node (and across a key rotation)"),
          Flag("crl-dir", Kind::kValue, "DIR",
               "directory of PEM CRLs for the --node-cert checks"),
      },
      RunJourney};
}

}  // namespace

std::vector<Command> AuditCommands() {
  std::vector<Command> commands;
  commands.push_back(VerifyCommand());
  commands.push_back(QueryCommand());
  commands.push_back(ExportCommand());
  commands.push_back(ExportAlertsCommand());
  commands.push_back(ProofCommand());
  commands.push_back(CheckpointCommand());
  commands.push_back(JourneyCommand());
  return commands;
}

}  // namespace ibsm::cli
