#!/usr/bin/env bash
# Configures and builds IBSM Exchange into ./build (Ninja, ccache when
# present). Usage: deploy/build.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IBSM_BUILD_DIR:-$root/build}
export CCACHE_BASEDIR=$root
# Builds of the same sources in another folder (a CI clone, a git worktree)
# share the cache: -g would otherwise put the build folder into every hash.
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# Two jobs: the machines this runs on have two cores and gRPC headers are big.
ninja -C "$build" -j "${IBSM_JOBS:-2}"
