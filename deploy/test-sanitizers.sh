#!/usr/bin/env bash
# The clang builds of deploy/test-all.sh (docs/security.md, "Sanitizers"):
#
#   deploy/test-sanitizers.sh [asan|tsan|fuzz]...   (default: asan fuzz tsan)
#
#   asan  one clang build (<build>-clang) that is at once the lock-annotation
#         check (-Wthread-safety, every warning an error), AddressSanitizer +
#         UndefinedBehaviorSanitizer (a finding aborts the process: the test
#         fails) and the fuzz build (libFuzzer coverage in every library, the
#         targets of tests/fuzz); then the whole ctest suite in it.
#   fuzz  the smoke run of every fuzz target of that build over its corpus
#         (tests/fuzz/run.sh, IBSM_FUZZ_SECONDS each, default 15).
#   tsan  a second clang build (<build>-tsan) with ThreadSanitizer of what
#         the tests labelled `concurrency` need; runs the tests labelled
#         `tsan` (the committer, group commit and fsync pipeline, the store,
#         log cache, periodic tasks, identity limits), and with
#         IBSM_TSAN_GRPC=1 every `concurrency` test (subscription fan-out
#         and takeover, federation links): Debian's gRPC is not
#         instrumented, and TSan cannot yet see how its callback threads
#         hand a call from one to the next (docs/security.md, "Sanitizers").
#         Debian's Abseil is not instrumented either: the annotation shim
#         tests/sanitizers/tsan_absl_shim.cc makes its Mutex visible.
#
# <build> is IBSM_BUILD_DIR (default <repo>/build). -O1 with line tables:
# fast enough to run everything, symbolized reports. Exit non-zero on the
# first failing step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IBSM_BUILD_DIR:-$root/build}
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
  steps=(asan fuzz tsan)
fi
supp=$root/tests/sanitizers
clang_flags=(-DCMAKE_CXX_COMPILER=clang++ -DIBSM_WERROR=ON
             -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only")

# Sanitizer reports of every process of a ctest run (tests and the brokers
# and CLIs they start) go to files in $1 as well as to stderr: a broker's
# stderr is a log file its test may never read, and a broker that a test
# stops may exit 0 after a report. Any file there fails the step.
check_reports() {
  local dir=$1
  if compgen -G "$dir/*" >/dev/null; then
    echo "test-sanitizers.sh: sanitizer reports in $dir:" >&2
    for f in "$dir"/*; do echo "== $f" >&2; head -n 80 "$f" >&2; done
    return 1
  fi
}

for step in "${steps[@]}"; do
  case $step in
    asan)
      IBSM_BUILD_DIR=$build-clang bash "$root/deploy/build.sh" "${clang_flags[@]}" \
        -DIBSM_SANITIZE=address,undefined -DIBSM_BUILD_FUZZ=ON \
        -DIBSM_BUILD_TESTS=ON -DIBSM_BUILD_BENCH=ON
      reports=$build-clang/sanitizer-reports
      rm -rf "$reports" && mkdir -p "$reports"
      # abort_on_error: a finding kills the process at once (the test fails).
      rc=0
      (cd "$build-clang" &&
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$reports/asan \
        LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan \
        ctest --output-on-failure --timeout 900 -j 2) || rc=$?
      check_reports "$reports" || rc=1
      [ "$rc" -eq 0 ] || exit "$rc"
      ;;
    fuzz)
      IBSM_FUZZ_BUILD=$build-clang bash "$root/tests/fuzz/run.sh" "${IBSM_FUZZ_SECONDS:-15}"
      ;;
    tsan)
      # Only what the `concurrency` tests need (tests/CMakeLists.txt,
      # concurrency_tests), through build.sh's own cmake and ccache set-up.
      export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
      cmake -G Ninja -S "$root" -B "$build-tsan" "${clang_flags[@]}" \
        -DIBSM_SANITIZE=thread -DIBSM_BUILD_TESTS=ON -DIBSM_BUILD_BENCH=OFF >/dev/null
      ninja -C "$build-tsan" -j "${IBSM_JOBS:-2}" concurrency_tests
      tsan_label=tsan
      [ "${IBSM_TSAN_GRPC:-0}" = 1 ] && tsan_label=concurrency
      reports=$build-tsan/sanitizer-reports
      rm -rf "$reports" && mkdir -p "$reports"
      rc=0
      (cd "$build-tsan" &&
        TSAN_OPTIONS="suppressions=$supp/tsan.supp halt_on_error=1 second_deadlock_stack=1 die_after_fork=0 log_path=$reports/tsan" \
        ctest --output-on-failure --timeout 900 -j 2 -L "$tsan_label") || rc=$?
      check_reports "$reports" || rc=1
      [ "$rc" -eq 0 ] || exit "$rc"
      ;;
    *)
      echo "test-sanitizers.sh: unknown step $step (asan, fuzz or tsan)" >&2
      exit 2
      ;;
  esac
done
