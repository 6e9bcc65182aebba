#!/usr/bin/env bash
# noisy-neighbour.sh - does one identity at its limits slow another's
# publishes and deliveries? (issue #11 item 5; docs/security.md, "Limits")
#
# Runs ibsm-bench's W3 (CIV/police publishes at a fixed rate, a durable
# subscriber receives: publish-to-delivery latency) on a node whose
# limits.identity_publish_rate is --identity-rate, alternately quiet and with
# a noisy neighbour: CIV/customs flooding the same node on --streams raw
# publish streams as fast as the node answers, far above its rate. Prints,
# per side, medians and min-max, and the ratios noisy/quiet. Raw JSON lines
# go to the results file. Not a test: ctest does not run it.
set -euo pipefail

readonly PROG=noisy-neighbour
usage() {
  cat <<'USAGE'
Usage: tests/bench/noisy-neighbour.sh [--pairs N] [--rate R] [--seconds T]
                                      [--identity-rate L] [--streams S]
                                      [--build-dir DIR] [--results FILE]

  --pairs N          alternating (quiet, noisy) pairs (default 3)
  --rate R           the measured publisher's alerts/s (default 500)
  --seconds T        length of each run (default 10)
  --identity-rate L  the node's limits.identity_publish_rate and burst
                     (default 1000: the measured publisher stays under it,
                     the neighbour is far above it)
  --streams S        the neighbour's publish streams (default 8)
  --build-dir DIR    where ibsm-bench is (DIR/bin; default: build)
  --results FILE     raw JSON lines (default: DIR/noisy-neighbour-<time>.jsonl)
USAGE
}

# shellcheck source=tests/bench/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

PAIRS=3
RATE=500
SECONDS_EACH=10
IDENTITY_RATE=1000
STREAMS=8
BUILD_DIR=build
RESULTS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pairs) [[ $# -ge 2 ]] || die "--pairs needs a value"; PAIRS=$2; shift 2 ;;
    --rate) [[ $# -ge 2 ]] || die "--rate needs a value"; RATE=$2; shift 2 ;;
    --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; SECONDS_EACH=$2; shift 2 ;;
    --identity-rate) [[ $# -ge 2 ]] || die "--identity-rate needs a value"; IDENTITY_RATE=$2; shift 2 ;;
    --streams) [[ $# -ge 2 ]] || die "--streams needs a value"; STREAMS=$2; shift 2 ;;
    --build-dir) [[ $# -ge 2 ]] || die "--build-dir needs a value"; BUILD_DIR=$2; shift 2 ;;
    --results) [[ $# -ge 2 ]] || die "--results needs a value"; RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
for n in "$PAIRS" "$RATE" "$SECONDS_EACH" "$IDENTITY_RATE" "$STREAMS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive integer"
done
enter_repo_and_find_bench
RESULTS=${RESULTS:-$BUILD_DIR/noisy-neighbour-$(date +%Y%m%d-%H%M%S).jsonl}
: > "$RESULTS"

common=(--workload=W3 "--rate=$RATE" "--seconds=$SECONDS_EACH"
        "--identity-rate=$IDENTITY_RATE")
for ((i = 1; i <= PAIRS; i++)); do
  note "pair $i/$PAIRS: quiet"
  line=$("$IBSM_BENCH" "${common[@]}") || die "ibsm-bench failed (quiet run)"
  printf '{"side":"quiet",%s\n' "${line#\{}" >> "$RESULTS"
  note "pair $i/$PAIRS: noisy ($STREAMS streams)"
  line=$("$IBSM_BENCH" "${common[@]}" "--noisy-streams=$STREAMS") ||
    die "ibsm-bench failed (noisy run)"
  printf '{"side":"noisy",%s\n' "${line#\{}" >> "$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
side = lambda s: [r for r in runs if r["side"] == s]
quiet, noisy = side("quiet"), side("noisy")
print(f"W3 at {quiet[0]['messages'] // 1} alerts per run; node limit "
      f"{quiet[0]['identity_rate']:.0f} alerts/s per identity; "
      f"{len(quiet)} alternating pairs; results in {sys.argv[1]}")
print(f"{'':18}{'quiet median (min-max)':>28}{'noisy median (min-max)':>28}{'noisy/quiet':>13}")
for key, label in [("msgs_per_sec", "delivered/s"), ("p50_us", "p50 us"),
                   ("p99_us", "p99 us"), ("p999_us", "p99.9 us"),
                   ("broker_cpu_us_per_alert", "broker CPU us/alert")]:
    q = [r[key] for r in quiet]; n = [r[key] for r in noisy]
    mq, mn = statistics.median(q), statistics.median(n)
    print(f"{label:18}{mq:>12.0f} ({min(q):.0f}-{max(q):.0f}){'':>4}"
          f"{mn:>12.0f} ({min(n):.0f}-{max(n):.0f}){'':>4}{mn / mq:>9.2f}x")
acc = [r["noisy_accepted"] for r in noisy]
ref = [r["noisy_refused"] for r in noisy]
print(f"neighbour: {statistics.median(acc):.0f} alerts stored, "
      f"{statistics.median(ref):.0f} refused RESOURCE_EXHAUSTED per run (medians)")
PY
