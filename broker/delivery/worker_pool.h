// A fixed set of threads running queued closures, used for the work that must
// not run inside gRPC reactions (RocksDB reads, filling subscriber batches).
// Safe for concurrent use.
#ifndef IBSM_BROKER_DELIVERY_WORKER_POOL_H_
#define IBSM_BROKER_DELIVERY_WORKER_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace ibsm::broker {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // Stop()s
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on a pool thread; after Stop() the task is dropped.
  void Schedule(absl::AnyInvocable<void()> task);
  // Runs the tasks already queued, then joins the threads.
  void Stop();

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_DELIVERY_WORKER_POOL_H_
