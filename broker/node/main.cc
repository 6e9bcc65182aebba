// ibsm-broker --config FILE: runs one IBSM Exchange node until SIGTERM or
// SIGINT, then drains and exits 0. Exit code 2 with one line on stderr when
// the configuration, TLS files, key files or data directory are unusable.
//
// ibsm-broker keygen --out FILE: writes a new node key for encryption at
// rest (mode 0600; never overwrites) and prints its key id.
// ibsm-broker reencrypt --config FILE: on a stopped node, seals every stored
// alert not under the current key again under it; prints how many.
// ibsm-broker backup --config FILE --to DIR [--target HOST:PORT]: an online
// copy of the running node; ibsm-broker restore --config FILE --from DIR:
// into the stopped node's empty data directory (node/backup_command.h).
// ibsm-broker --config FILE --accept-rollback N: start on a restored data
// directory although the node already signed a checkpoint of N records.
#include <jemalloc/jemalloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "logging/event_log.h"
#include "node/backup_command.h"
#include "node/config.h"
#include "node/node.h"
#include "storage/key_ring.h"
#include "storage/reencrypt.h"
#include "storage/seal.h"
#include "storage/store.h"

// jemalloc's options, read at its first allocation (MALLOC_CONF in the
// environment still overrides them). Freed pages go back to the kernel
// after about a second, by a background thread, instead of jemalloc's
// default of ten seconds and only when some thread allocates: RocksDB frees
// a memtable's arena (megabytes) at every flush, and with the default those
// pages stayed resident: 112 MiB resident beyond jemalloc's active pages at
// a backlog of 1,000,000 alerts with 64 MiB memtables, 50 MiB with the
// bounded ones (docs/performance.md, "Bounded broker memory").
extern "C" const char* malloc_conf =
    "background_thread:true,dirty_decay_ms:1000";

namespace {

constexpr int kExitBadSetup = 2;

using ibsm::broker::LogEvent;

// jemalloc's view of the heap (the broker is linked with it): what is
// allocated, what its pages hold, and what it keeps mapped but unused.
std::string DescribeHeap() {
  uint64_t epoch = 1;
  size_t size = sizeof(epoch);
  // Refreshes the statistics; without it they are those of the last refresh.
  (void)mallctl("epoch", &epoch, &size, &epoch, size);
  auto stat = [](const char* name) {
    size_t value = 0;
    size_t len = sizeof(value);
    if (mallctl(name, &value, &len, nullptr, 0) != 0) return std::string("?");
    return absl::StrFormat("%.1f MiB", static_cast<double>(value) / (1 << 20));
  };
  return absl::StrCat("malloc allocated ", stat("stats.allocated"), ", active ",
                      stat("stats.active"), ", resident ",
                      stat("stats.resident"), ", retained ",
                      stat("stats.retained"));
}

int Usage() {
  std::fprintf(stderr,
               "usage: ibsm-broker --config FILE [--accept-rollback N]\n"
               "       ibsm-broker keygen --out FILE\n"
               "       ibsm-broker reencrypt --config FILE\n"
               "       ibsm-broker backup --config FILE --to DIR "
               "[--target HOST:PORT]\n"
               "       ibsm-broker restore --config FILE --from DIR\n"
               "  FILE is a NodeConfig in protobuf text format "
               "(proto/ibsm/internal/v1/config.proto); keygen writes a new "
               "32-byte key file for encryption.key_file.\n"
               "  backup: an online copy of the running node into DIR (absent "
               "or empty), over its client port with the node's own "
               "certificate.\n"
               "  restore: checks the backup in DIR and copies it into the "
               "stopped node's data_dir (absent or empty), then says which "
               "acknowledged alerts are gone.\n"
               "  --accept-rollback N: start although the data directory's "
               "audit trail is shorter than the checkpoint of N records the "
               "node already signed (after a restore); recorded in the "
               "trail.\n"
               "  Exit codes: 0 done, 1 backup failed at the node or on the "
               "way, 2 bad arguments, config, files or data directory "
               "(docs/operations.md).\n");
  return kExitBadSetup;
}

// The value of `--name VALUE` or `--name=VALUE` among argv[first..]; empty,
// with a message, for anything else.
bool ParseOneFlag(int argc, char** argv, int first, const std::string& name,
                  std::string* value) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--" + name && i + 1 < argc) {
      *value = argv[++i];
    } else if (arg.rfind("--" + name + "=", 0) == 0) {
      *value = arg.substr(name.size() + 3);
    } else {
      std::fprintf(stderr, "ibsm-broker: unknown argument '%s'\n", argv[i]);
      return false;
    }
  }
  if (value->empty()) {
    std::fprintf(stderr, "ibsm-broker: --%s FILE is required\n", name.c_str());
    return false;
  }
  return true;
}

