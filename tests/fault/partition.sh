#!/usr/bin/env bash
# partition.sh - a network partition between two federated nodes.
#
# Runs, in user, network and mount namespaces of its own (unshare -rnm), node
# CIV in one network namespace and node MLI in a nested one, joined by a veth
# pair (CIV 10.77.0.1 = node-civ, MLI 10.77.0.2 = node-mli, names the node
# certificates carry, through a private /etc/hosts). MLI dials CIV's
# federation port. Then:
#   1. an alert published at CIV reaches MLI's durable subscriber;
#   2. the veth is taken down (the partition): CIV keeps taking publishes,
#      and records the link going down (nothing received for 4 heartbeats);
#   3. the veth comes back up (the heal): the alerts published meanwhile
#      reach MLI's subscriber, each stored once.
# Where the machine has no network namespaces (`unshare -rn true` fails) or
# cannot make a veth pair in one, it prints "SKIP: ..." and exits 0.
#
# Usage: tests/fault/partition.sh BUILD_DIR [SOURCE_DIR]
# Exit status: 0 passed or skipped, 1 failed.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR [SOURCE_DIR]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
build=$(cd "$1" && pwd)
src=$(cd "${2:-$(dirname "$0")/../..}" && pwd)

if [[ ${IBSM_PARTITION_INNER:-} != 1 ]]; then
  if ! unshare -rn true 2>/dev/null; then
    echo "SKIP: no network namespaces (unshare -rn true fails)"
    exit 0
  fi
  if ! unshare -rnm true 2>/dev/null; then
    echo "SKIP: no mount namespace for a private /etc/hosts (unshare -rnm true fails)"
    exit 0
  fi
  exec env IBSM_PARTITION_INNER=1 unshare -rnm --fork bash "$0" "$build" "$src"
fi

# ---------------------------------------------------------------- inside
fail() { echo "FAIL: $*" >&2; dump_logs; exit 1; }
skip() { echo "SKIP: $*"; exit 0; }

