// ThreadSanitizer annotations for Debian's Abseil, linked into every
// executable of an IBSM_SANITIZE=thread build (cmake/IbsmHelpers.cmake).
//
// Why: absl::Mutex, CondVar and Notification are implemented in Debian's
// libabsl_synchronization.so, built without -fsanitize=thread, so their
// own TSan annotations (ABSL_TSAN_MUTEX_*) are compiled out and TSan never
// sees a lock taken or released: every access our code guards with an
// absl::Mutex was reported as a data race (the first TSan run: store_test's
// Committer::Submit, WorkerPool::Run's Await condition, ...). Abseil cannot
// be rebuilt here (Debian packages only), so this file interposes the
// methods our code calls: the executable's definition wins over the shared
// library's, tells TSan what the call does (a lock, an unlock, a wait that
// releases and takes the lock again, a notification), and calls the
// library's own through dlsym(RTLD_NEXT). While the library's code runs
// TSan ignores its memory accesses (Abseil evaluates a waiter's Condition in
// whichever thread unlocks; that thread holds the lock).
//
// Not for any other build: without -fsanitize=thread this file is empty.
//
// Checked by tsan_selfcheck (tests/sanitizers/tsan_selfcheck.cc): without
// this file, or with the nested calls below annotated twice, its guarded
// handoffs are reported; a real race still is.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IBSM_TSAN_SHIM 1
#endif
#endif

#ifdef IBSM_TSAN_SHIM
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_shim: %s not found in Abseil\n", mangled);
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

#define IBSM_REAL(type, mangled)                \
  static const auto real = Real<type>(mangled); \
  (void)0

// Abseil's entry points call one another through the PLT (LockWhenWithTimeout
// calls LockWhenWithDeadline, Notify calls Lock and Unlock), so they reach
// this file again. Only the outermost call on a thread is annotated: TSan
// counted the nested lock twice and its unlock once, and reported a "double
// lock" of every Notification waited for with a timeout.
thread_local int shim_depth = 0;
class ShimCall {
 public:
  ShimCall() : nested_(shim_depth++ > 0) {}
  ~ShimCall() { --shim_depth; }
  ShimCall(const ShimCall&) = delete;
  ShimCall& operator=(const ShimCall&) = delete;
  bool nested() const { return nested_; }

 private:
  bool nested_;
};

void Locked(void* mu, unsigned flags) { __tsan_mutex_post_lock(mu, flags, 0); }
// Around a call that releases `mu` and takes it again before returning
// (Await, CondVar::Wait): an unlock, then a lock whose accesses in between
// are Abseil's own.
void ReleaseForWait(void* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
}

// Notification::notified_yet_ is read by the inline (instrumented)
// HasBeenNotified(): release on it too, so that its acquire load pairs.
void* NotifiedFlag(const absl::Notification* n) {
  return reinterpret_cast<char*>(const_cast<absl::Notification*>(n)) +
         sizeof(absl::Mutex);
}
static_assert(sizeof(absl::Notification) == 2 * sizeof(absl::Mutex),
              "absl::Notification layout: Mutex mutex_; atomic<bool> "
              "notified_yet_ (padded)");

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  IBSM_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  Locked(this, 0);
}

void Mutex::ReaderLock() {
  IBSM_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this);
  Locked(this, __tsan_mutex_read_lock);
}

bool Mutex::TryLock() {
  IBSM_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool locked = real(this);
  __tsan_mutex_post_lock(
      this, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
      0);
  return locked;
}

bool Mutex::ReaderTryLock() {
  IBSM_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  const unsigned flags = __tsan_mutex_read_lock | __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(this, flags);
  const bool locked = real(this);
  __tsan_mutex_post_lock(
      this, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

void Mutex::Unlock() {
  IBSM_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  IBSM_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

void Mutex::LockWhen(const Condition& cond) {
  IBSM_REAL(void (*)(Mutex*, const Condition&),
            "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  ShimCall call;
  if (call.nested()) return real(this, cond);
  __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  Locked(this, 0);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  IBSM_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
            "8DurationE");
  ShimCall call;
  if (call.nested()) return real(this, cond, timeout);
  __tsan_mutex_pre_lock(this, 0);
  const bool held = real(this, cond, timeout);
  Locked(this, 0);  // taken whether or not the condition held
  return held;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  IBSM_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
            "4TimeE");
  ShimCall call;
  if (call.nested()) return real(this, cond, deadline);
  __tsan_mutex_pre_lock(this, 0);
  const bool held = real(this, cond, deadline);
  Locked(this, 0);
  return held;
}

void Mutex::Await(const Condition& cond) {
  IBSM_REAL(void (*)(Mutex*, const Condition&),
            "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  ShimCall call;
  if (call.nested()) return real(this, cond);
  ReleaseForWait(this);
  real(this, cond);
  Locked(this, 0);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  IBSM_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
            "8DurationE");
  ShimCall call;
  if (call.nested()) return real(this, cond, timeout);
  ReleaseForWait(this);
  const bool held = real(this, cond, timeout);
  Locked(this, 0);
  return held;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  IBSM_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_"
            "4TimeE");
  ShimCall call;
  if (call.nested()) return real(this, cond, deadline);
  ReleaseForWait(this);
  const bool held = real(this, cond, deadline);
  Locked(this, 0);
  return held;
}

void CondVar::Wait(Mutex* mu) {
  IBSM_REAL(void (*)(CondVar*, Mutex*),
            "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  ShimCall call;
  if (call.nested()) return real(this, mu);
  ReleaseForWait(mu);
  real(this, mu);
  Locked(mu, 0);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  IBSM_REAL(bool (*)(CondVar*, Mutex*, Duration),
            "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_"
            "8DurationE");
  ShimCall call;
  if (call.nested()) return real(this, mu, timeout);
  ReleaseForWait(mu);
  const bool timed_out = real(this, mu, timeout);
  Locked(mu, 0);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  IBSM_REAL(
      bool (*)(CondVar*, Mutex*, Time),
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  ShimCall call;
  if (call.nested()) return real(this, mu, deadline);
  ReleaseForWait(mu);
  const bool timed_out = real(this, mu, deadline);
  Locked(mu, 0);
  return timed_out;
}

void Notification::Notify() {
  IBSM_REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  ShimCall call;
  if (call.nested()) return real(this);
  __tsan_release(this);
  __tsan_release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  IBSM_REAL(void (*)(const Notification*),
            "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  ShimCall call;
  if (call.nested()) return real(this);
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  IBSM_REAL(
      bool (*)(const Notification*, Duration),
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
      "8DurationE");
  ShimCall call;
  if (call.nested()) return real(this, timeout);
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  IBSM_REAL(
      bool (*)(const Notification*, Time),
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
      "4TimeE");
  ShimCall call;
  if (call.nested()) return real(this, deadline);
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
#endif  // IBSM_TSAN_SHIM
