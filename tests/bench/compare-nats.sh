#!/usr/bin/env bash
# compare-nats.sh - IBSM Exchange and NATS JetStream side by side (issue #10).
#
# Runs the W1, W2 and W3 workloads alternately against IBSM (build/bin/ibsm-bench,
# which starts its own broker) and against a local nats-server (JetStream, file
# storage in a temp dir, mutual TLS with a throw-away dev PKI), for --pairs N
# pairs, and prints per workload the medians, min-max and the ratio IBSM/NATS.
# All raw JSON lines go to the results file. Not a test: ctest does not run it.
#
# Installs Debian's nats-server, libnats-dev and a C compiler with apt-get when
# they are missing (needs root or sudo). NATS_SERVER=/path/to/nats-server uses
# another server binary (e.g. a 2.10+ one, which knows sync_interval: always).
# See docs/performance.md.
set -euo pipefail

readonly PROG=compare-nats
usage() {
  cat <<'EOF'
Usage: tests/bench/compare-nats.sh [--pairs N] [--quick] [--messages N]
                                   [--no-sync-always] [--build-dir DIR]
                                   [--results FILE] [--ibsm-flags FLAGS]

  --pairs N          alternating (IBSM, NATS) pairs per workload (default 3)
  --quick            smoke run: 1 pair, 5,000 messages, W3 at 2,000/s for 2 s
  --messages N       messages for W1 and W2 (default 100,000)
  --no-sync-always   skip the extra NATS run with sync_interval: always
                     (skipped anyway when the nats-server does not know it)
  --build-dir DIR    where ibsm-bench is (DIR/bin) and the harness goes
                     (default: build)
  --results FILE     raw JSON lines (default: DIR/compare-nats-<time>.jsonl)
  --ibsm-flags FLAGS more ibsm-bench flags for every IBSM run, e.g.
                     "--mode=wire" or "--policy=" (default: none, i.e. the
                     client library, the shipped policy, fsync per batch)

Workloads (the same on both sides; 1 KiB payloads, mutual TLS on loopback):
  W1  acknowledged publishes/s, at most 256 unacknowledged
  W2  deliveries/s to 4 durable subscribers with explicit acks
  W3  2,000 publishes/s for 10 s: publish-to-delivery p50/p99/p99.9
EOF
}

# shellcheck source=tests/bench/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

