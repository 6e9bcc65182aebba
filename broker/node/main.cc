// ibsm-broker --config FILE: runs one IBSM Exchange node until SIGTERM or
// SIGINT, then drains and exits 0. Exit code 2 with one line on stderr when
// the configuration, TLS files or data directory are unusable.
#include <jemalloc/jemalloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "logging/event_log.h"
#include "node/config.h"
#include "node/node.h"

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
               "usage: ibsm-broker --config FILE\n"
               "  FILE is a NodeConfig in protobuf text format "
               "(proto/ibsm/internal/v1/config.proto)\n");
  return kExitBadSetup;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
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
      ibsm::broker::Node::Start(*config);
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
