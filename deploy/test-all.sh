#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test (ctest).
# Run as root on a fresh Debian 12 machine: bash deploy/test-all.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh" -DIBSM_BUILD_TESTS=ON -DIBSM_BUILD_BENCH=ON
build=${IBSM_BUILD_DIR:-$root/build}
# The lock annotations, checked: clang with -Wthread-safety, every warning an
# error. Libraries and binaries only, unoptimized and without debug info (it
# is a check, not a build anyone runs); the tests run from the gcc build.
IBSM_BUILD_DIR=$build-clang bash "$root/deploy/build.sh" \
  -DCMAKE_CXX_COMPILER=clang++ -DIBSM_WERROR=ON \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 \
  -DIBSM_BUILD_TESTS=OFF -DIBSM_BUILD_BENCH=OFF
cd "$build"
ctest --output-on-failure --timeout 600 -j 2
