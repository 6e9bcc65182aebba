#!/usr/bin/env bash
# ctest demo_test: runs the README's first command, deploy/demo.sh, in its
# stop mode against the build tree (no install, no build) in a temporary
# folder, and checks its exit status and the lines a newcomer relies on. The
# demo binds only port 0 (port files), so it cannot collide with other tests.
# Usage: demo_test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d /tmp/ibsm-demo-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/demo.out

fail() {
  echo "--- demo output ---"
  cat "$out"
  echo "demo_test: $*" >&2
  exit 1
}

# Usage errors: exit 2 with a message, before anything starts.
if bash "$src/deploy/demo.sh" --bogus >"$out" 2>&1; then fail "--bogus was accepted"; fi
grep -q "unknown option '--bogus'" "$out" || fail "no message for an unknown option"
bash "$src/deploy/demo.sh" --help >"$out" 2>&1 || fail "--help failed"
grep -q -- "--keep-running" "$out" || fail "--help does not describe --keep-running"

status=0
IBSM_BUILD_DIR=$build bash "$src/deploy/demo.sh" --no-build --stop --dir "$tmp/demo" \
  >"$out" 2>&1 || status=$?
[ "$status" = 0 ] || fail "deploy/demo.sh --no-build --stop exited $status"

expect() { grep -Eq -- "$1" "$out" || fail "missing from the output: $1"; }
expect 'all 5 links are UP'
expect '^   civ-2026-0104 +received +received +received +received +received'
expect 'FAILED_PRECONDITION'              # the unsigned publish
expect 'Everything happened as the policy says'
for n in CIV MLI NER INTERPOL UNODC; do
  expect "^   $n: VERIFIED: checkpoint of [0-9]+ records of ibsm/$n"
  grep -q 'stopped cleanly' "$tmp/demo/$n/broker.log" || fail "node $n did not stop cleanly"
done
expect 'The demo took [0-9]+\.[0-9] s'
if grep -q 'UNEXPECTED' "$out"; then fail "an outcome differs from the policy"; fi
echo "demo_test: OK"
