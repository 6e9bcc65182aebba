#!/usr/bin/env bash
# python_client_test: the Python client (bin/ibsm-py, client-lib/python/)
# against a real ibsm-broker process over mutual TLS with the development
# PKI. The node has a federation peer configured, so it refuses unsigned
# alerts: every alert it stores here was signed by the Python code (or by the
# C++ CLI), and `ibsm subscribe --verify` checks those signatures again.
#
#   - signed publish from Python, a C++ `ibsm publish` alert in between;
#   - a Python durable subscriber takes them, survives a restart of the node
#     (reconnect, resume after the stored cursor), and a second run of the
#     same durable name starts after what the first acknowledged;
#   - a resend with the same id is a duplicate with the original sequence;
#   - refusals are clear gRPC statuses: unsigned (FAILED_PRECONDITION),
#     changed after signing (PERMISSION_DENIED), a topic the agency may not
#     publish on, a bad subscription pattern (INVALID_ARGUMENT).
#
# Usage: python_client_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
export PATH=$build/bin:$PATH
/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' 2>/dev/null || {
  echo "FAIL: Debian's python3-grpcio, python3-protobuf, python3-cryptography" \
       "are needed (deploy/install-deps.sh)" >&2
  exit 1
}

work=$(mktemp -d /tmp/ibsm-python-test.XXXXXX)
node_pid=""
sub_pid=""
cleanup() {
  for pid in $sub_pid $node_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() {
  echo "FAIL: $*" >&2
  [[ -f node.log ]] && { echo "--- node log (tail)" >&2; tail -20 node.log >&2; }
  exit 1
}
# expect FILE PATTERN: FILE has a line matching PATTERN (grep -E).
expect() { grep -Eq -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no '$2' in $1"; }; }

bash "$src/certs/make-dev-pki.sh" pki --quiet
# A fixed port, so that the restarted node is found at the same address.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >node.textproto <<CONFIG
node_id: "CIV"
listen_address: "127.0.0.1:$port"
data_dir: "$work/data"
port_file: "$work/node.port"
policy_file: "$src/policies/ibsm-west-africa.textproto"
tls {
  cert_file: "$work/pki/node-CIV-chain.pem"
  key_file: "$work/pki/node-CIV.key"
  ca_file: "$work/pki/ca.pem"
  crl_dir: "$work/pki/crl"
}
federation {
  listen_address: "127.0.0.1:0"
  peers { node_id: "MLI" }  # never dials in: it only makes the node federated
}
CONFIG
start_node() {
  rm -f node.port
  ibsm-broker --config node.textproto >>node.log 2>&1 &
  node_pid=$!
  for _ in $(seq 1 300); do
    [[ -s node.port ]] && return 0
    kill -0 "$node_pid" 2>/dev/null || fail "the node did not start"
    sleep 0.1
  done
  fail "the node wrote no port file"
}
stop_node() {
  kill -TERM "$node_pid"
  wait "$node_pid" || fail "the node did not stop cleanly"
  node_pid=""
}
start_node

export IBSM_TARGET=127.0.0.1:$port IBSM_CA=pki/ca.pem
police=(--cert pki/agency-CIV_police-chain.pem --key pki/agency-CIV_police.key)
customs=(--cert pki/agency-CIV_customs-chain.pem --key pki/agency-CIV_customs.key)
py_publish() {  # py_publish ID [flags...]
  local id=$1
  shift
  ibsm-py publish "${police[@]}" --id "$id" --topic border.incident \
    --classification RESTRICTED --severity HIGH --payload "alert $id" \
    --attribute post=Noe --attribute vehicle="white pickup" "$@"
}
# lines FILE: the number of delivery lines ("#SEQ ...") in FILE.
lines() { grep -c '^#' "$1" || true; }
wait_lines() {  # wait_lines FILE N: until FILE has N deliveries
  for _ in $(seq 1 200); do
    [[ $(lines "$1") -ge $2 ]] && return 0
    kill -0 "$sub_pid" 2>/dev/null || { cat "$1" sub.err >&2 || true; fail "the subscriber ended early"; }
    sleep 0.1
  done
  cat "$1" sub.err >&2 || true
  fail "$1 has $(lines "$1") deliveries, not $2"
}

echo "== the node knows the Python client by its certificate"
ibsm-py info "${police[@]}" >info.out
expect info.out '^node CIV .*caller CIV/police'

echo "== a Python durable subscriber (CIV/customs), opened before the alerts"
# A window of 2: the five deliveries arrive only if it grants credit again.
ibsm-py subscribe "${customs[@]}" --topic 'border.>' --durable py-ops \
  --from earliest --count 5 --credit 2 >sub.out 2>sub.err &
sub_pid=$!

echo "== signed publishes from Python, one from the C++ CLI in between"
py_publish py-1 >pub1.out
expect pub1.out '^published py-1 as sequence [0-9]+$'
py_publish py-2 >pub2.out
ibsm "${police[@]}" publish --id cpp-1 --topic border.incident \
  --classification RESTRICTED --severity MEDIUM --payload "from C++" >cpp.out
py_publish py-3 >pub3.out
wait_lines sub.out 4

echo "== the node restarts; the subscriber reconnects and resumes"
stop_node
start_node
py_publish py-4 >pub4.out
wait "$sub_pid" || fail "the subscriber exited $?"
sub_pid=""
[[ $(lines sub.out) == 5 ]] || fail "expected 5 deliveries: $(cat sub.out)"
ids=$(awk '/^#/ { print $3 }' sub.out | tr '\n' ' ')
[[ $ids == "py-1 py-2 cpp-1 py-3 py-4 " ]] || fail "deliveries in the wrong order or wrong: $ids"
expect sub.out '^#[0-9]+ CIV/police py-1 border.incident RESTRICTED signed$'
expect sub.out '^#[0-9]+ CIV/police cpp-1 border.incident RESTRICTED signed$'
expect sub.err 'received 5, reconnected [1-9][0-9]* times'

echo "== the same durable name, run again, starts after what was acknowledged"
py_publish py-5 >/dev/null
ibsm-py subscribe "${customs[@]}" --topic 'border.>' --durable py-ops \
  --from earliest --idle 3 >resume.out 2>resume.err
[[ $(awk '/^#/ { print $3 }' resume.out | tr '\n' ' ') == "py-5 " ]] ||
  fail "the durable subscription did not resume after its cursor: $(cat resume.out)"

echo "== a resend with the same id is a duplicate of the original"
py_publish py-1 >again.out
seq1=$(awk '{ print $5 }' pub1.out)
expect again.out "^published py-1 as sequence $seq1 \\(duplicate\\)$"

echo "== the C++ subscriber verifies the Python signatures"
ibsm "${customs[@]}" subscribe --topic 'border.>' --durable verify \
  --from earliest --count 6 --verify >verify.out
[[ $(grep -c 'signature: verified, signed by CIV/police' verify.out) == 6 ]] ||
  { cat verify.out >&2; fail "not every signature verified"; }

echo "== refusals are clear gRPC statuses"
refused() {  # refused PATTERN COMMAND...: exits 1 with PATTERN on stderr
  local pattern=$1 status=0
  shift
  "$@" >refused.out 2>refused.err || status=$?
  [[ $status == 1 ]] || { cat refused.out refused.err >&2; fail "exit $status, not 1: $*"; }
  expect refused.err "$pattern"
}
refused '^ibsm-py: FAILED_PRECONDITION: .*federated.*signed' py_publish py-unsigned --unsigned
refused "^ibsm-py: [A-Z_]+: .*no\.such\.topic" \
  ibsm-py publish "${police[@]}" --id py-unknown --topic no.such.topic \
  --classification RESTRICTED --severity HIGH
refused "^ibsm-py: ALREADY_EXISTS: .*py-1" py_publish py-1 --tlp RED
refused '^ibsm-py: INVALID_ARGUMENT: ' \
  ibsm-py subscribe "${customs[@]}" --topic 'border..x' --durable bad --count 1

# An alert changed after it was signed, sent with the library directly.
cat >tampered.py <<'PY'
import sys
import ibsm_client
from ibsm.v1 import alert_pb2
target, ca = sys.argv[1:3]
cert, key = "pki/agency-CIV_police-chain.pem", "pki/agency-CIV_police.key"
alert = alert_pb2.Alert(id="py-tampered", topic="border.incident",
                        classification="RESTRICTED",
                        severity=alert_pb2.SEVERITY_LOW, payload=b"signed")
ibsm_client.AlertSigner(cert, key).sign(alert)
alert.payload = b"changed"
with ibsm_client.Client(target, ca, cert, key, sign=False) as client:
    try:
        client.publish([alert])
        print("accepted")
    except ibsm_client.IbsmError as e:  # the whole call is refused
        print(e.code.name, e.message)
PY
PYTHONPATH=$(ibsm-py pythonpath) /usr/bin/python3 tampered.py "$IBSM_TARGET" "$IBSM_CA" >tampered.out
expect tampered.out "^PERMISSION_DENIED .*signature of alert 'py-tampered' does not verify"

echo "== nothing unsigned or refused was stored"
ibsm-py subscribe "${customs[@]}" --topic 'border.>' --durable py-ops --idle 2 \
  >after.out 2>/dev/null
[[ $(lines after.out) == 0 ]] || fail "unexpected deliveries: $(cat after.out)"

stop_node
echo "PASS: python_client_test"
