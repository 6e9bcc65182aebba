#include "node/backup_command.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "control/backup.h"
#include "ibsm/certificates.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "node/config.h"
#include "storage/key_ring.h"

namespace ibsm::broker {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitBadSetup = 2;

int Fail(absl::string_view command, int code, absl::string_view message) {
  std::fprintf(stderr, "ibsm-broker %s: %s\n", std::string(command).c_str(),
               std::string(message).c_str());
  return code;
}

// Where the running node of `config` serves its clients.
absl::StatusOr<std::string> NodeTarget(const internal::v1::NodeConfig& config) {
  const std::string& listen = config.listen_address();
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen_address ", listen, " has no port; give --target HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (port == "0") {
    if (config.port_file().empty()) {
      return absl::InvalidArgumentError(
          "listen_address has port 0 and no port_file: give --target "
          "HOST:PORT");
    }
    std::ifstream in(config.port_file());
    int bound = 0;
    if (!(in >> bound) || bound <= 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read the node's port from ", config.port_file(),
                       " (is the node running?)"));
    }
    port = std::to_string(bound);
  }
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    host = "127.0.0.1";
  }
  return absl::StrCat(host, ":", port);
}

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

int RunBackupCommand(const std::string& config_path, const std::string& to,
                     const std::string& given_target) {
  constexpr absl::string_view kCommand = "backup";
  absl::StatusOr<internal::v1::NodeConfig> config = LoadConfig(config_path);
  if (!config.ok()) {
    return Fail(kCommand, kExitBadSetup, config.status().message());
  }
  std::string target = given_target;
  if (target.empty()) {
    absl::StatusOr<std::string> found = NodeTarget(*config);
    if (!found.ok()) {
      return Fail(kCommand, kExitBadSetup, found.status().message());
    }
    target = *found;
  }
  grpc::SslCredentialsOptions files;
  for (auto [path, out] :
       {std::pair{config->tls().ca_file(), &files.pem_root_certs},
        std::pair{config->tls().key_file(), &files.pem_private_key},
        std::pair{config->tls().cert_file(), &files.pem_cert_chain}}) {
    absl::StatusOr<std::string> bytes = ReadFileToString(path);
    if (!bytes.ok()) {
      return Fail(kCommand, kExitBadSetup, bytes.status().message());
    }
    *out = *std::move(bytes);
  }
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Open(to);
  if (!writer.ok()) {
    return Fail(kCommand, kExitBadSetup, writer.status().message());
  }
  // Whatever fails from here leaves no half backup behind: `to` was absent
  // or empty.
  auto abandon = [&](int code, absl::string_view why) {
    writer->reset();
    std::error_code ec;
    std::filesystem::remove_all(to, ec);
    return Fail(kCommand, code, why);
  };
  grpc::ChannelArguments args;
  // A chunk is 1 MiB; the manifest lists every file (a few hundred for
  // a big store).
  args.SetMaxReceiveMessageSize(16 << 20);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::SslCredentials(files), args);
  std::unique_ptr<v1::Node::Stub> stub = v1::Node::NewStub(channel);
  grpc::ClientContext context;
  // Only the first connection waits; a broken stream is not retried.
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::hours(24));
  const absl::Time start = absl::Now();
  std::unique_ptr<grpc::ClientReader<v1::BackupChunk>> reader =
      stub->Backup(&context, v1::BackupRequest());
  v1::BackupChunk chunk;
  std::optional<v1::BackupManifest> manifest;
  while (reader->Read(&chunk)) {
    if (manifest) {
      return abandon(kExitFailed, "the node sent data after the manifest");
    }
    if (chunk.has_manifest()) {
      manifest = chunk.manifest();
      continue;
    }
    if (absl::Status added = (*writer)->Add(chunk); !added.ok()) {
      context.TryCancel();
      return abandon(kExitFailed, added.message());
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    const bool unreachable =
        status.error_code() == grpc::StatusCode::UNAVAILABLE;
    return abandon(
        kExitFailed,
        absl::StrCat(unreachable ? "cannot reach node " : "node ",
                     config->node_id(), " at ", target,
                     unreachable ? " (is it running? --target HOST:PORT)" : "",
                     ": ", status.error_message(), " (gRPC code ",
                     static_cast<int>(status.error_code()), ")"));
  }
  if (!manifest) {
    return abandon(kExitFailed, "the node ended the backup without a manifest");
  }
  if (absl::Status done = (*writer)->Finish(*manifest, config->node_id());
      !done.ok()) {
    return abandon(kExitFailed, done.message());
  }
  std::printf(
      "backup of node %s written to %s: %d files, %s in %.1f s; alerts up "
      "to sequence %llu, audit trail of %llu records%s\n",
      manifest->node_id().c_str(), to.c_str(), manifest->files_size(),
      Mib((*writer)->bytes()).c_str(),
      absl::ToDoubleSeconds(absl::Now() - start),
      static_cast<unsigned long long>(manifest->last_sequence()),
      static_cast<unsigned long long>(manifest->audit_size()),
      manifest->has_checkpoint()
          ? absl::StrCat(", latest signed checkpoint at ",
                         manifest->checkpoint().tree_size(), " records (",
                         kBackupCheckpointNoteFile, ")")
                .c_str()
          : ", no signed checkpoint yet");
  return 0;
}

int RunRestoreCommand(const std::string& config_path, const std::string& from) {
  constexpr absl::string_view kCommand = "restore";
  absl::StatusOr<internal::v1::NodeConfig> config = LoadConfig(config_path);
  if (!config.ok()) {
    return Fail(kCommand, kExitBadSetup, config.status().message());
  }
  StoreOptions target{config->data_dir(), config->node_id()};
  if (config->has_encryption()) {
    const internal::v1::EncryptionConfig& e = config->encryption();
    absl::StatusOr<std::shared_ptr<const KeyRing>> keys = KeyRing::Load(
        e.key_file(), {e.old_key_files().begin(), e.old_key_files().end()});
    if (!keys.ok()) {
      return Fail(kCommand, kExitBadSetup, keys.status().message());
    }
    target.keys = *keys;
  }
  absl::StatusOr<RestoreReport> report =
      RestoreBackup(from, target, config->published_checkpoint_file());
  if (!report.ok()) {
    return Fail(kCommand, kExitBadSetup, report.status().message());
  }
  std::printf("%s", DescribeRestore(*report, config_path).c_str());
  return 0;
}

}  // namespace ibsm::broker