// The values of `--NAME VALUE` or `--NAME=VALUE` for each of `names`
// among argv[first..]; false, with a message, for anything else or a
// missing one.
bool ParseFlags(int argc, char** argv, int first,
                const std::vector<std::string>& names,
                const std::vector<std::string>& optional,
                std::map<std::string, std::string>* values) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    bool matched = false;
    for (const std::vector<std::string>* list : {&names, &optional}) {
      for (const std::string& name : *list) {
        if (arg == "--" + name && i + 1 < argc) {
          (*values)[name] = argv[++i];
          matched = true;
        } else if (arg.rfind("--" + name + "=", 0) == 0) {
          (*values)[name] = arg.substr(name.size() + 3);
          matched = true;
        }
        if (matched) break;
      }
      if (matched) break;
    }
    if (!matched) {
      std::fprintf(stderr, "ibsm-broker: unknown argument '%s'\n", argv[i]);
      return false;
    }
  }
  for (const std::string& name : names) {
    if ((*values)[name].empty()) {
      std::fprintf(stderr, "ibsm-broker: --%s is required\n", name.c_str());
      return false;
    }
  }
  return true;
}

int Backup(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  if (!ParseFlags(argc, argv, 2, {"config", "to"}, {"target"}, &flags)) {
    return Usage();
  }
  return ibsm::broker::RunBackupCommand(flags["config"], flags["to"],
                                        flags["target"]);
}

int Restore(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  if (!ParseFlags(argc, argv, 2, {"config", "from"}, {}, &flags)) {
    return Usage();
  }
  return ibsm::broker::RunRestoreCommand(flags["config"], flags["from"]);
}

int Keygen(int argc, char** argv) {
  std::string out;
  if (!ParseOneFlag(argc, argv, 2, "out", &out)) return Usage();
  absl::StatusOr<std::string> id = ibsm::broker::WriteNewKeyFile(out);
  if (!id.ok()) {
    std::fprintf(stderr, "ibsm-broker keygen: %s\n",
                 std::string(id.status().message()).c_str());
    return kExitBadSetup;
  }
  std::printf("wrote a new node key to %s (mode 0600), key id %s\n",
              out.c_str(), ibsm::broker::seal::KeyIdHex(*id).c_str());
  return 0;
}

