#!/usr/bin/env bash
# The main job: five IBSM Exchange nodes on loopback -- CIV, MLI and NER
# (states), INTERPOL (the hub) and UNODC -- with the IBSM sharing policy.
# Focal points and services publish sample alerts; the script shows who
# received what, what was refused and why, one alert's journey across the
# nodes and a verified audit checkpoint per node, then stops the nodes (or,
# with --keep-running, leaves them running for you to explore).
# Run as root on a fresh Debian 12 machine: bash deploy/demo.sh
# (deploy/demo.sh --help for the options; docs/federation.md explains it all).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/demo.sh [--stop | --keep-running] [--no-build] [--dir DIR]

Starts five IBSM Exchange nodes on loopback (CIV, MLI, NER, INTERPOL as the
hub, UNODC), publishes sample alerts and shows how the federation routes,
refuses and audits them.

  --stop           stop the nodes cleanly at the end (the default)
  --keep-running   leave the nodes running and print the commands to explore
                   them (publish, subscribe, links, journey, stop)
  --no-build       do not install packages or build; use the binaries in the
                   build folder ($IBSM_BUILD_DIR, default ./build)
  --dir DIR        the demo's folder: PKI, configs, data, logs (default
                   BUILD/demo; its previous contents are removed)
  --help           this text

Exit status: 0 when everything happened as the policy says, 1 on any
failure (the message says which step and where its log is), 130 on Ctrl-C.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
build=${IBSM_BUILD_DIR:-$root/build}
mode=stop
do_build=1
demo=""
while [ $# -gt 0 ]; do
  case $1 in
    --stop) mode=stop ;;
    --keep-running) mode=keep ;;
    --no-build) do_build=0 ;;
    --dir)
      [ $# -ge 2 ] || { echo "demo: --dir needs a folder" >&2; exit 2; }
      demo=$2; shift ;;
    --dir=*) demo=${1#--dir=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option '$1' (see deploy/demo.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
demo=${demo:-$build/demo}
bin=$build/bin
policy=$root/policies/ibsm-west-africa.textproto
nodes=(INTERPOL MLI CIV NER UNODC)   # start order: the dialled nodes first

# ---- output and failure ------------------------------------------------------

section() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     /'; }
fail() {
  printf '\ndemo: FAILED: %s\n' "$1" >&2
  [ $# -ge 2 ] && printf 'demo: see %s\n' "$2" >&2
  exit 1
}
mismatches=0
unexpected() { printf '   UNEXPECTED: %s\n' "$*"; mismatches=$((mismatches + 1)); }

# Every process this script starts, so that a failure or Ctrl-C stops them.
broker_pids=()
subscriber_pids=()
stop_subscribers() {
  local p
  # Each pid is the subshell that runs the ibsm_as function; the ibsm
  # process is its child, and would outlive a signal to the subshell alone.
  for p in "${subscriber_pids[@]}"; do
    pkill -TERM -P "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${subscriber_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  subscriber_pids=()
}
stop_nodes() {  # SIGTERM drains each node; wait for all of them
  local p
  for p in "${broker_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${broker_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  broker_pids=()
}
keep_nodes=0
cleanup() {
  stop_subscribers
  [ "$keep_nodes" = 1 ] || stop_nodes
}
trap cleanup EXIT
trap 'printf "\ndemo: interrupted; stopping the nodes\n" >&2; keep_nodes=0; exit 130' INT TERM

# ---- build --------------------------------------------------------------------

printf 'IBSM Exchange: a five-node federation on this machine\n'
if [ "$do_build" = 1 ]; then
  section "Installing packages and building (deploy/install-deps.sh, deploy/build.sh)"
  bash "$root/deploy/install-deps.sh"
  IBSM_BUILD_DIR=$build bash "$root/deploy/build.sh"
fi
for b in ibsm-broker ibsm; do
  [ -x "$bin/$b" ] || fail "$bin/$b is missing: build first (deploy/build.sh) or drop --no-build"
done
started=$(date +%s%N)

case $demo in /|"$root"|"$HOME") fail "--dir $demo: refusing to empty that folder" ;; esac
rm -rf "$demo"
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
pki=$demo/pki
say "files, logs and data: $demo"

# ---- PKI ----------------------------------------------------------------------

section "A development PKI: one root, one intermediate CA per node (certs/README.md)"
agencies=CIV/police,CIV/customs,CIV/focal-point,MLI/customs,MLI/focal-point
agencies+=,NER/police,NER/focal-point,INTERPOL/nccu,INTERPOL/focal-point
agencies+=,UNODC/aircop,UNODC/focal-point
bash "$root/certs/make-dev-pki.sh" "$pki" --quiet --nodes CIV,MLI,NER,INTERPOL,UNODC \
  --agencies "$agencies" --auditors UNODC/audit >"$demo/pki.log" 2>&1 ||
  fail "making the PKI" "$demo/pki.log"
say "nodes:    CIV MLI NER INTERPOL UNODC (node-<N>-chain.pem)"
say "agencies: ${agencies//,/ } (agency-<N>_<name>-chain.pem)"
say "auditor:  UNODC/audit, which the policy lets audit every node"

# ---- policy -------------------------------------------------------------------

section "The sharing policy: policies/ibsm-west-africa.textproto"
"$bin/ibsm" policy check "$policy" >"$demo/policy-check.log" 2>&1 ||
  fail "the policy does not validate" "$demo/policy-check.log"
say "$(head -n 1 "$demo/policy-check.log")"
# UNODC runs an older copy: the one before trafficking in persons was shared
# with UNODC. Both ends of a link apply their own policy; the stricter wins.
unodc_policy=$demo/UNODC-policy.textproto
awk '
  /name: "trafficking-persons"/ { in_rule = 1 }
  in_rule && /^}/ { in_rule = 0 }
  in_rule && /share \{ to: \[.*"UNODC"\]/ { sub(/, "UNODC"\]/, "]"); changed++ }
  { print }
  END { if (changed != 1) exit 1 }
