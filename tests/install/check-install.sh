#!/usr/bin/env bash
# The installed client package (docs/client-library.md): installs the build
# tree into a temporary prefix, checks that only the public layers are in it
# (no node-internal schema, no policy engine, no broker header, no unprefixed
# macro), and builds the example program against it out of tree with
# find_package(ibsm). Usage: check-install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null

fail() {
  echo "install: $*" >&2
  exit 1
}
[[ -f $prefix/include/ibsm/client.h ]] || fail "ibsm/client.h is not installed"
[[ -f $prefix/include/ibsm/merkle.h ]] || fail "the shared layer (ibsm/merkle.h) is not installed"
[[ -f $prefix/include/ibsm/v1/broker.grpc.pb.h ]] || fail "the public gRPC API is not installed"
if found=$(find "$prefix" -path '*internal*' -o -name 'policy.h' -o -name 'authorizer.h' \
             -o -name '*node_proto*' -o -name 'server_credentials.h' | grep .); then
  fail "node-internal files are installed: $found"
fi
if macros=$(grep -rhoE '^#define [A-Za-z_]+\(' "$prefix/include" | grep -v '^#define IBSM_'); then
  fail "installed headers define unprefixed macros: $macros"
fi

mkdir -p "$work/app"
cp "$source/client-lib/examples/publish_and_subscribe.cc" "$work/app/main.cc"
cat >"$work/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(app CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(ibsm CONFIG REQUIRED)
add_executable(app main.cc)
target_link_libraries(app PRIVATE ibsm::client)
CMAKE
# A sanitized build tree (IBSM_SANITIZE, IBSM_BUILD_FUZZ) installs
# instrumented libraries: the application links them with the same compiler
# and sanitizer runtimes, as any application of such a build would.
cached() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
app_flags=(-DCMAKE_CXX_COMPILER="$(cached CMAKE_CXX_COMPILER)")
sanitize=$(cached IBSM_SANITIZE)
[[ -z $sanitize && $(cached IBSM_BUILD_FUZZ) == ON ]] && sanitize=address,undefined
[[ -n $sanitize ]] && app_flags+=(-DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$sanitize")
[[ $(cached IBSM_BUILD_FUZZ) == ON ]] && app_flags+=(-DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link")
cmake -G Ninja -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$prefix" \
  "${app_flags[@]}" >/dev/null
ninja -C "$work/app/build" >/dev/null
[[ -x $work/app/build/app ]] || fail "the example did not link against the installed package"
echo "install: ok"
