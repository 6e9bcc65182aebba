#!/usr/bin/env bash
# Test of check-includes.sh: it passes on the repository and fails, naming the
# file, on a tree where storage includes a service.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/check-includes.sh"

fixture=$(mktemp -d)
trap 'rm -rf "$fixture"' EXIT
mkdir -p "$fixture/broker/storage" "$fixture/broker/services" "$fixture/client-lib"
printf '#include "services/services.h"\n' >"$fixture/broker/storage/bad.h"
printf '#include "storage/bad.h"\n#include <grpcpp/grpcpp.h>\n' >"$fixture/broker/services/good.h"
mkdir -p "$fixture/broker/publish"
printf '#include <grpcpp/support/status.h>\n' >"$fixture/broker/publish/grpc.cc"
if out=$(bash "$here/check-includes.sh" "$fixture" 2>&1); then
  echo "check-includes.sh accepted storage -> services" >&2
  exit 1
fi
grep -q 'broker/storage/bad.h: includes "services/services.h"' <<<"$out" || {
  echo "unexpected report: $out" >&2
  exit 1
}
grep -q 'broker/publish/grpc.cc: includes gRPC' <<<"$out" || {
  echo "check-includes.sh accepted gRPC in publish/: $out" >&2
  exit 1
}
if grep -q 'services/good.h' <<<"$out"; then
  echo "check-includes.sh refused services -> storage: $out" >&2
  exit 1
fi
echo "check-includes.sh: ok"
