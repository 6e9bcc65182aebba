#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz over their corpora.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 15: the smoke run of deploy/test-all.sh);
# TARGETs default to all of them (the list below). Exit 1 when a target
# finds a crash, a leak, a timeout (an input over 10 s) or runs out of
# memory (2 GiB); libFuzzer's report and the reproducer's path are in the
# target's log, printed on failure.
#
# Environment:
#   IBSM_FUZZ_BUILD  the build with -DIBSM_BUILD_FUZZ=ON (default:
#                    <repo>/build-clang, as deploy/test-all.sh makes it)
#   IBSM_FUZZ_WORK   where corpora grow, crash inputs and logs go (default:
#                    a new temp dir, removed at the end unless a target
#                    failed). The committed seeds are read, never written.
#   IBSM_FUZZ_JOBS   parallel fuzzing processes per target (default 1)
#
# For a long run (hours), keep the corpus between runs outside the repo
# and use both cores:
#   IBSM_FUZZ_WORK=$HOME/ibsm-fuzz IBSM_FUZZ_JOBS=2 tests/fuzz/run.sh 14400 alert_fuzz
# A crash input is written to $IBSM_FUZZ_WORK/<target>/crash-*; reproduce
# it with `build-clang/fuzz/<target> FILE`, and commit it under
# tests/fuzz/<corpus>/ with the fix (README.md). New interesting inputs of a
# long run may be merged into the committed seeds with libFuzzer's
# -merge=1 (keep the corpora small).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${IBSM_FUZZ_BUILD:-$root/build-clang}
seconds=${1:-15}
[ $# -gt 0 ] && shift
# target:corpus:dictionary
all=(
  policy_parser_fuzz:policy_corpus:textproto.dict
  node_config_fuzz:node_config_corpus:textproto.dict
  alert_fuzz:alert_corpus:
  checkpoint_fuzz:checkpoint_corpus:
  audit_proof_fuzz:audit_proof_corpus:
  audit_export_fuzz:audit_export_corpus:
  federation_link_fuzz:federation_link_corpus:
)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for entry in "${all[@]}"; do targets+=("${entry%%:*}"); done
fi
work=${IBSM_FUZZ_WORK:-}
own_work=false
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/ibsm-fuzz.XXXXXX)
  own_work=true
fi
jobs=${IBSM_FUZZ_JOBS:-1}
# Symbolized reports; leaks are findings (libFuzzer checks after each
# input), OpenSSL's included: no tests/sanitizers/lsan.supp here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for target in "${targets[@]}"; do
  spec=""
  for entry in "${all[@]}"; do [ "${entry%%:*}" = "$target" ] && spec=$entry; done
  if [ -z "$spec" ]; then
    echo "run.sh: unknown target $target (one of: ${all[*]%%:*})" >&2
    exit 2
  fi
  IFS=: read -r _ corpus dict <<<"$spec"
  bin=$build/fuzz/$target
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin missing: build with -DIBSM_BUILD_FUZZ=ON (deploy/test-all.sh)" >&2
    exit 2
  fi
  dir=$work/$target
  mkdir -p "$dir/corpus"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$dir/")
  [ -n "$dict" ] && args+=(-dict="$root/tests/fuzz/$dict")
  [ "$jobs" -gt 1 ] && args+=(-jobs="$jobs" -workers="$jobs")
  start=$(date +%s)
  # New inputs go to the first corpus dir (the work dir); the seeds are
  # only read.
  if (cd "$dir" && "$bin" "${args[@]}" "$dir/corpus" "$root/tests/fuzz/$corpus" \
        >"$dir/log" 2>&1); then
    logs=("$dir/log")
    for f in "$dir"/fuzz-*.log; do [ -e "$f" ] && logs+=("$f"); done
    runs=$(awk '/stat::number_of_executed_units:/ {s += $2} END {print s + 0}' "${logs[@]}")
    echo "fuzz $target: OK, $(( $(date +%s) - start )) s, $runs inputs run, corpus $(ls "$dir/corpus" | wc -l) new"
  else
    echo "fuzz $target: FAILED after $(( $(date +%s) - start )) s; log $dir/log:" >&2
    tail -n 60 "$dir/log" "$dir"/fuzz-*.log 2>/dev/null >&2 || true
    ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null >&2 || true
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: ${#failed[@]} target(s) failed: ${failed[*]} (inputs and logs in $work)" >&2
  exit 1
fi
$own_work && rm -rf "$work"
exit 0