work=$(mktemp -d)
holder=""  # a process that keeps MLI's network namespace alive
civ_pid=""
mli_pid=""
dump_logs() {
  for log in "$work"/*.log; do
    [[ -e $log ]] || continue
    echo "---- $(basename "$log") (last 20 lines)" >&2
    tail -n 20 "$log" >&2
  done
}
cleanup() {
  for pid in $mli_pid $civ_pid $holder; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $mli_pid $civ_pid $holder; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Polls "$@" every 0.2 s until it succeeds or DEADLINE seconds pass.
eventually() {
  local deadline=$1
  shift
  local end=$((SECONDS + deadline))
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}

ip link set lo up
printf '127.0.0.1 localhost\n10.77.0.1 node-civ\n10.77.0.2 node-mli\n' >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts || skip "cannot bind-mount a private /etc/hosts"
unshare -n sleep 3600 &
holder=$!
in_mli() { nsenter -t "$holder" -n "$@"; }
eventually 10 in_mli true || skip "cannot enter the nested network namespace"
ip link add veth-civ type veth peer name veth-mli 2>/dev/null ||
  skip "cannot create a veth pair in a network namespace"
ip link set veth-mli netns "$holder"
ip addr add 10.77.0.1/24 dev veth-civ
ip link set veth-civ up
in_mli ip link set lo up
in_mli ip addr add 10.77.0.2/24 dev veth-mli
in_mli ip link set veth-mli up

pki=$work/pki
"$src/certs/make-dev-pki.sh" "$pki" --quiet --nodes CIV,MLI \
  --agencies CIV/police,MLI/police --auditors CIV/audit,MLI/audit >"$work/pki.log" 2>&1 ||
  fail "make-dev-pki.sh failed"
policy=$src/tests/federation/federation-policy.textproto

# node_config NODE FEDERATION_BLOCK: a node config in text format.
node_config() {
  cat <<EOF
node_id: "$1"
listen_address: "127.0.0.1:0"
port_file: "$work/$1.port"
data_dir: "$work/$1"
durability: DURABILITY_SYNC
shutdown_grace_seconds: 2
policy_file: "$policy"
tls {
  cert_file: "$pki/node-$1-chain.pem"
  key_file: "$pki/node-$1.key"
  ca_file: "$pki/ca.pem"
  crl_dir: "$pki/crl"
}
federation {
  heartbeat_seconds: 2
  reconnect_initial_ms: 100
  reconnect_max_seconds: 2
  $2
}
EOF
}

read_port() { [[ -s $1 ]] && cat "$1"; }

node_config CIV "listen_address: \"10.77.0.1:0\" port_file: \"$work/CIV.fed-port\" peers { node_id: \"MLI\" }" \
  >"$work/civ.textproto"
"$build/bin/ibsm-broker" --config "$work/civ.textproto" >"$work/civ.log" 2>&1 &
civ_pid=$!
eventually 60 read_port "$work/CIV.port" >/dev/null || fail "CIV did not start"
eventually 60 read_port "$work/CIV.fed-port" >/dev/null || fail "CIV did not open its federation port"
civ_port=$(cat "$work/CIV.port")
civ_fed_port=$(cat "$work/CIV.fed-port")

node_config MLI "peers { node_id: \"CIV\" address: \"node-civ:$civ_fed_port\" }" >"$work/mli.textproto"
# nsenter itself, not the in_mli function: a function run with & is a
# subshell, and $! would be that subshell, which the cleanup would kill while
# the broker it forked lived on.
nsenter -t "$holder" -n "$build/bin/ibsm-broker" --config "$work/mli.textproto" >"$work/mli.log" 2>&1 &
mli_pid=$!
eventually 60 read_port "$work/MLI.port" >/dev/null || fail "MLI did not start"
mli_port=$(cat "$work/MLI.port")

# cli NODE ENTITY ARGS...: the CLI against NODE (run in its namespace) as PKI
# ENTITY, for at most 90 s.
cli() {
  local node=$1 entity=$2 port
  shift 2
  port=$(cat "$work/$node.port")
  local run=()
  [[ $node == MLI ]] && run=(nsenter -t "$holder" -n)
  timeout 90 "${run[@]}" "$build/bin/ibsm" --target "127.0.0.1:$port" --ca "$pki/ca.pem" \
    --cert "$pki/$entity-chain.pem" --key "$pki/$entity.key" "$@"
}
publish() {
  cli CIV agency-CIV_police publish --id "$1" --topic border.incident \
    --classification RESTRICTED --severity HIGH --payload "Partition test alert $1" \
    >>"$work/publish.log" 2>&1 || fail "publish of $1 at CIV failed"
}
# take N: the next N alerts of MLI's durable desk, as JSON lines.
take() {
  cli MLI agency-MLI_police --json subscribe --topic 'border.>' --durable desk \
    --from earliest --count "$1" 2>>"$work/subscribe.log"
}
link_down_at_civ() {
  cli CIV auditor-CIV_audit --json audit query 2>/dev/null | grep -q FEDERATION_LINK_DOWN
}
received_once_at_mli() {
  local n
  n=$(cli MLI auditor-MLI_audit --json audit query --alert-id "$1" \
    --action federation-receive --decision allowed 2>/dev/null | grep -c '"alert_id"' || true)
  [[ $n -eq 1 ]]
}
has_alert() { grep -Eq "\"id\": ?\"$1\"" <<<"$2"; }

echo "partition: CIV client :$civ_port federation node-civ:$civ_fed_port, MLI client :$mli_port"

# 1. Connected: an alert crosses.
publish before-1
got=$(take 1) || fail "MLI's desk did not receive before-1"
has_alert before-1 "$got" || fail "MLI's desk got something else than before-1: $got"
echo "partition: before-1 reached MLI"

# 2. Partitioned: publishes go on at CIV; CIV sees the link go down.
ip link set veth-civ down
publish during-1
publish during-2
eventually 60 link_down_at_civ || fail "CIV never recorded the link to MLI going down"
echo "partition: CIV recorded the link down; during-1 and during-2 queued"

# 3. Healed: what was queued arrives, once.
ip link set veth-civ up
got=$(take 2) || fail "MLI's desk did not receive the alerts queued during the partition"
has_alert during-1 "$got" || fail "during-1 missing at MLI: $got"
has_alert during-2 "$got" || fail "during-2 missing at MLI: $got"
for id in before-1 during-1 during-2; do
  eventually 30 received_once_at_mli "$id" || fail "$id is not stored exactly once at MLI"
done
echo "PASS: partition healed; every alert reached MLI once"