' "$policy" >"$unodc_policy" ||
  fail "could not derive UNODC's older policy from $policy (rule trafficking-persons changed?)"
"$bin/ibsm" policy check "$unodc_policy" >"$demo/UNODC-policy-check.log" 2>&1 ||
  fail "UNODC's older policy does not validate" "$demo/UNODC-policy-check.log"
say "CIV, MLI, NER and INTERPOL run it as shipped. UNODC runs an older copy"
say "($unodc_policy) in which trafficking.persons is not yet shared with UNODC."

# ---- configs and nodes ----------------------------------------------------------

# peers_of NODE: "PEER:dial" (this node dials PEER) or "PEER:in" (PEER dials in)
peers_of() {
  case $1 in
    INTERPOL) echo "MLI:in CIV:in NER:in UNODC:in" ;;
    MLI) echo "INTERPOL:dial CIV:in" ;;
    CIV) echo "INTERPOL:dial MLI:dial" ;;
    NER | UNODC) echo "INTERPOL:dial" ;;
  esac
}
listens() { [ "$1" = INTERPOL ] || [ "$1" = MLI ]; }
link_count() { local p; p=$(peers_of "$1"); set -- $p; echo $#; }

write_config() {  # write_config NODE: $demo/NODE/config.textproto
  local n=$1 dir=$demo/$1 peer kind policy_file=$policy
  [ "$n" = UNODC ] && policy_file=$unodc_policy
  mkdir -p "$dir"
  # Encryption at rest: one node key per node, made once (docs/running-a-node.md).
  [ -f "$dir/node.key" ] || "$bin/ibsm-broker" keygen --out "$dir/node.key" >/dev/null
  {
    cat <<CONF
# Node configuration (proto/ibsm/internal/v1/config.proto, docs/running-a-node.md).
node_id: "$n"
listen_address: "127.0.0.1:0"
port_file: "$dir/client.port"
data_dir: "$dir/data"
durability: DURABILITY_SYNC
policy_file: "$policy_file"
tls {
  cert_file: "$pki/node-$n-chain.pem"
  key_file: "$pki/node-$n.key"
  ca_file: "$pki/ca.pem"
  crl_dir: "$pki/crl"
}
audit { checkpoint_every_seconds: 1 }
# Alert payloads and attributes sealed with AES-256-GCM (docs/security.md).
encryption { key_file: "$dir/node.key" }
# Links to other nodes (docs/federation.md).
federation {
CONF
    if listens "$n"; then
      printf '  listen_address: "127.0.0.1:0"\n  port_file: "%s/federation.port"\n' "$dir"
    fi
    printf '  heartbeat_seconds: 5\n  reconnect_initial_ms: 100\n  reconnect_max_seconds: 2\n'
    for peer in $(peers_of "$n"); do
      kind=${peer#*:}
      peer=${peer%:*}
      if [ "$kind" = dial ]; then
        printf '  peers { node_id: "%s" address: "127.0.0.1:%s" }\n' \
          "$peer" "$(cat "$demo/$peer/federation.port")"
      else
        printf '  peers { node_id: "%s" }  # dials in\n' "$peer"
      fi
    done
    printf '}\n'
  } >"$dir/config.textproto"
}

start_node() {  # start_node NODE: in the background, in its own session
  local n=$1 dir=$demo/$1
  setsid "$bin/ibsm-broker" --config "$dir/config.textproto" </dev/null >>"$dir/broker.log" 2>&1 &
  broker_pids+=($!)
  echo $! >"$dir/broker.pid"
}

wait_started() {  # wait_started NODE: its ports are bound, then pinned in its config
  local n=$1 dir=$demo/$1 f
  local files=("$dir/client.port")
  listens "$n" && files+=("$dir/federation.port")
  for _ in $(seq 150); do
    kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null || fail "node $n exited at start" "$dir/broker.log"
    local ready=1
    for f in "${files[@]}"; do [ -s "$f" ] || ready=0; done
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  for f in "${files[@]}"; do [ -s "$f" ] || fail "node $n did not start within 15 s" "$dir/broker.log"; done
  # The same ports after a restart (by hand, after --keep-running): peers
  # dial the address in their config.
  sed -i "0,/listen_address: \"127.0.0.1:0\"/s//listen_address: \"127.0.0.1:$(cat "$dir/client.port")\"/" \
    "$dir/config.textproto"
  if listens "$n"; then
    sed -i "s/^  listen_address: \"127.0.0.1:0\"/  listen_address: \"127.0.0.1:$(cat "$dir/federation.port")\"/" \
      "$dir/config.textproto"
  fi
}

# The CLI as an identity: ibsm_as NODE/agency ARGS... at the agency's own node;
# ibsm_audit NODE ARGS... as the auditor UNODC/audit at NODE.
cat >"$demo/env.sh" <<ENV
# source this file: then  ibsm_as CIV/police publish ...  or  ibsm_audit NER query ...
export IBSM_CA=$pki/ca.pem
IBSM_DEMO=$demo
ibsm_target() { echo "127.0.0.1:\$(cat "$demo/\$1/client.port")"; }
ibsm_as() {  # ibsm_as NODE/agency ARGS...: the agency at its own node
  local who=\$1 node=\${1%%/*}; shift
  "$bin/ibsm" --target "\$(ibsm_target "\$node")" --server-node "\$node" \\
    --cert "$pki/agency-\${who/\//_}-chain.pem" --key "$pki/agency-\${who/\//_}.key" "\$@"
}
ibsm_audit() {  # ibsm_audit NODE ARGS...: the auditor UNODC/audit at NODE
  local node=\$1; shift
  ibsm_auditor --target "\$(ibsm_target "\$node")" --server-node "\$node" "\$@"
}
ibsm_auditor() {  # ibsm_auditor ARGS...: as UNODC/audit, targets given in ARGS
  "$bin/ibsm" --cert "$pki/auditor-UNODC_audit-chain.pem" --key "$pki/auditor-UNODC_audit.key" "\$@"
}
ibsm_journey() {  # ibsm_journey ORIGINATOR/ID: that alert's path over the five nodes
  local args=() n
  for n in ${nodes[*]}; do
    args+=(--target "\$(ibsm_target "\$n")" --node-cert "$pki/node-\$n-chain.pem")
  done
  ibsm_auditor audit journey --alert "\$1" "\${args[@]}" --crl-dir "$pki/crl"
}
ibsm_stop() {  # ibsm_stop NODE...: SIGTERM, wait until it has stopped
  local n p
  for n in "\$@"; do
    p=\$(cat "$demo/\$n/broker.pid")
    kill -TERM "\$p" 2>/dev/null || continue
    while kill -0 "\$p" 2>/dev/null; do sleep 0.1; done
  done
}
ibsm_start() {  # ibsm_start NODE: start it again, same config and ports
  setsid "$bin/ibsm-broker" --config "$demo/\$1/config.textproto" \
    </dev/null >>"$demo/\$1/broker.log" 2>&1 &
  echo \$! >"$demo/\$1/broker.pid"
}
ibsm_stop_all() { ibsm_stop ${nodes[*]}; }
ENV
# shellcheck source=/dev/null
source "$demo/env.sh"

section "Starting five nodes (each: a client port for agencies, links to peers)"
for n in "${nodes[@]}"; do
  write_config "$n"
  start_node "$n"
  # Dialled nodes first: their federation ports go into the dialers' configs.
  listens "$n" && wait_started "$n"
done
for n in CIV NER UNODC; do wait_started "$n"; done
for n in "${nodes[@]}"; do
  line="$(printf '%-9s clients 127.0.0.1:%-6s' "$n" "$(cat "$demo/$n/client.port")")"
  if listens "$n"; then line+="$(printf ' federation 127.0.0.1:%-6s' "$(cat "$demo/$n/federation.port")")"
  else line+="                            "; fi
  links=""
  for peer in $(peers_of "$n"); do
    case ${peer#*:} in dial) links+=" dials ${peer%:*};" ;; in) links+=" ${peer%:*} dials in;" ;; esac
  done
  say "$line${links%;}"
done
say "INTERPOL is the hub: it relays between nodes that have no direct link."
say "CIV and MLI also have a direct link."

wait_links_up() {  # every link of every node UP, within 20 s
  local n out up deadline=$((SECONDS + 20))
  for n in "${nodes[@]}"; do
    while :; do
      out=$(ibsm_as "$n/focal-point" node links --json 2>&1 || true)
      up=$(grep -Eo '"state" *: *"(STATE_)?UP"' <<<"$out" | wc -l || true)
      [ "$up" -ge "$(link_count "$n")" ] && break
      [ $SECONDS -lt $deadline ] || {
        printf '%s\n' "$out" >"$demo/$n/links.json"
        fail "the links of $n are not all UP after 20 s ($up of $(link_count "$n"))" "$demo/$n/links.json and $demo/$n/broker.log"
      }
      sleep 0.2
    done
  done
}
t=$(date +%s%N)
wait_links_up
say "all 5 links are UP ($(( ($(date +%s%N) - t) / 1000000 )) ms): ibsm node links shows them, at the end"

# ---- subscribers ---------------------------------------------------------------

section "Agencies subscribe at their own nodes (durable, every topic they may receive)"
subscribers=(CIV/customs MLI/customs NER/police INTERPOL/nccu UNODC/aircop)
verify_flag=()
"$bin/ibsm" subscribe --help 2>&1 | grep -q -- '--verify' && verify_flag=(--verify --crl-dir "$pki/crl")
for who in "${subscribers[@]}"; do
  out=$demo/${who%%/*}/received-by-${who#*/}.txt
  ibsm_as "$who" subscribe --topic '>' --durable demo --from earliest "${verify_flag[@]}" \
    >"$out" 2>"$out.err" &
  subscriber_pids+=($!)
  say "$(printf '%-14s at %-9s -> %s' "$who" "${who%%/*}" "${out#"$demo"/}")"
done

# ---- publishing --------------------------------------------------------------

section "Publishing sample alerts (each signed by its originator's key)"
# publish WHO ID WHAT ARGS...: must be stored
publish() {
  local who=$1 id=$2 what=$3 out; shift 3
  say "$who: $what"
  if ! out=$(ibsm_as "$who" publish --id "$id" "$@" 2>&1); then
    printf '%s\n' "$out" | indent
    fail "publishing $id as $who was refused"
  fi
  printf '%s\n' "$out" | indent
}
publish CIV/police civ-2026-0101 \
  "CRITICAL suspect movement, CONFIDENTIAL, releasable to the AES states and INTERPOL" \
  --topic terrorism.suspect-movement --classification CONFIDENTIAL --severity CRITICAL \
  --releasable-to AES,INTERPOL --lat 9.67 --lon -3.39 --place "Doropo" --country CIV \
  --attr direction=north-east --expires-in 72h \
  --payload "Suspect of the Kafolo attack seen at Doropo at 05:40 UTC, on a motorbike towards the Burkina Faso border."
publish CIV/police civ-2026-0102 \
  "HIGH terrorism financing, SECRET (UNODC is cleared only to CONFIDENTIAL)" \
  --topic terrorism.financing --classification SECRET --severity HIGH \
  --payload "Cash courier with EUR 180,000 from a kidnapping ransom expected on the Abidjan-Bamako road."
publish CIV/police civ-2026-0103 \
  "HIGH suspect movement, ORCON, releasable to MLI and NER only" \
  --topic terrorism.suspect-movement --classification CONFIDENTIAL --severity HIGH \
  --orcon --releasable-to MLI,NER \
  --payload "Source report (originator control): logistics cell using the Pogo-Zegoua crossing at night."
publish CIV/customs civ-2026-0104 \
  "MEDIUM drug seizure, CONFIDENTIAL, TLP:AMBER (shared with UNODC)" \
  --topic trafficking.drugs --classification CONFIDENTIAL --severity MEDIUM --tlp AMBER \
  --content-type application/json \
  --payload '{"seizure_kg": 412, "substance": "cannabis resin", "port": "Abidjan", "destination": "Mali"}'
publish CIV/police civ-2026-0105 \
  "HIGH trafficking in persons, CONFIDENTIAL (UNODC's older policy does not take it)" \
  --topic trafficking.persons --classification CONFIDENTIAL --severity HIGH \
  --payload "Network moving minors from Mali to gold mining sites near Bouna; two drivers identified."
publish MLI/focal-point mli-2026-0201 \
  "from Mali: MEDIUM border closure, RESTRICTED" \
  --topic border.closure --classification RESTRICTED --severity MEDIUM \
  --lat 10.47 --lon -5.64 --place "Zegoua crossing" --country MLI \
  --payload "Zegoua crossing closed 18:00-06:00 until further notice."
publish CIV/police civ-2026-0106 \
  "a RETRACTION of civ-2026-0101: it follows the original's route" \
  --retracts CIV/police/civ-2026-0101 \
  --topic terrorism.suspect-movement --classification CONFIDENTIAL --severity CRITICAL \
  --releasable-to AES,INTERPOL \
  --payload "Retracted: the person seen at Doropo is not the suspect."

section "Publishes the nodes refuse (audited, never stored)"
# refused WHO ID WHAT ARGS...: must be refused
refused() {
  local who=$1 id=$2 what=$3 out; shift 3
  say "$who: $what"
  if out=$(ibsm_as "$who" publish --id "$id" "$@" 2>&1); then
    printf '%s\n' "$out" | indent
    unexpected "$id was accepted"
  else
    printf '%s\n' "$out" | indent
  fi
}
refused CIV/police civ-2026-0190 "an unsigned alert at a federated node" --unsigned \
  --topic border.incident --classification RESTRICTED --severity LOW --payload "unsigned"
refused CIV/customs civ-2026-0191 "trafficking in persons, which customs may not publish" \
  --topic trafficking.persons --classification CONFIDENTIAL --severity HIGH --payload "not ours"
refused MLI/customs mli-2026-0290 "a retraction of CIV's alert by another agency" \
  --retracts CIV/police/civ-2026-0101 \
  --topic terrorism.suspect-movement --classification CONFIDENTIAL --severity CRITICAL \
  --releasable-to AES,INTERPOL --payload "not mine to retract"

# ---- who received what ----------------------------------------------------------

# The expected outcome, from the policy: the subscribers that must get each alert.
alert_ids=(civ-2026-0101 civ-2026-0102 civ-2026-0103 civ-2026-0104 civ-2026-0105 mli-2026-0201 civ-2026-0106)
declare -A expected=(
  [civ-2026-0101]="CIV/customs MLI/customs NER/police INTERPOL/nccu"
  [civ-2026-0102]="NER/police INTERPOL/nccu"
  [civ-2026-0103]="CIV/customs MLI/customs"
  [civ-2026-0104]="CIV/customs MLI/customs NER/police INTERPOL/nccu UNODC/aircop"
  [civ-2026-0105]="NER/police INTERPOL/nccu"
  [mli-2026-0201]="CIV/customs MLI/customs NER/police INTERPOL/nccu"
  [civ-2026-0106]="CIV/customs MLI/customs NER/police INTERPOL/nccu"
)
received_file() { echo "$demo/${1%%/*}/received-by-${1#*/}.txt"; }
has_received() { grep -Eq "^#[0-9]+ [^ ]+ $2( |$)" "$(received_file "$1")" 2>/dev/null; }
all_expected_arrived() {
  local id who
  for id in "${alert_ids[@]}"; do
    for who in ${expected[$id]}; do has_received "$who" "$id" || return 1; done
  done
}
drained() {  # no outbox entry waiting at any node
  local n
  for n in "${nodes[@]}"; do
    ibsm_as "$n/focal-point" node links --json 2>/dev/null |
      grep -Eq '"(backlog_critical|backlog_high|backlog_other|in_flight)" *: *"?[1-9]' && return 1
  done
  return 0
}
deadline=$((SECONDS + 30))
until all_expected_arrived && drained; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.3
done
stop_subscribers

section "Who received what (from the subscribers' files)"
row() { printf '   %-14s %-13s %-13s %-13s %-13s %-13s\n' "$@"; }
row "alert" "${subscribers[@]}"
for id in "${alert_ids[@]}"; do
  cells=()
  for who in "${subscribers[@]}"; do
    want=no
    case " ${expected[$id]} " in *" $who "*) want=yes ;; esac
    got=no
    has_received "$who" "$id" && got=yes
    if [ "$got" = "$want" ]; then
      cells+=("$([ $got = yes ] && echo received || echo -)")
    else
      cells+=("UNEXPECTED:$got")
      mismatches=$((mismatches + 1))
    fi
  done
  row "$id" "${cells[@]}"
done
cat <<'WHY'

   Why (docs/policy.md, docs/federation.md):
   0101  CIV sends it to MLI directly and to INTERPOL, which relays it to NER
         (both AES); MLI gets it twice and stores it once. UNODC: terrorism is
         not shared with UNODC.
   0102  SECRET: CIV/customs and MLI/customs are cleared to CONFIDENTIAL (MLI's
         node holds it; its customs may not read it); UNODC's node is never sent
         it: terrorism financing is shared with UNODC only up to CONFIDENTIAL.
   0103  ORCON: only the nodes named by id, and never relayed: MLI over the
         direct link; NER is named but has no direct link to CIV.
   0104  drugs are shared with every node here, UNODC through the hub.
   0105  INTERPOL relays it to UNODC, whose own (older) policy refuses it: the
         stricter policy wins. Customs do not receive trafficking in persons.
   0201  from MLI: CIV directly, NER and INTERPOL through the hub; UNODC gets
         border closures only when UNCLASSIFIED.
   0106  the retraction takes exactly the route of 0101.
WHY
if [ ${#verify_flag[@]} -gt 0 ]; then
  total=$(cat "$demo"/*/received-by-*.txt | grep -c '^#[0-9]' || true)
  verified=$(cat "$demo"/*/received-by-*.txt | grep -c '^  signature: verified' || true)
  say "The subscribers checked every originator signature themselves (ibsm subscribe"
  say "--verify): $verified of $total received alerts verified."
  [ "$verified" = "$total" ] || unexpected "$((total - verified)) received alerts did not verify"
fi
say ""
say "What NER/police saw of the retraction (NER/received-by-police.txt):"
awk '/^#[0-9]+ [^ ]+ civ-2026-0106 /{p=1} p&&/^#/&&!/civ-2026-0106/{p=0} p' \
  "$(received_file NER/police)" | indent
for who in "${subscribers[@]}"; do
  if [ -s "$(received_file "$who").err" ]; then
    grep -v '^$' "$(received_file "$who").err" | head -n 3 | sed "s|^|   $who: |"
  fi
done

# ---- refusals in the audit trails ------------------------------------------------

section "What the nodes refused, from their audit trails (ibsm audit query --decision denied)"
json_field() {  # json_field NAME < one JSON object: its first string value NAME
  { grep -Eo "\"$1\" *: *\"([^\"\\\\]|\\\\.)*\"" || true; } | head -n 1 |
    sed -E "s/^\"$1\" *: *\"//; s/\"\$//; s/\\\\\"/\"/g"
}
for n in "${nodes[@]}"; do
  ibsm_audit "$n" audit query --decision denied --json >"$demo/$n/denied.jsonl" 2>"$demo/$n/denied.err" ||
    fail "the audit query at $n failed" "$demo/$n/denied.err"
  count=$(grep -c . "$demo/$n/denied.jsonl" || true)
  say "$n: $count refused"
  while IFS= read -r rec; do
    action=$(json_field action <<<"$rec"); action=${action#AUDIT_}
    actor=$(json_field actor <<<"$rec")
    alert=$(json_field alert_id <<<"$rec")
    recipient=$(json_field recipient <<<"$rec")
    reason=$(json_field reason <<<"$rec")
    line="$(printf '%-18s %-16s' "${action,,}" "${alert:--}")"
    [ -n "$actor" ] && line+=" by $actor"
    [ -n "$recipient" ] && line+=" to $recipient"
    say "  $line"
    say "      ${reason:0:200}"
  done <"$demo/$n/denied.jsonl"
done
grep -q 'FEDERATION_SEND' "$demo/INTERPOL/denied.jsonl" ||
  unexpected "INTERPOL has no refused federation send (civ-2026-0105 to UNODC)"
grep -q 'FEDERATION_RECEIVE' "$demo/UNODC/denied.jsonl" ||
  unexpected "UNODC has no refused federation receive (civ-2026-0105)"

# ---- one alert's journey ----------------------------------------------------------

section "The journey of civ-2026-0101 across the five nodes (ibsm audit journey)"
sleep 1.2  # checkpoints are signed every second: let them cover the last records
ibsm_journey CIV/police/civ-2026-0101 >"$demo/journey.txt" 2>&1 ||
  { indent <"$demo/journey.txt"; fail "ibsm audit journey failed" "$demo/journey.txt"; }
indent <"$demo/journey.txt"

# ---- checkpoints ---------------------------------------------------------------------

section "A verified audit checkpoint per node"
for n in "${nodes[@]}"; do
  ibsm_audit "$n" audit checkpoint --node-cert "$pki/node-$n-chain.pem" --crl-dir "$pki/crl" \
    -o "$demo/$n/checkpoint.note" >"$demo/$n/checkpoint.txt" 2>&1 ||
    { indent <"$demo/$n/checkpoint.txt"; fail "the checkpoint of $n does not verify" "$demo/$n/checkpoint.txt"; }
  verdict=$(grep -m1 '^VERIFIED' "$demo/$n/checkpoint.txt" || true)
  [ -n "$verdict" ] || fail "no VERIFIED line for $n" "$demo/$n/checkpoint.txt"
  say "$n: ${verdict%%;*}"
done
say "Each signature is checked with the node's certificate, trusted through the"
say "IBSM root with every CRL (whole lines and notes: <NODE>/checkpoint.txt, .note)."

# ---- the hub's links ----------------------------------------------------------

section "The hub's links (ibsm node links, as INTERPOL/focal-point)"
ibsm_as INTERPOL/focal-point node links >"$demo/INTERPOL/links.txt" 2>&1 ||
  fail "ibsm node links at INTERPOL failed" "$demo/INTERPOL/links.txt"
indent <"$demo/INTERPOL/links.txt"

# ---- the end --------------------------------------------------------------------

if [ "$mismatches" -gt 0 ]; then
  fail "$mismatches outcome(s) differ from what the policy says (UNEXPECTED above)" "$demo/*/broker.log"
fi
section "Everything happened as the policy says"
if [ "$mode" = keep ]; then
  keep_nodes=1
  cat <<EXPLORE
   The five nodes keep running. Explore them (helpers: $demo/env.sh):

     source $demo/env.sh
     ibsm_as CIV/police publish --id civ-2026-0999 --topic border.incident \\
         --classification RESTRICTED --severity HIGH --payload "Armed group near Tengrela"
     ibsm_as NER/police subscribe --topic '>' --durable demo
     ibsm_as INTERPOL/focal-point node links
     ibsm_journey CIV/police/civ-2026-0999
     ibsm_audit NER audit query --alert-id civ-2026-0999

   Store and forward: stop NER, publish at CIV as above (with a new --id),
   see the alert wait at the hub (ibsm_as INTERPOL/focal-point node links:
   NER down, backlog 0/1/0), start NER again and watch the backlog drain:

     ibsm_stop NER
     ibsm_start NER

   Logs: $demo/<NODE>/broker.log. Stop all five nodes: ibsm_stop_all
EXPLORE
  trap - EXIT
else
  section "Stopping the nodes (SIGTERM: each drains and signs a last checkpoint)"
  stop_nodes
  say "stopped; files in $demo"
fi
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
printf '\nThe demo took %d.%d s (without the build).\n' $((elapsed / 1000)) $((elapsed % 1000 / 100))
