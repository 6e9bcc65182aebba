// Proves that the ThreadSanitizer build judges our code (ctest
// tsan_selfcheck_*, only in an IBSM_SANITIZE=thread build): "race" must be
// reported, and "guarded" must not, though every handoff in it goes through
// Debian's uninstrumented Abseil (tests/sanitizers/tsan_absl_shim.cc):
// Mutex, Await, CondVar, and Notification waited for with and without a
// timeout (the shim once counted the nested lock of the timed wait twice).
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

int Race() {
  int shared = 0;
  std::thread writer([&] { shared = 1; });
  shared = 2;
  writer.join();
  return shared == 0;
}

int Guarded() {
  absl::Mutex mu;
  int counter = 0;
  {
    std::thread a([&] {
      for (int i = 0; i < 1000; ++i) {
        absl::MutexLock lock(&mu);
        ++counter;
      }
    });
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
    a.join();
  }
  {
    bool ready = false;
    int payload = 0;
    std::thread producer([&] {
      payload = 42;
      absl::MutexLock lock(&mu);
      ready = true;
    });
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ready));
    if (payload != 42) return 1;
    producer.join();
  }
  for (int round = 0; round < 3; ++round) {
    struct State {
      absl::Notification entered;
      absl::Notification release;
      int value = 0;
    };
    auto* state = new State;
    std::thread worker([state] {
      state->value = 7;
      state->entered.Notify();
      state->release.WaitForNotification();
      delete state;
    });
    if (!state->entered.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      return 1;
    }
    if (state->value != 7) return 1;
    state->release.Notify();
    worker.join();
  }
  {
    absl::CondVar cv;
    bool done = false;
    int result = 0;
    std::thread t([&] {
      result = 5;
      absl::MutexLock lock(&mu);
      done = true;
      cv.Signal();
    });
    {
      absl::MutexLock lock(&mu);
      while (!done) cv.WaitWithTimeout(&mu, absl::Seconds(60));
    }
    t.join();
    if (result != 5) return 1;
  }
  return counter == 2000 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "race") == 0) return Race();
  if (argc == 2 && std::strcmp(argv[1], "guarded") == 0) return Guarded();
  std::fprintf(stderr, "usage: tsan_selfcheck race|guarded\n");
  return 2;
}
