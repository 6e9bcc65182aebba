#!/usr/bin/env bash
# run-all.sh - every figure of docs/performance.md's issue #10 table in one
# command, for a person to run (not CI; ctest does not run it).
#
# In this order, each run after the other (never two at once):
#   1. tests/bench/compare-nats.sh (its --pairs, default 3): W1, W2, W3
#      against NATS JetStream, alternating;
#   2. W1 over 100,000 and over 1,000,000 alerts (cost flat as the log grows);
#   3. W6: RSS with a backlog for a stopped durable subscriber, sampled every
#      100,000 alerts up to 1,000,000 (read at 100k, 500k and 1M);
#   4. W3 at 2,000/s for --minutes T (default 10) with VmRSS every 60 s;
#   5. W1 across one federation link vs single-node signed W1 (20,000 each);
#   6. W4, the drain of a 20,000-alert backlog across the link;
#   7. the cold start figure, if build/bin/ibsm-cold-start-bench exists:
#      a data directory of 10,000,000 stored alerts (1,000,000 with --quick)
#      generated in-process (several minutes on this machine; not counted),
#      then 3 starts of the broker on it, warm page cache (and, as root, 3
#      after dropping the page cache, which slows anything else running on
#      the machine for a moment). --cold-data-dir
#      DIR keeps that directory (about 13 GiB at 10M) and reuses it in the
#      next run, which then takes well under 15 minutes again.
# Then it prints one markdown table (what, figure, goal, met?) on stdout;
# progress and compare-nats.sh's own summary go to stderr. The raw JSON lines
# of every run go to build/run-all-<time>.jsonl (each with "step" set).
#
# "Flat" (RSS) is read here as: the last sample at most 10 % above the first
# one taken under load (W6: at 100,000 alerts; W3: at 60 s, or the second
# sample with --quick).
#
# --quick shortens everything to a couple of minutes (1 pair, a tenth of the
# alerts, W3 for 1 minute): a check that the script works, not figures.
# About 15 minutes otherwise on the project's 2-core machine, depending on the
# cold-start bench. ibsm-bench runs in its default mode (client library,
# shipped policy, audit trail, fsync per acknowledged batch).
set -euo pipefail

readonly PROG=run-all
usage() {
  cat <<'EOF'
Usage: tests/bench/run-all.sh [--quick] [--pairs N] [--minutes T]
                              [--build-dir DIR] [--results FILE]
                              [--cold-data-dir DIR]
                              [-- EXTRA ibsm-bench FLAGS]

  --quick          a couple of minutes in all: 1 pair, 10x fewer alerts,
                   W3 for 1 minute
  --pairs N        compare-nats.sh pairs (default 3)
  --minutes T      W3 RSS run length in minutes (default 10)
  --build-dir DIR  where bin/ibsm-bench is (default: build)
  --results FILE   raw JSON lines (default: DIR/run-all-<time>.jsonl)
  --cold-data-dir DIR  the cold start's data directory: reused when it
                   exists (made by an earlier run), else generated and kept
  -- FLAGS         passed to every ibsm-bench run of steps 2-6
                   (e.g. -- --mode=wire), not to compare-nats.sh
EOF
}

# shellcheck source=tests/bench/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