PAIRS=3
MESSAGES=100000
W3_SECONDS=10
W3_RATE=2000
SYNC_ALWAYS=1
BUILD_DIR=build
RESULTS=""
IBSM_FLAGS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pairs) [[ $# -ge 2 ]] || die "--pairs needs a value"; PAIRS=$2; shift 2 ;;
    --quick) PAIRS=1; MESSAGES=5000; W3_SECONDS=2; shift ;;
    --messages) [[ $# -ge 2 ]] || die "--messages needs a value"; MESSAGES=$2; shift 2 ;;
    --no-sync-always) SYNC_ALWAYS=0; shift ;;
    --build-dir) [[ $# -ge 2 ]] || die "--build-dir needs a value"; BUILD_DIR=$2; shift 2 ;;
    --results) [[ $# -ge 2 ]] || die "--results needs a value"; RESULTS=$2; shift 2 ;;
    --ibsm-flags) [[ $# -ge 2 ]] || die "--ibsm-flags needs a value"; IBSM_FLAGS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $PAIRS =~ ^[0-9]+$ && $PAIRS -ge 1 && $PAIRS -le 50 ]] || die "--pairs must be 1..50"
[[ $MESSAGES =~ ^[0-9]+$ && $MESSAGES -ge 1 && $MESSAGES -le 10000000 ]] ||
  die "--messages must be 1..10000000"

enter_repo_and_find_bench
[[ -n $RESULTS ]] || RESULTS=$BUILD_DIR/compare-nats-$(date -u +%Y%m%dT%H%M%SZ).jsonl
command -v python3 >/dev/null || die "python3 is needed for the summary"

# ------------------------------------------------------------ dependencies
missing=()
[[ -n ${NATS_SERVER:-} ]] || command -v nats-server >/dev/null || missing+=(nats-server)
[[ -f /usr/include/nats/nats.h ]] || missing+=(libnats-dev)
command -v cc >/dev/null || missing+=(gcc)
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
    SUDO=sudo
  fi
  note "installing ${missing[*]} (apt-get)"
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
fi
NATS_SERVER=${NATS_SERVER:-nats-server}
NATS_VERSION=$("$NATS_SERVER" --version 2>&1 | head -1)

HARNESS=$BUILD_DIR/bin/nats_bench
mkdir -p "$BUILD_DIR/bin"
cc -O2 -std=c11 -Wall -Wextra -o "$HARNESS" tests/bench/nats_bench.c -lnats ||
  die "building the NATS harness failed (cc tests/bench/nats_bench.c -lnats)"

# ------------------------------------------------------------ PKI, server
WORK=$(mktemp -d /tmp/compare-nats.XXXXXX)
NATS_PID=""
stop_nats() {
  if [[ -n $NATS_PID ]]; then
    kill "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
    NATS_PID=""
  fi
}
cleanup() { stop_nats; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

bash certs/make-dev-pki.sh "$WORK/pki" --nodes CIV --agencies CIV/police -q ||
  die "certs/make-dev-pki.sh failed"
PKI=$WORK/pki

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_nats MODE: MODE is "default" or "always" (sync_interval: always).
# Returns non-zero (with the server's message) if the server refuses it.
NATS_PORT=""
start_nats() {
  local mode=$1 store=$WORK/js-$1 conf=$WORK/nats-$1.conf sync=""
  rm -rf "$store"
  mkdir -p "$store"
  [[ $mode == always ]] && sync=", sync_interval: always"
  NATS_PORT=$(free_port)
  cat >"$conf" <<EOF
listen: "127.0.0.1:$NATS_PORT"
jetstream { store_dir: "$store"$sync }
tls {
  cert_file: "$PKI/node-CIV-chain.pem"
  key_file: "$PKI/node-CIV.key"
  ca_file: "$PKI/ca.pem"
  verify: true
}
EOF
  "$NATS_SERVER" -t -c "$conf" >"$WORK/nats-check.log" 2>&1 || {
    cat "$WORK/nats-check.log" >&2
    return 1
  }
  "$NATS_SERVER" -c "$conf" >"$WORK/nats-$mode.log" 2>&1 &
  NATS_PID=$!
  for _ in $(seq 100); do
    if grep -q "Server is ready" "$WORK/nats-$mode.log"; then return 0; fi
    kill -0 "$NATS_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/nats-$mode.log" >&2
  die "nats-server ($mode) did not start"
}

nats_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo null; }

HAVE_ALWAYS=0
if [[ $SYNC_ALWAYS -eq 1 ]]; then
  if start_nats always 2>"$WORK/always.err"; then
    HAVE_ALWAYS=1
    stop_nats
  else
    note "$NATS_VERSION refuses 'sync_interval: always' ($(tr '\n' ' ' <"$WORK/always.err"))"
    note "the like-for-like durable NATS run is skipped (the option needs nats-server 2.10 or later)"
  fi
fi

workload_args() {
  case "$1" in
    W1) echo "--workload=W1 --messages=$MESSAGES" ;;
    W2) echo "--workload=W2 --subscribers=4 --messages=$MESSAGES" ;;
    W3) echo "--workload=W3 --rate=$W3_RATE --seconds=$W3_SECONDS" ;;
  esac
}

# tag_line SYSTEM PAIR JSON: the JSON line with "system" and "pair" set.
tag_line() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[3]); d["system"] = sys.argv[1]; d["pair"] = int(sys.argv[2])
if len(sys.argv) > 4 and sys.argv[4] != "null": d["broker_rss_kib"] = int(sys.argv[4])
print(json.dumps(d, separators=(",", ":")))' "$@"
}

