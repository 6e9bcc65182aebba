#!/usr/bin/env bash
# Checks the include direction inside broker/ and across the repository
# (docs/architecture.md, "Layers"): a broker component includes only itself
# and the components below it; nothing includes through "broker/" or "../".
# gRPC is included only by the components that serve it (services, node, and
# later federation and metrics), so only they can build a grpc::Status.
# Between the client layers and the broker the compiler enforces it already
# (each target exposes only its own include root; see the layering probes).
# Usage: check-includes.sh [ROOT]   (default: the repository). Exit 1 and one
# line per violation when an include points the wrong way.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}

# Lowest first. A component may include the ones before it.
order=(logging storage audit context publish delivery control federation
       services metrics node)
declare -A rank
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
declare -A may_use_grpc=([services]=1 [node]=1 [federation]=1 [metrics]=1)

violations=0
report() {
  echo "$1: $2" >&2
  violations=$((violations + 1))
}

while IFS= read -r file; do
  rel=${file#"$root"/}
  component=${rel#broker/}
  component=${component%%/*}
  own=${rank[$component]:-}
  if [[ -z $own ]]; then
    report "$rel" "is in no known component (add it to tests/layering/check-includes.sh)"
    continue
  fi
  while IFS= read -r line; do
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")
    first=${target%%/*}
    [[ $target == */* ]] || continue
    [[ -n ${rank[$first]:-} ]] || continue
    if (( ${rank[$first]} > own )); then
      report "$rel" "includes \"$target\": $component may not depend on $first (above it)"
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
  if [[ -z ${may_use_grpc[$component]:-} ]] &&
     grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](grpc|grpcpp)/|\.grpc\.pb\.h"' "$file"; then
    report "$rel" "includes gRPC: only services/ and node/ talk gRPC"
  fi
done < <(find "$root/broker" -type f \( -name '*.h' -o -name '*.cc' \) | sort)

while IFS= read -r hit; do
  report "${hit#"$root"/}" "includes through \"broker/\" or \"../\" instead of a layer's include root"
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(broker/|\.\./)' \
           "$root/broker" "$root/client-lib" 2>/dev/null || true)

if (( violations > 0 )); then
  echo "$violations include(s) against the layering" >&2
  exit 1
fi
echo "layering: ok"
