#include "audit_commands.h"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/audit_verify.h"
#include "broker/checkpoint.h"
#include "broker/identity.h"
#include "broker/merkle.h"
#include "google/protobuf/stubs/logging.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.pb.h"

namespace ibsm::cli {
namespace {

using Kind = FlagSpec::Kind;

FlagSpec Flag(std::string name, Kind kind, std::string value_name,
              std::string help) {
  return FlagSpec{std::move(name), kind, std::move(value_name), std::move(help),
                  ""};
}

// A bad command line or unusable input file: exit 2.
int Usage(Io& io, absl::string_view command, absl::string_view message) {
  io.err << "ibsm: " << message << "\nRun 'ibsm audit " << command
         << " --help' for usage.\n";
  return kExitUsage;
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
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
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-cert ", cert_file, ": no spiffe://ibsm/<NODE> id: ",
        uri.status().message()));
  }
  absl::StatusOr<broker::Identity> id = broker::ParseSpiffeId(*uri);
  if (!id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-cert ", cert_file, ": ", id.status().message()));
  }
  if (id->is_agency()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-cert ", cert_file, " is the certificate of agency ",
                     id->id(), ", not of a node"));
  }
  return id->node;
}

void PrintVerifyJson(const broker::VerifyReport& r, const std::string& node,
                     const std::string& file, Io& io) {
  auto uint_or_null = [](const std::optional<uint64_t>& v) {
    return v.has_value() ? absl::StrCat(*v) : std::string("null");
  };
  io.out << "{\"result\":" << JsonString(r.ok ? "OK" : "TAMPERED")
         << ",\"ok\":" << (r.ok ? "true" : "false")
         << ",\"file\":" << JsonString(file) << ",\"node\":" << JsonString(node)
         << ",\"records_checked\":" << r.records_checked
         << ",\"first_index\":" << r.first_index;
  if (r.checkpoint_verified) {
    io.out << ",\"tree_size\":" << r.tree_size
           << ",\"root\":" << JsonString(broker::HexEncode(r.root))
           << ",\"time\":" << JsonString(Rfc3339(r.time_unix));
  } else {
    io.out << ",\"tree_size\":null,\"root\":null,\"time\":null";
  }
  io.out << ",\"first_bad_index\":" << uint_or_null(r.first_bad_index)
         << ",\"problem\":" << (r.ok ? "null" : JsonString(r.problem))
         << ",\"kept_checkpoint\":";
  if (r.kept_tree_size.has_value()) {
    io.out << "{\"tree_size\":" << *r.kept_tree_size
           << ",\"time\":" << JsonString(Rfc3339(r.kept_time_unix))
           << ",\"consistent\":"
           << (r.earlier_checkpoint_consistent ? "true" : "false") << "}";
  } else {
    io.out << "null";
  }
  io.out << "}\n";
}

int RunVerify(const ParsedFlags& flags, Io& io) {
  if (!flags.Has("file")) return Usage(io, "verify", "missing the export FILE");
  if (!flags.Has("node-cert")) return Usage(io, "verify", "missing --node-cert");
  const std::string file = flags.Get("file");
  const std::string cert_file = flags.Get("node-cert");

  absl::StatusOr<std::string> data = ReadFileToString(file);
  if (!data.ok()) return Usage(io, "verify", data.status().message());
  if (data->empty()) {
    return Usage(io, "verify", absl::StrCat(file, " is empty"));
  }
  absl::StatusOr<std::string> cert_pem = ReadFileToString(cert_file);
  if (!cert_pem.ok()) return Usage(io, "verify", cert_pem.status().message());
  absl::StatusOr<broker::VerifyingKey> key =
      broker::VerifyingKey::FromCertificatePem(*cert_pem);
  if (!key.ok()) {
    return Usage(io, "verify", absl::StrCat("--node-cert ", cert_file, ": ",
                                            key.status().message()));
  }
  absl::StatusOr<std::string> node = CertificateNode(cert_file);
  if (!node.ok()) return Usage(io, "verify", node.status().message());
  std::string kept;
  if (flags.Has("kept-checkpoint")) {
    absl::StatusOr<std::string> k = ReadFileToString(flags.Get("kept-checkpoint"));
    if (!k.ok()) return Usage(io, "verify", k.status().message());
    kept = *std::move(k);
  }

  // Damaged strings in an export make protobuf log on parsing; the verdict
  // below says what is wrong instead.
  google::protobuf::LogSilencer quiet;
  v1::AuditExport exported;
  if (!exported.ParseFromString(*data)) {
    io.err << "ibsm: " << file
           << " does not parse as an audit export (ibsm.v1.AuditExport): it "
              "is damaged or not an export\n";
    return kExitFailed;
  }
  if (exported.node_id() != *node) {
    return Usage(io, "verify",
                 absl::StrCat("the export is of node '", exported.node_id(),
                              "' but --node-cert is the certificate of node '",
                              *node, "'"));
  }
  absl::StatusOr<broker::VerifyReport> report = broker::VerifyExport(
      exported, *key, absl::StrCat("ibsm/", *node),
      flags.Has("kept-checkpoint") ? &kept : nullptr);
  if (!report.ok()) return Usage(io, "verify", report.status().message());
  const broker::VerifyReport& r = *report;

  if (flags.Bool("json")) {
    PrintVerifyJson(r, *node, file, io);
    return r.ok ? kExitOk : kExitFailed;
  }
  if (!r.ok) {
    io.out << "TAMPERED: " << r.problem << "\n";
    return kExitFailed;
  }
  io.out << "OK: " << r.records_checked
         << " records verified up to signed checkpoint size " << r.tree_size
         << " (root " << broker::HexEncode(r.root) << ", time "
         << Rfc3339(r.time_unix) << ")\n";
  if (r.first_index > 0) {
    io.out << "note: the export starts at record " << r.first_index
           << "; records before it are covered by the signed root through "
              "their subtree hashes, not checked one by one\n";
  }
  if (r.kept_tree_size.has_value()) {
    io.out << "OK: consistent with the checkpoint you kept (size "
           << *r.kept_tree_size << ", time " << Rfc3339(r.kept_time_unix)
           << ")\n";
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> AuditCommands() {
  std::vector<Command> commands;
  commands.push_back(Command{
      {"audit", "verify"},
      "FILE --node-cert CERT [--kept-checkpoint NOTEFILE] [--json]",
      "Verify an audit trail export offline against the node's certificate",
      "Checks, without any node connection, that FILE (written by 'ibsm audit "
      "export') is complete and\nunaltered up to the node's signed checkpoint: "
      "the checkpoint's signature by the key of --node-cert\n(whose "
      "spiffe://ibsm/<NODE> id names the log), every record against its leaf "
      "and the root, and\nwith --kept-checkpoint that the trail only grew since "
      "a checkpoint you kept (a roll-back or a\nrewrite is detected). Prints "
      "'OK: ...' (exit 0) or 'TAMPERED: record <i>: <problem>' naming the\n"
      "first bad record when it can be located (exit 1). Exit 2: bad command "
      "line or unusable input\n(unreadable files, a certificate of another "
      "node, a kept checkpoint that does not verify).",
      {
          Flag("file", Kind::kValue, "FILE", "the export (may also be given as the argument)"),
          Flag("node-cert", Kind::kValue, "CERT", "PEM certificate of the node that signed the export"),
          Flag("kept-checkpoint", Kind::kValue, "NOTEFILE", "a signed checkpoint of the node you kept earlier"),
      },
      RunVerify});
  // query, export and proof (Auditor service calls) go here.
  return commands;
}

}  // namespace ibsm::cli
