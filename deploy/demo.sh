#!/usr/bin/env bash
# The main job: installs what is needed, builds, makes a development PKI,
# starts one IBSM Exchange node (CIV) and shows a focal point publishing
# alerts and a subscribing agency receiving them. Run as root on a fresh
# Debian 12 machine: bash deploy/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IBSM_BUILD_DIR:-$root/build}

bash "$root/deploy/install-deps.sh"
IBSM_BUILD_DIR=$build bash "$root/deploy/build.sh"

demo=$build/demo
rm -rf "$demo"
mkdir -p "$demo"
pki=$demo/pki
bash "$root/certs/make-dev-pki.sh" "$pki" --quiet
bin=$build/bin

cat > "$demo/civ.textproto" <<CONF
# Node configuration (proto/ibsm/internal/v1/config.proto).
node_id: "CIV"
listen_address: "127.0.0.1:0"
data_dir: "$demo/civ-data"
port_file: "$demo/civ.port"
durability: DURABILITY_SYNC
policy_file: "$root/policies/ibsm-west-africa.textproto"
tls {
  cert_file: "$pki/node-CIV-chain.pem"
  key_file: "$pki/node-CIV.key"
  ca_file: "$pki/ca.pem"
  crl_dir: "$pki/crl"
}
CONF

echo "== starting node CIV"
"$bin/ibsm-broker" --config "$demo/civ.textproto" 2>"$demo/civ.log" &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$demo/civ.port" ] && break; sleep 0.1; done
[ -s "$demo/civ.port" ] || { cat "$demo/civ.log"; echo "node did not start" >&2; exit 1; }
export IBSM_TARGET=127.0.0.1:$(cat "$demo/civ.port") IBSM_CA=$pki/ca.pem

as() {  # as AGENCY ibsm-args...: run the CLI with that agency's certificate
  local agency=${1/\//_}; shift
  IBSM_CERT=$pki/agency-$agency-chain.pem IBSM_KEY=$pki/agency-$agency.key "$bin/ibsm" "$@"
}

echo "== the sharing policy"
"$bin/ibsm" policy check "$root/policies/ibsm-west-africa.textproto"

echo "== CIV/customs subscribes (durable 'customs-desk') to every topic ('>')"
as CIV/customs subscribe --topic '>' \
  --durable customs-desk --from earliest --count 3 >"$demo/customs.out" 2>&1 &
subscriber=$!

echo "== CIV/police publishes"
as CIV/police publish --id civ-2026-0001 --topic border.incident \
  --classification RESTRICTED --severity HIGH --releasable-to MLI,BFA \
  --lat 10.38 --lon -5.62 --place "Pogo border post" --country CIV \
  --attr vehicles=2 --attr direction=north --expires-in 72h \
  --payload "Two pickups with armed men crossed towards Mali at 04:10 UTC."
as CIV/police publish --id civ-2026-0002 --topic trafficking.drugs \
  --classification CONFIDENTIAL --severity MEDIUM --tlp AMBER \
  --content-type application/json \
  --payload '{"seizure_kg": 412, "substance": "cannabis resin", "port": "Abidjan"}'
as CIV/police publish --id civ-2026-0003 --topic terrorism.suspect-movement \
  --classification SECRET --severity CRITICAL --orcon --releasable-to INTERPOL \
  --payload "Suspect of the Kafolo attack sighted near Doropo."
echo "== the same alert again (a true retry): stored once, the original sequence"
as CIV/police publish --id civ-2026-0002 --topic trafficking.drugs \
  --classification CONFIDENTIAL --severity MEDIUM --tlp AMBER \
  --content-type application/json \
  --payload '{"seizure_kg": 412, "substance": "cannabis resin", "port": "Abidjan"}'
echo "== another payload under a stored id: refused (ALREADY_EXISTS), audited"
if as CIV/police publish --id civ-2026-0001 --topic border.incident \
  --classification RESTRICTED --severity HIGH --payload "retry"; then
  echo "demo: a changed alert under a stored id was accepted" >&2
  exit 1
fi
as CIV/customs publish --id civ-cus-0001 --topic border.closure \
  --classification UNCLASSIFIED --severity LOW \
  --payload "Noe crossing closed 18:00-06:00 until further notice."

wait $subscriber
echo "== what CIV/customs received: not the SECRET terrorism alert, which the policy withholds"
cat "$demo/customs.out"
"$bin/ibsm" policy explain "$root/policies/ibsm-west-africa.textproto" \
  --topic terrorism.suspect-movement --classification SECRET --orcon \
  --releasable-to INTERPOL --originator CIV/police --recipient CIV/customs
echo "== node info"
as CIV/customs node info
echo "== stopping the node (SIGTERM drains)"
kill -TERM $broker
wait $broker || true
trap - EXIT
tail -n 3 "$demo/civ.log"
echo "demo finished; files in $demo"
