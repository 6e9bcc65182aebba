# Shared by the bench scripts (sourced, not run): messages, and the build
# folder with its ibsm-bench. The sourcing script sets PROG and BUILD_DIR.

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# Goes to the repository root, makes BUILD_DIR absolute and sets IBSM_BENCH,
# or stops with what to build.
enter_repo_and_find_bench() {
  local repo absolute
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cd "$repo"
  absolute=$(cd "$BUILD_DIR" 2>/dev/null && pwd) ||
    die "build dir '$BUILD_DIR' not found; run deploy/build.sh -DIBSM_BUILD_BENCH=ON first"
  BUILD_DIR=$absolute
  IBSM_BENCH=$BUILD_DIR/bin/ibsm-bench
  [[ -x $IBSM_BENCH ]] ||
    die "$IBSM_BENCH not found; build it: bash deploy/build.sh -DIBSM_BUILD_BENCH=ON"
}