run_ibsm() {
  local w=$1 pair=$2 line
  # shellcheck disable=SC2046,SC2086
  line=$("$IBSM_BENCH" $(workload_args "$w") $IBSM_FLAGS | tail -1) ||
    die "ibsm-bench $w failed"
  tag_line ibsm "$pair" "$line" >>"$RESULTS"
}

run_nats() {
  local w=$1 pair=$2 mode=$3 line rss
  start_nats "$mode" || die "nats-server refused its config"
  # shellcheck disable=SC2046
  line=$("$HARNESS" $(workload_args "$w") --url="tls://127.0.0.1:$NATS_PORT" \
    --ca="$PKI/ca.pem" --cert="$PKI/agency-CIV_police-chain.pem" \
    --key="$PKI/agency-CIV_police.key" | tail -1) || {
    stop_nats
    die "nats_bench $w ($mode) failed"
  }
  rss=$(nats_rss_kib "$NATS_PID")
  stop_nats
  local system=nats
  [[ $mode == always ]] && system=nats-sync-always
  tag_line "$system" "$pair" "$line" "$rss" >>"$RESULTS"
}

: >"$RESULTS"
note "$NATS_VERSION; $PAIRS pair(s); W1/W2 $MESSAGES messages; W3 $W3_RATE/s for $W3_SECONDS s"
note "extra ibsm-bench flags: ${IBSM_FLAGS:-none (client library, shipped policy)}"
note "raw JSON lines: $RESULTS"
for w in W1 W2 W3; do
  for pair in $(seq "$PAIRS"); do
    note "$w pair $pair/$PAIRS: IBSM"
    run_ibsm "$w" "$pair"
    note "$w pair $pair/$PAIRS: NATS (default sync)"
    run_nats "$w" "$pair" default
    if [[ $HAVE_ALWAYS -eq 1 ]]; then
      note "$w pair $pair/$PAIRS: NATS (sync_interval: always)"
      run_nats "$w" "$pair" always
    fi
  done
done

# ------------------------------------------------------------ summary
python3 - "$RESULTS" "$NATS_VERSION" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
systems = [s for s in ("ibsm", "nats", "nats-sync-always")
           if any(r["system"] == s for r in rows)]
print(f"IBSM Exchange vs {sys.argv[2]} (JetStream, file store, mutual TLS); "
      f"medians [min-max] of {max(r['pair'] for r in rows)} alternating pair(s)")
def values(w, s, key):
    return [r[key] for r in rows if r["workload"] == w and r["system"] == s
            and r.get(key) is not None]
def fmt(v, unit):
    if not v: return "n/a"
    m = statistics.median(v)
    if unit == "ms":
        return f"{m/1000:.1f} ms [{min(v)/1000:.1f}-{max(v)/1000:.1f}]"
    return f"{m:,.0f}/s [{min(v):,.0f}-{max(v):,.0f}]"
metrics = [("W1", "msgs_per_sec", "acknowledged publishes", "/s", "higher"),
           ("W2", "msgs_per_sec", "deliveries, 4 durable subscribers", "/s", "higher"),
           ("W3", "p50_us", "p50 latency at 2,000/s", "ms", "lower"),
           ("W3", "p99_us", "p99 latency", "ms", "lower"),
           ("W3", "p999_us", "p99.9 latency", "ms", "lower")]
for w, key, label, unit, better in metrics:
    ib = values(w, "ibsm", key)
    parts = [f"{s}: {fmt(values(w, s, key), unit)}" for s in systems]
    ratios = []
    for s in systems[1:]:
        nv = values(w, s, key)
        if ib and nv and statistics.median(nv) > 0:
            ratios.append(f"IBSM/{s} {statistics.median(ib)/statistics.median(nv):.2f}x")
    print(f"{w} {label}: " + " | ".join(parts))
    print(f"    {', '.join(ratios) or 'no ratio'} ({better} is better)")
EOF