QUICK=0
PAIRS=3
MINUTES=10
BUILD_DIR=build
RESULTS=""
COLD_DATA=""
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --pairs) [[ $# -ge 2 ]] || die "--pairs needs a value"; PAIRS=$2; shift 2 ;;
    --minutes) [[ $# -ge 2 ]] || die "--minutes needs a value"; MINUTES=$2; shift 2 ;;
    --build-dir) [[ $# -ge 2 ]] || die "--build-dir needs a value"; BUILD_DIR=$2; shift 2 ;;
    --results) [[ $# -ge 2 ]] || die "--results needs a value"; RESULTS=$2; shift 2 ;;
    --cold-data-dir) [[ $# -ge 2 ]] || die "--cold-data-dir needs a value"; COLD_DATA=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $PAIRS =~ ^[0-9]+$ && $PAIRS -ge 1 && $PAIRS -le 50 ]] || die "--pairs must be 1..50"
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 && $MINUTES -le 600 ]] ||
  die "--minutes must be 1..600"

enter_repo_and_find_bench
BENCH=$IBSM_BENCH
command -v python3 >/dev/null || die "python3 is needed for the table"
COLD=$BUILD_DIR/bin/ibsm-cold-start-bench
[[ -n $RESULTS ]] || RESULTS=$BUILD_DIR/run-all-$(date -u +%Y%m%dT%H%M%SZ).jsonl

# Sizes of the runs.
if [[ $QUICK -eq 1 ]]; then
  COMPARE_ARGS=(--quick)
  SMALL=10000 LARGE=100000 RSS_EVERY=10000
  W3_SECONDS=60 W3_EVERY=10
  LINK_N=2000
  COLD_N=1000000
else
  COMPARE_ARGS=(--pairs "$PAIRS")
  SMALL=100000 LARGE=1000000 RSS_EVERY=100000
  W3_SECONDS=$((MINUTES * 60)) W3_EVERY=60
  LINK_N=20000
  COLD_N=10000000
fi

WORK=$(mktemp -d /tmp/run-all.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
trap 'note "interrupted"; exit 130' INT TERM
: >"$RESULTS"
START=$SECONDS

# tag STEP < JSON line  >> RESULTS: the line with "step" set.
tag() {
  python3 -c '
import json, sys
line = sys.stdin.read().strip().splitlines()[-1]
d = json.loads(line); d["step"] = sys.argv[1]
print(json.dumps(d, separators=(",", ":")))' "$1" >>"$RESULTS"
}

# bench STEP FLAGS...: one ibsm-bench run, its line tagged STEP.
bench() {
  local step=$1 out
  shift
  note "[$((SECONDS - START)) s] $step: ibsm-bench $*"
  out=$("$BENCH" "$@" "${EXTRA[@]}") || die "ibsm-bench $* failed (step $step)"
  tag "$step" <<<"$out" || die "step $step: ibsm-bench printed no JSON line: $out"
}

# ------------------------------------------------------------ 1. vs NATS
note "[0 s] 1. compare-nats.sh ${COMPARE_ARGS[*]} (its summary follows on stderr)"
tests/bench/compare-nats.sh "${COMPARE_ARGS[@]}" --build-dir "$BUILD_DIR" \
  --results "$WORK/nats.jsonl" >&2 || die "compare-nats.sh failed"
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    if l.strip():
        d = json.loads(l); d["step"] = "nats"; print(json.dumps(d, separators=(",", ":")))
' "$WORK/nats.jsonl" >>"$RESULTS"

# ------------------------------------------------------------ 2. log growth
bench w1-small --workload=W1 --messages=$SMALL
bench w1-large --workload=W1 --messages=$LARGE

# ------------------------------------------------------------ 3. backlog RSS
bench w6 --workload=W6 --messages=$LARGE --rss-every=$RSS_EVERY

# ------------------------------------------------------------ 4. steady RSS
bench w3-rss --workload=W3 --rate=2000 --seconds=$W3_SECONDS \
  --rss-every-seconds=$W3_EVERY

# ------------------------------------------------------------ 5. the link
bench w1-link --topology=link --workload=W1 --messages=$LINK_N
bench w1-signed --workload=W1 --messages=$LINK_N --sign

# ------------------------------------------------------------ 6. drain
bench w4 --workload=W4 --messages=$LINK_N

# ------------------------------------------------------------ 7. cold start
if [[ -x $COLD ]]; then
  COLD_ARGS=(--alerts=$COLD_N --runs=3)
  # As root, also 3 starts after dropping the page cache.
  [[ $(id -u) -eq 0 ]] && COLD_ARGS+=(--cache=both)
  if [[ -n $COLD_DATA && -e $COLD_DATA/CURRENT ]]; then
    COLD_ARGS+=(--data-dir="$COLD_DATA" --reuse)
  elif [[ -n $COLD_DATA ]]; then
    COLD_ARGS+=(--data-dir="$COLD_DATA" --keep)
  fi
  note "[$((SECONDS - START)) s] cold-start: $COLD ${COLD_ARGS[*]}"
  out=$("$COLD" "${COLD_ARGS[@]}") || die "$COLD failed"
  tag cold-start <<<"$out" || die "ibsm-cold-start-bench printed no JSON line: $out"
else
  note "$COLD not found: the cold start figure is skipped (it comes with its own change)"
fi
note "[$((SECONDS - START)) s] done; raw JSON lines: $RESULTS"

# ------------------------------------------------------------ the table
python3 - "$RESULTS" "$LARGE" "$SMALL" "$RSS_EVERY" "$QUICK" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
large, small, every, quick = (int(a) for a in sys.argv[2:6])

def step(name):
    r = [x for x in rows if x.get("step") == name]
    return r[-1] if r else None

def nats(w, system, key):
    v = [x[key] for x in rows if x.get("step") == "nats" and x["workload"] == w
         and x["system"] == system and x.get(key) is not None]
    return statistics.median(v) if v else None

def k(v): return f"{v/1000:,.1f}k" if v is not None else "n/a"
def mib(kib): return f"{kib/1024:,.0f} MiB"
def met(ok): return "n/a" if ok is None else ("yes" if ok else "**no**")

table = []
def row(what, figure, goal, ok): table.append((what, figure, goal, met(ok)))

for w, key, label, goal, want in [
        ("W1", "msgs_per_sec", "W1 acknowledged publishes/s vs NATS", "≥ 1.0× (aim 1.5×)", 1.0),
        ("W2", "msgs_per_sec", "W2 deliveries/s, 4 durable subscribers, vs NATS", "≥ 1.0×", 1.0),
        ("W3", "p99_us", "W3 p99 latency at 2,000/s vs NATS", "≤ 1.0×", 1.0),
        ("W3", "p999_us", "W3 p99.9 latency vs NATS", "≤ 0.5×", 0.5)]:
    i, n = nats(w, "ibsm", key), nats(w, "nats", key)
    if i is None or not n:
        row(label, "n/a", goal, None)
        continue
    ratio = i / n
    unit = (lambda v: f"{v/1000:.1f} ms") if key != "msgs_per_sec" else (lambda v: f"{k(v)}/s")
    ok = ratio >= want if key == "msgs_per_sec" else ratio <= want
    row(label, f"{ratio:.2f}× (IBSM {unit(i)}, NATS {unit(n)}; medians)", goal, ok)

w6 = step("w6")
if w6 and w6.get("rss_samples_kib"):
    s = dict(w6["rss_samples_kib"])
    marks = [m for m in (every, large // 2, large) if m in s]
    first, last = s.get(every), s.get(large)
    figure = " / ".join(f"{mib(s[m])} at {m:,}" for m in marks)
    ok = None
    if first and last:
        ok = last <= 256 * 1024 and last <= 1.1 * first
    row(f"broker RSS, backlog of {large:,} for a stopped durable subscriber (W6)",
        figure, "≤ 256 MiB at 1M, flat", ok)
else:
    row("broker RSS with a backlog (W6)", "n/a", "≤ 256 MiB at 1M, flat", None)

w3 = step("w3-rss")
if w3 and w3.get("rss_samples_kib"):
    s = w3["rss_samples_kib"]
    base = s[1] if len(s) > 1 else s[0]
    last = s[-1]
    peak = max(kib for _, kib in s)
    row(f"broker RSS over {last[0] // 60} min of W3 at 2,000/s",
        f"{mib(base[1])} at {base[0]} s → {mib(last[1])} at {last[0]} s (max {mib(peak)})",
        "flat", last[1] <= 1.1 * base[1])
else:
    row("broker RSS over W3", "n/a", "flat", None)

a, b = step("w1-small"), step("w1-large")
if a and b and a["msgs_per_sec"]:
    ratio = b["msgs_per_sec"] / a["msgs_per_sec"]
    row(f"W1 over {large:,} vs over {small:,} alerts",
        f"{ratio:.2f}× ({k(b['msgs_per_sec'])}/s vs {k(a['msgs_per_sec'])}/s; "
        f"peak RSS {mib(b['broker_rss_kib'])})", "≥ 0.9×", ratio >= 0.9)

l, sgl = step("w1-link"), step("w1-signed")
if l and sgl and sgl["msgs_per_sec"]:
    ratio = l["msgs_per_sec"] / sgl["msgs_per_sec"]
    row("W1 across one link vs single node (signed)",
        f"{ratio:.2f}× ({k(l['msgs_per_sec'])}/s vs {k(sgl['msgs_per_sec'])}/s)",
        "≥ 0.8×", ratio >= 0.8)

w4 = step("w4")
if w4:
    row(f"W4 backlog drain across the link ({w4['messages']:,} alerts)",
        f"{w4['msgs_per_sec']:,.0f} alerts/s ({w4['drain_ms']:,.0f} ms)",
        "≥ 50,000/s", w4["msgs_per_sec"] >= 50000)

cold = step("cold-start")
if cold and cold.get("median_ms") is not None:
    row(f"cold start, {cold['alerts']:,} stored alerts: serving after "
        f"({cold['cache']} page cache)",
        f"{cold['median_ms']:,.0f} ms (median of {len(cold['serving_ms'])}, "
        f"{cold['min_ms']:,.0f}–{cold['max_ms']:,.0f})"
        + (f"; page cache dropped: {cold['cold_median_ms']:,.0f} ms"
           if cold.get("cold_median_ms") is not None else ""),
        "≤ 2,000 ms at 10M",
        cold["median_ms"] <= 2000)
else:
    row("cold start, 10,000,000 stored alerts", "not measured (no ibsm-cold-start-bench)",
        "≤ 2,000 ms", None)

mode = next((x.get("mode") for x in rows if x.get("step") == "w1-small"), None)
policy = next((x.get("policy") for x in rows if x.get("step") == "w1-small"), None)
print(f"ibsm-bench mode {mode}, policy {policy}" + (" — QUICK RUN, not figures" if quick else ""))
print()
print("| what | figure | goal | met? |")
print("| --- | --- | --- | --- |")
for r in table:
    print("| " + " | ".join(r) + " |")
EOF
