#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test: the gcc
# build and its ctest suite, then the clang builds of
# deploy/test-sanitizers.sh (the lock-annotation check, ASan + UBSan over
# the whole suite, the fuzz smoke runs, ThreadSanitizer over the
# concurrency tests; docs/security.md).
# Run as root on a fresh Debian 12 machine: bash deploy/test-all.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh" -DIBSM_BUILD_TESTS=ON -DIBSM_BUILD_BENCH=ON
build=${IBSM_BUILD_DIR:-$root/build}
(cd "$build" && ctest --output-on-failure --timeout 600 -j 2)
IBSM_BUILD_DIR=$build bash "$root/deploy/test-sanitizers.sh"
