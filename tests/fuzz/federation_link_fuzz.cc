// libFuzzer target for what a node does with the frames a federation peer
// sends (broker/federation: link_manager.cc's session, ingress.cc's checks):
// a real node core (RocksDB store in a temp dir, log cache, audit trail,
// Committer, outbox, worker pool) named MLI, with one configured peer CIV
// that dials in, and the policy tests/fuzz/federation_policy.textproto. Each
// input is one link session: LinkManager::Serve("CIV", stream) on a stream
// whose frames are the input's parts (fuzz_support.h SplitParts), each parsed
// as an ibsm.internal.v1.LinkFrame as the gRPC transport does; a part that
// does not parse ends the stream, as a broken one would. What the node
// writes back is parsed and dropped.
//
// Signatures are verified with the same function the broker's PeerVerifier
// calls (VerifyAlertSignature) against the fixed fuzzing PKI at its fixed
// time and without CRLs, so that signed seeds stay valid (README.md).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "delivery/subscription_hub.h"
#include "delivery/worker_pool.h"
#include "federation/link_manager.h"
#include "google/protobuf/stubs/logging.h"
#include "ibsm/alert_signature.h"
#include "ibsm/internal/v1/federation.pb.h"
#include "ibsm/policy.h"
#include "node/config.h"
#include "publish/committer.h"
#include "storage/log_cache.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_support.h"

namespace ibsm::fuzz {
namespace {

using broker::AlertVerifier;

class FixedTimeVerifier : public AlertVerifier {
 public:
  absl::Status VerifyAlert(const v1::Alert& alert) const override {
    return VerifyAlertSignature(alert, TrustStore(), FixedTimeChainOptions())
        .status();
  }
};

// The frames of one input; Write parses and drops what the node sends.
class InputStream : public broker::LinkStream {
 public:
  explicit InputStream(std::vector<absl::string_view> frames)
      : frames_(std::move(frames)) {}
  bool Read(internal::v1::LinkFrame* frame) override {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || next_ >= frames_.size()) return false;
    absl::string_view bytes = frames_[next_++];
    return frame->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  bool Write(const internal::v1::LinkFrame& frame) override {
    internal::v1::LinkFrame back;
    if (!back.ParseFromString(frame.SerializeAsString())) std::abort();
    absl::MutexLock lock(&mu_);
    return !cancelled_;
  }
  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  absl::Status CheckPeer(const std::string&) override {
    return absl::OkStatus();
  }
  std::string PeerCertificateSha256() override { return "fuzz"; }

 private:
  absl::Mutex mu_;
  const std::vector<absl::string_view> frames_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// The node core, made once per process and never destroyed (libFuzzer
// exits without unwinding).
struct Core {
  internal::v1::NodeConfig config;
  std::unique_ptr<broker::Store> store;
  std::unique_ptr<broker::LogCache> cache;
  std::unique_ptr<broker::Outbox> outbox;
  std::unique_ptr<broker::SubscriptionHub> hub;
  std::unique_ptr<broker::WorkerPool> workers;
  std::unique_ptr<broker::AuditTrail> audit;
  std::unique_ptr<broker::Committer> committer;
  std::unique_ptr<broker::NodeContext> context;
  FixedTimeVerifier verifier;
  std::unique_ptr<broker::LinkManager> links;
};

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "federation_link_fuzz: %s: %s\n", what,
                 std::string(value.status().message()).c_str());
    std::abort();
  }
  return *std::move(value);
}

Core* MakeCore() {
  auto* core = new Core();
  char dir[] = "/tmp/ibsm-federation-fuzz-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  internal::v1::NodeConfig& config = core->config;
  config.set_node_id(kPeerNode);
  config.set_data_dir(dir);
  internal::v1::PeerConfig* peer = config.mutable_federation()->add_peers();
  peer->set_node_id(kNode);  // no address: it dials in
  broker::ApplyDefaults(&config);

  broker::StoreOptions options{std::string(dir) + "/data", kPeerNode};
  options.block_cache_bytes = 8 << 20;
  options.memtable_bytes = 8 << 20;
  core->store = Must(broker::Store::Open(options), "store");
  core->cache = std::make_unique<broker::LogCache>(
      size_t{8} << 20, core->store->recovered_last_sequence() + 1);
  absl::flat_hash_map<std::string, broker::OutboxBounds> bounds;
  bounds[kNode] = {peer->max_backlog_alerts(), peer->max_backlog_mib() << 20};
  core->outbox =
      Must(broker::Outbox::Load(*core->store, std::move(bounds)), "outbox");
  core->hub = std::make_unique<broker::SubscriptionHub>(16);
  core->workers = std::make_unique<broker::WorkerPool>(1);
  SigningKey key = Must(SigningKey::FromPem(PkiFile("node-MLI.key")), "key");
  broker::AuditOptions audit_options;
  audit_options.node_id = kPeerNode;
  core->audit = Must(broker::AuditTrail::Open(core->store.get(), std::move(key),
                                              audit_options),
                     "audit trail");
  broker::CommitterOptions committer_options;
  committer_options.sync = false;  // a temp dir: the fuzzer needs no fsync
  committer_options.outbox = core->outbox.get();
  broker::SubscriptionHub* hub = core->hub.get();
  core->committer = std::make_unique<broker::Committer>(
      core->store.get(), core->cache.get(), core->audit.get(),
      committer_options, [hub](uint64_t last) { hub->OnCommitted(last); });
  std::shared_ptr<const Policy> policy = Must(
      Policy::Load(std::string(IBSM_FUZZ_DIR) + "/federation_policy.textproto",
                   kPeerNode),
      "policy");
  core->context = std::make_unique<broker::NodeContext>(
      config, core->store.get(), core->cache.get(), core->committer.get(),
      core->hub.get(), core->workers.get(), std::move(policy));
  core->context->SetAlertVerifier(&core->verifier);
  core->links = std::make_unique<broker::LinkManager>(
      core->context.get(), core->outbox.get(),
      [](const internal::v1::PeerConfig&)
          -> absl::StatusOr<std::unique_ptr<broker::LinkStream>> {
        return absl::UnavailableError("the fuzzer dials nobody");
      },
      "federation_link_fuzz");
  return core;
}

}  // namespace
}  // namespace ibsm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ibsm::fuzz::Core* core = ibsm::fuzz::MakeCore();
  google::protobuf::LogSilencer quiet;
  // At most as many frames as a session reads before the fuzzer moves on.
  ibsm::fuzz::InputStream stream(ibsm::fuzz::SplitParts(
      absl::string_view(reinterpret_cast<const char*>(data), size), 64));
  (void)core->links->Serve(ibsm::fuzz::kNode, &stream);
  return 0;
}