int Reencrypt(int argc, char** argv) {
  std::string config_path;
  if (!ParseOneFlag(argc, argv, 2, "config", &config_path)) return Usage();
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "ibsm-broker reencrypt: %s\n",
                 std::string(s.message()).c_str());
    return kExitBadSetup;
  };
  absl::StatusOr<ibsm::internal::v1::NodeConfig> config =
      ibsm::broker::LoadConfig(config_path);
  if (!config.ok()) return fail(config.status());
  if (!config->has_encryption()) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat(config_path,
                     " has no `encryption` section: there is no "
                     "key to re-encrypt under")));
  }
  if (!std::filesystem::is_directory(config->data_dir())) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "data directory ", config->data_dir(), " does not exist")));
  }
  const ibsm::internal::v1::EncryptionConfig& e = config->encryption();
  ibsm::broker::StoreOptions options{config->data_dir(), config->node_id()};
  absl::StatusOr<std::shared_ptr<const ibsm::broker::KeyRing>> keys =
      ibsm::broker::KeyRing::Load(
          e.key_file(), {e.old_key_files().begin(), e.old_key_files().end()});
  if (!keys.ok()) return fail(keys.status());
  options.keys = *keys;
  absl::StatusOr<std::unique_ptr<ibsm::broker::Store>> store =
      ibsm::broker::Store::Open(options);
  if (!store.ok()) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        store.status().message(), " (reencrypt runs on a stopped node)")));
  }
  absl::StatusOr<ibsm::broker::ReencryptResult> done =
      ibsm::broker::ReencryptLog(store->get());
  if (!done.ok()) return fail(done.status());
  if (absl::Status flushed = (*store)->Flush(); !flushed.ok()) {
    return fail(flushed);
  }
  std::printf(
      "re-encrypted %llu of %llu stored alerts under key id %s in %llu "
      "synced batches\n",
      static_cast<unsigned long long>(done->rewritten),
      static_cast<unsigned long long>(done->scanned),
      ibsm::broker::seal::KeyIdHex((*keys)->current_key_id()).c_str(),
      static_cast<unsigned long long>(done->batches));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "keygen") == 0) {
    return Keygen(argc, argv);
  }
  if (argc >= 2 && std::strcmp(argv[1], "reencrypt") == 0) {
    return Reencrypt(argc, argv);
  }
  if (argc >= 2 && std::strcmp(argv[1], "backup") == 0) {
    return Backup(argc, argv);
  }
  if (argc >= 2 && std::strcmp(argv[1], "restore") == 0) {
    return Restore(argc, argv);
  }
  std::string config_path;
  ibsm::broker::NodeOptions node_options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--accept-rollback" ||
               arg.rfind("--accept-rollback=", 0) == 0) {
      std::string value;
      if (arg.size() > 17) {
        value = arg.substr(18);
      } else if (i + 1 < argc) {
        value = argv[++i];
      }
      if (!absl::SimpleAtoi(value, &node_options.accept_rollback_size) ||
          node_options.accept_rollback_size == 0) {
        std::fprintf(stderr,
                     "ibsm-broker: --accept-rollback needs the tree size of "
                     "the abandoned checkpoint, as the refused start named "
                     "it (got '%s')\n",
                     value.c_str());
        return kExitBadSetup;
      }
    } else if (arg == "--help" || arg == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "ibsm-broker: unknown argument '%s'\n", argv[i]);
      return Usage();
    }
  }
  if (config_path.empty()) return Usage();

  // Block the signals we wait for in every thread, before any is started, so
  // that only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<ibsm::internal::v1::NodeConfig> config =
      ibsm::broker::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "ibsm-broker: bad config: %s\n",
                 std::string(config.status().message()).c_str());
    return kExitBadSetup;
  }
  absl::StatusOr<std::unique_ptr<ibsm::broker::Node>> node =
      ibsm::broker::Node::Start(*config, node_options);
  if (!node.ok()) {
    std::fprintf(stderr, "ibsm-broker: cannot start node %s: %s\n",
                 config->node_id().c_str(),
                 std::string(node.status().message()).c_str());
    return kExitBadSetup;
  }
  LogEvent(
      absl::StrCat("node ", config->node_id(), " serving on port ",
                   (*node)->port(), " (durability ",
                   ibsm::internal::v1::Durability_Name(config->durability()),
                   ", data ", config->data_dir(), ")"));

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // The outcome (new version, or refusal with file:line) is logged by
      // the reload itself. CRLs and the CA file are re-read now too.
      if (!config->policy_file().empty()) (void)(*node)->ReloadPolicy();
      (*node)->ReloadCertificates();
      continue;
    }
    LogEvent(absl::StrCat(strsignal(sig), ": draining; memory: ",
                          (*node)->DescribeMemory(), "; ", DescribeHeap()));
    break;
  }
  (*node)->Shutdown(absl::Seconds(config->shutdown_grace_seconds()));
  node->reset();
  LogEvent("stopped cleanly");
  // Everything is committed and the store is closed. Skip static destructors:
  // gRPC's library shutdown waits about a second for its internal threads.
  std::fflush(stderr);
  _exit(0);
}
