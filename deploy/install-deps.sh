#!/usr/bin/env bash
# Installs everything IBSM Exchange needs to build, test and run, from Debian 12
# packages only. Idempotent: safe to run again. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev openssl librocksdb-dev catch2
  libjemalloc-dev  # the broker's allocator (docs/performance.md)
  libcpp-httplib-dev  # the metrics listener's HTTP(S) server (broker/metrics/, built on OpenSSL)
  clang  # the clang builds of deploy/test-sanitizers.sh (lock annotations, sanitizers, fuzzing)
  libclang-rt-14-dev  # clang's sanitizer and libFuzzer runtimes (only recommended by clang)
  llvm  # /usr/bin/llvm-symbolizer: sanitizer reports with file:line
  # The Python client example (client-lib/python/) and its ctests, for
  # Debian's /usr/bin/python3; its stubs come from protobuf-compiler-grpc's
  # grpc_python_plugin.
  python3-grpcio python3-protobuf python3-cryptography
  # The packaging checks (deploy/validate-packaging.sh, tests/install/), which
  # otherwise print SKIP: the Kubernetes manifests' schema, systemd-analyze
  # verify of the unit, the man pages rendered; curl for the operator guide's
  # metrics and health commands.
  python3-yaml systemd groff curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
