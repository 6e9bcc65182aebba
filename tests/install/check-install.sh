#!/usr/bin/env bash
# The installed tree (docs/operations.md, "Install"; docs/client-library.md):
# installs the build tree into a temporary prefix, checks the layout (the
# binaries, which answer --help, the example config, policies, systemd
# unit, man pages, docs), that only the public layers of the client library
# are in it (no node-internal schema, no policy engine, no broker header, no
# unprefixed macro), and builds the example program against it out of tree
# with find_package(ibsm) and with pkg-config.
# Usage: check-install.sh BUILD_DIR SOURCE_DIR
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
for f in bin/ibsm-broker bin/ibsm; do
  [[ -x $prefix/$f ]] || fail "$f is not installed"
done
"$prefix/bin/ibsm-broker" --help 2>&1 | grep -q "ibsm-broker backup --config FILE --to DIR" ||
  fail "ibsm-broker --help does not describe backup"
"$prefix/bin/ibsm" --help >/dev/null 2>&1 || fail "ibsm --help fails"
for f in share/ibsm/examples/node.textproto share/ibsm/policies/ibsm-west-africa.textproto \
    share/ibsm/deploy/Containerfile share/ibsm/deploy/ibsm-node.yaml \
    lib/systemd/system/ibsm-broker.service share/man/man8/ibsm-broker.8 share/man/man1/ibsm.1 \
    share/doc/ibsm/operations.md share/ibsm/examples/publish_and_subscribe.cc; do
  [[ -f $prefix/$f ]] || fail "$f is not installed"
done
if command -v groff >/dev/null; then
  for page in share/man/man1/ibsm.1 share/man/man8/ibsm-broker.8; do
    warnings=$(groff -man -Tutf8 -ww -z "$prefix/$page" 2>&1) || fail "$page does not render: $warnings"
    [[ -z $warnings ]] || fail "$page: $warnings"
  done
fi
pcfile=$(find "$prefix" -name ibsm.pc)
[[ -n $pcfile ]] || fail "ibsm.pc is not installed"
cmake_config=$(find "$prefix" -name ibsmConfig.cmake)
[[ -n $cmake_config ]] || fail "ibsmConfig.cmake is not installed"
# The example config is a config the broker accepts (its files aside):
# ibsm-broker names the first missing file, not a parse error.
if out=$("$prefix/bin/ibsm-broker" --config "$prefix/share/ibsm/examples/node.textproto" 2>&1); then
  fail "the example config started a broker"
fi
[[ $out != *"bad config"* ]] || fail "the example config does not parse: $out"
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

# The same program built without CMake, with pkg-config (the .pc file finds
# its prefix from where it is, so the moved tree works).
pkg_flags=$(PKG_CONFIG_PATH=$(dirname "$pcfile") pkg-config --cflags --libs ibsm) ||
  fail "pkg-config --cflags --libs ibsm fails"
cxx=$(cached CMAKE_CXX_COMPILER)
extra=()
[[ -n $sanitize ]] && extra+=("-fsanitize=$sanitize")
[[ $(cached IBSM_BUILD_FUZZ) == ON ]] && extra+=("-fsanitize=fuzzer-no-link")
# shellcheck disable=SC2086
"$cxx" -std=c++20 "${extra[@]}" -o "$work/app/app-pc" "$work/app/main.cc" $pkg_flags ||
  fail "the example does not build with pkg-config: $pkg_flags"
[[ -x $work/app/app-pc ]] || fail "the pkg-config build made no program"
echo "install: ok"
