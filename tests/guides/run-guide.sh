#!/usr/bin/env bash
# run-guide.sh: runs every ```sh block of a guide in docs/, in order, in one
# bash session with `set -euo pipefail`, so that a guide whose commands stop
# working fails CI (issue #13 item 8: "each command in the guides is
# exercised"). Blocks fenced ```text (or anything but sh) are shown, not run.
#
# Usage: run-guide.sh SOURCE_DIR BUILD_DIR GUIDE.md
#
# The session starts in a fresh folder holding:
#   pki/                     the development PKI (certs/make-dev-pki.sh, its
#                            default nodes, agencies and auditor)
#   policies/                a copy of the repository's policies/
#   proto/ibsm/v1/           a copy of the public API's .proto files (as
#                            installed in share/ibsm/proto/)
# and build/bin first on PATH (ibsm, ibsm-broker, ibsm-example, ibsm-py).
# A guide whose first line is not `<!-- guide: no-node -->` also gets a
# running CIV node with the shipped policy, started from civ.textproto (data
# in civ-data/, encryption key civ.key, checkpoints every second), and
# IBSM_TARGET, IBSM_CA set for it. Whatever the guide starts in the background it must stop itself; the
# runner kills the node it started, and any process left in the folder's
# process group, when it ends.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
guide=$3
[[ -f $guide ]] || guide=$src/$guide
[[ -f $guide ]] || { echo "run-guide: no guide $3" >&2; exit 2; }
guide=$(cd "$(dirname "$guide")" && pwd)/$(basename "$guide")

work=$(mktemp -d /tmp/ibsm-guide.XXXXXX)
node_pid=""
cleanup() {
  if [[ -n $node_pid ]]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  # What the guide started and left running (its own nodes, when a block
  # failed before the one that stops them): every process working in the
  # folder, by pid.
  local p pid
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/cwd" 2>/dev/null) == "$work"* ]] || continue
    pid=${p#/proc/}
    [[ $pid == "$$" ]] && continue
    kill -TERM "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
bash "$src/certs/make-dev-pki.sh" pki --quiet
cp -r "$src/policies" policies
mkdir -p proto/ibsm
cp -r "$src/proto/ibsm/v1" proto/ibsm/v1
export PATH=$build/bin:$PATH

if [[ $(head -1 "$guide") != "<!-- guide: no-node -->" ]]; then
  ibsm-broker keygen --out civ.key >/dev/null
  cat >civ.textproto <<CONFIG
node_id: "CIV"
listen_address: "127.0.0.1:0"
data_dir: "$work/civ-data"
port_file: "$work/civ.port"
policy_file: "$work/policies/ibsm-west-africa.textproto"
policy_check_seconds: 1
tls {
  cert_file: "$work/pki/node-CIV-chain.pem"
  key_file: "$work/pki/node-CIV.key"
  ca_file: "$work/pki/ca.pem"
  crl_dir: "$work/pki/crl"
}
encryption { key_file: "$work/civ.key" }
audit { checkpoint_every_seconds: 1 }
CONFIG
  ibsm-broker --config civ.textproto >civ.log 2>&1 &
  node_pid=$!
  for _ in $(seq 1 300); do
    [[ -s civ.port ]] && break
    kill -0 "$node_pid" 2>/dev/null || { cat civ.log; echo "run-guide: the node did not start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s civ.port ]] || { cat civ.log; echo "run-guide: no port file" >&2; exit 1; }
  export IBSM_TARGET=127.0.0.1:$(cat civ.port) IBSM_CA=pki/ca.pem
fi

# The guide's sh blocks, each announced with its line number.
script=$work/guide-script.sh
awk -v name="$(basename "$guide")" '
  /^```/ {
    if (in_block) { in_block = 0; next }
    if ($0 == "```sh") { in_block = 1; printf "echo \"== %s:%d\"\n", name, NR; next }
  }
  in_block { print }
' "$guide" >"$script"
[[ -s $script ]] || { echo "run-guide: $guide has no \`\`\`sh block" >&2; exit 2; }
echo "run-guide: $(grep -c '^echo "== ' "$script") blocks of $guide in $work"
set +e
( set -euo pipefail; source "$script" )
status=$?
set -e
if [[ $status != 0 ]]; then
  echo "run-guide: FAILED ($status) in $guide; the node's log:" >&2
  [[ -f civ.log ]] && tail -20 civ.log >&2
  exit 1
fi
echo "run-guide: OK: $guide"
