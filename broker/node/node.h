// A running broker node: opens the store, starts the Committer, the
// subscription hub and workers, and serves the gRPC services over mutual TLS.
// Node owns all of them. Start/Shutdown/Wait are meant for one controlling
// thread (main or a test); the services inside are concurrent.
//
// Start order (node.cc, one step each): check the TLS files and make the
// peer verifier and server credentials; create the data directory; open the
// store and log cache; make the subscription hub and workers; open the audit
// trail (signed with the node's TLS key) and migrate old alert links; start
// the Committer; load the policy; record the start and check the log's
// tail; make the NodeContext and connect peer security and its audit sink;
// start the control loops (policy watcher, TLS watcher, signing-key
// watcher, retention); build and start the gRPC server; write the port
// file. Shutdown order: control loops (retention, TLS watcher, signing-key
// watcher, policy watcher); subscriptions; the server (with grace); the
// verifier's audit sink; the stop record; the Committer; the workers; a
// store flush. The members of Node::Parts are destroyed in reverse order of
// construction.
#ifndef IBSM_BROKER_NODE_H_
#define IBSM_BROKER_NODE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ibsm/clock.h"
#include "ibsm/internal/v1/config.pb.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace ibsm::broker {

// What an in-process node takes besides its config (tests).
struct NodeOptions {
  // The time of expiry, retention, audit checkpoints and the control loops'
  // intervals. Must outlive the node.
  Clock* clock = RealClock();
  // The RocksDB environment of the node's store (StoreOptions::env); null
  // means the default. Tests pass a file system that simulates faults or a
  // power loss (tests/support). Must outlive the node.
  rocksdb::Env* store_env = nullptr;
  // The operator's --accept-rollback N: start on a data directory whose
  // audit trail is shorter than (or diverges from) the checkpoint of N
  // records recorded in config.published_checkpoint_file, and record that
  // in the trail. 0: refuse such a start (docs/operations.md, "Backup and
  // restore"). The check runs only when published_checkpoint_file is set
  // (LoadConfig sets it; an in-process config may leave it empty).
  uint64_t accept_rollback_size = 0;
};

class Node {
 public:
  // Checks the TLS files, opens the data directory and starts serving.
  // FAILED_PRECONDITION / NOT_FOUND / PERMISSION_DENIED with one clear
  // message when something the config names is unusable.
  static absl::StatusOr<std::unique_ptr<Node>> Start(
      const internal::v1::NodeConfig& config, const NodeOptions& options = {});
  ~Node();  // Shutdown()s

  int port() const;
  // The bound federation port; 0 without federation.listen_address.
  int federation_port() const;
  // The bound metrics port; 0 without metrics.listen_address.
  int metrics_port() const;
  // What the health services answer now (SERVING: true).
  bool serving() const;
  // Re-checks the store for the health services now (they also do it
  // every second).
  void CheckHealthNow();

  // Subscriptions registered in the hub now (tests check that none leak).
  size_t open_subscriptions() const;

  // What the node holds in memory by its own parts' accounting (RocksDB's
  // memtables, block cache and table readers, the log cache's charge), as
  // one line for the event log at stop (docs/performance.md, "Bounded
  // broker memory").
  std::string DescribeMemory() const;

  // Re-reads the policy file now (SIGHUP). OK when the file's policy is in
  // force; its validation error otherwise (the running policy stays).
  // FAILED_PRECONDITION when the node runs without a policy file.
  absl::Status ReloadPolicy();

  // Re-reads the CA file and CRLs now (SIGHUP; the TLS watcher also does
  // it when the files change) and ends live calls whose peer chain is no
  // longer accepted. A set that cannot be loaded is logged and the previous
  // one stays in force.
  void ReloadCertificates();

  // One retention pass at `now` (tests; the node runs them periodically).
  absl::StatusOr<size_t> RunRetention(absl::Time now);

  // Stops accepting calls, lets in-flight calls finish for up to `grace`,
  // commits what was accepted, ends subscriptions and closes the store.
  // Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  struct Parts;
  struct Steps;  // the steps of Start, with access to Parts
  explicit Node(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_NODE_NODE_H_
