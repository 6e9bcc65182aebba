#!/usr/bin/env bash
# make-dev-pki.sh - build a throw-away DEVELOPMENT PKI for IBSM Exchange.
# Uses only the openssl CLI (OpenSSL 3.0, Debian 12). See certs/README.md.
# NOT FOR PRODUCTION: every private key is unencrypted and all CAs live on
# the same disk.
set -euo pipefail

readonly PROG=make-dev-pki
readonly MARKER=.ibsm-dev-pki
OPENSSL=${OPENSSL:-openssl}

ROOT_DAYS=3650 # root CA: 10 years
INT_DAYS=1825  # per-node intermediate CAs: 5 years
LEAF_DAYS=365  # node / agency / auditor certificates: 1 year
CRL_DAYS=30    # CRL nextUpdate

usage() {
  cat <<'EOF'
Usage: certs/make-dev-pki.sh OUTDIR [--nodes CIV,MLI,...] [--agencies CIV/police,...]
                             [--auditors UNODC/audit,...] [--force] [-q|--quiet]

Creates a development PKI for IBSM Exchange in OUTDIR (EC P-256 keys, SHA-256):
  ca.pem/.key                  root CA (self-signed, 10 years)
  <N>-ca.pem/.key              intermediate CA per node N (pathlen:0, 5 years)
  node-<N>.pem/.key/-chain.pem node cert, spiffe://ibsm/<N>, serverAuth+clientAuth,
                               DNS:localhost, DNS:node-<n>, IP:127.0.0.1, IP:::1
  agency-<N>_<x>.pem/.key/-chain.pem   client cert, spiffe://ibsm/<N>/<x>
  auditor-<N>_<x>.pem/.key/-chain.pem  client cert, spiffe://ibsm/<N>/<x>
  revoked.*  expired.*  foreign.* foreign-ca.*   negative-test material
  sibling-*.*  revoked-ca.*  under-revoked-ca.*  (see below)
  crl/                         CRLs of the root and every intermediate, in OpenSSL
                               hashed-directory form (<hash>.r0) plus <name>.crl.pem
Leaf certificates are valid 1 year, CRLs 30 days. *-chain.pem = leaf + intermediate.

Options (lists are comma- or space-separated):
  --nodes LIST     nodes            (default: CIV,MLI,INTERPOL)
  --agencies LIST  agencies N/x     (default: CIV/police,CIV/customs,CIV/gendarmerie,
                                               MLI/customs,INTERPOL/nccu)
                   every agency's node must be in --nodes (default agencies
                   of nodes not in --nodes are left out)
  --auditors LIST  auditors N/x     (default: UNODC/audit); issued by node N's
                   intermediate, which is created if N is not in --nodes
                   (no node cert is made for it)
  --force          overwrite OUTDIR even if it was not made by this script
  -q, --quiet      no summary
  -h, --help       this text

Test certificates use node CIV, or the first node if CIV is not in --nodes:
  revoked.*  agency CIV/revoked, issued by CIV's intermediate, listed in its CRL
  expired.*  agency CIV/expired, issued by CIV's intermediate, valid 2020-01-01..02
  foreign.*  claims CIV/police but is issued by foreign-ca.pem (a different root)
  sibling-CIV_police.*   claims CIV/police, issued by the next node's (MLI's)
                         intermediate: chains to the root, wrong issuer
  sibling-UNODC_audit.*  claims the first auditor's id, issued by that same
                         sibling intermediate (only when such nodes exist)
  revoked-ca.*           a second CIV intermediate, revoked in the root's CRL
  under-revoked-ca.*     CIV/police issued by revoked-ca.pem
Every intermediate carries the URI SAN spiffe://ibsm/<N> of the node it serves.

OUTDIR handling: the PKI is built and self-checked in a temporary directory
first, so a failed run leaves OUTDIR untouched. If OUTDIR exists and is
non-empty it is OVERWRITTEN (all of its contents are deleted) when it holds a
PKI made by this script (marker file .ibsm-dev-pki); any other non-empty
directory is refused unless --force is given.

Exit status is non-zero if generation or the final self-check fails.
Set OPENSSL=/path/to/openssl to use another binary.
EOF
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- arguments
OUTDIR=""
NODES_ARG="CIV,MLI,INTERPOL"
AGENCIES_ARG="CIV/police,CIV/customs,CIV/gendarmerie,MLI/customs,INTERPOL/nccu"
AUDITORS_ARG="UNODC/audit"
AGENCIES_GIVEN=0
FORCE=0
QUIET=0

need_arg() { [[ $# -ge 2 ]] || die "option $1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --nodes) need_arg "$@"; NODES_ARG=$2; shift 2 ;;
    --nodes=*) NODES_ARG=${1#*=}; shift ;;
    --agencies) need_arg "$@"; AGENCIES_ARG=$2; AGENCIES_GIVEN=1; shift 2 ;;
    --agencies=*) AGENCIES_ARG=${1#*=}; AGENCIES_GIVEN=1; shift ;;
    --auditors) need_arg "$@"; AUDITORS_ARG=$2; shift 2 ;;
    --auditors=*) AUDITORS_ARG=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    -q|--quiet) QUIET=1; shift ;;
    --) shift; [[ $# -eq 1 && -z $OUTDIR ]] || die "expected exactly one OUTDIR"; OUTDIR=$1; shift ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) [[ -z $OUTDIR ]] || die "more than one OUTDIR given: '$OUTDIR' and '$1'"; OUTDIR=$1; shift ;;
  esac
done
[[ -n $OUTDIR ]] || { usage >&2; exit 2; }

# Split a comma/space separated list into the array named $1, dropping
# duplicates and empty items.
split_list() {
  local -n _dst=$1
  local -a _items
  local -A _seen=()
  local _i
  _dst=()
  IFS=$', \t\n' read -r -a _items <<<"$2" || true
  for _i in "${_items[@]}"; do
    [[ -n $_i && -z ${_seen[$_i]:-} ]] || continue
    _seen[$_i]=1
    _dst+=("$_i")
  done
}

NODE_RE='^[A-Za-z0-9][A-Za-z0-9-]*$'        # node names: no '/', no '_'
NAME_RE='^[A-Za-z0-9][A-Za-z0-9._-]*$'      # agency part: SPIFFE path segment

split_list NODES "$NODES_ARG"
split_list AGENCIES "$AGENCIES_ARG"
split_list AUDITORS "$AUDITORS_ARG"
[[ ${#NODES[@]} -gt 0 ]] || die "--nodes must name at least one node"

declare -A IS_NODE=()
for n in "${NODES[@]}"; do
  [[ $n =~ $NODE_RE ]] || die "invalid node name '$n' (letters, digits, '-')"
  IS_NODE[$n]=1
done
check_ident() { # KIND N/x
  local node=${2%%/*} name=${2#*/}
  [[ $2 == */* && $node =~ $NODE_RE && $name =~ $NAME_RE ]] ||
    die "invalid $1 '$2' (expected NODE/name, e.g. CIV/police)"
}
kept=()
for a in "${AGENCIES[@]}"; do
  check_ident agency "$a"
  if [[ -z ${IS_NODE[${a%%/*}]:-} ]]; then
    # Default agencies of nodes that were left out are dropped silently.
    [[ $AGENCIES_GIVEN -eq 0 ]] && continue
    die "agency '$a': node '${a%%/*}' is not in --nodes"
  fi
  kept+=("$a")
done
AGENCIES=("${kept[@]}")
# Intermediate CAs: every node, plus the node of each auditor.
CA_NODES=("${NODES[@]}")
declare -A IS_CA=()
for n in "${NODES[@]}"; do IS_CA[$n]=1; done
for a in "${AUDITORS[@]}"; do
  check_ident auditor "$a"
  n=${a%%/*}
  [[ -n ${IS_CA[$n]:-} ]] || { IS_CA[$n]=1; CA_NODES+=("$n"); }
done
TEST_NODE=${NODES[0]}
[[ -n ${IS_NODE[CIV]:-} ]] && TEST_NODE=CIV

# ---------------------------------------------------------------- OUTDIR check
if [[ -e $OUTDIR && ! -d $OUTDIR ]]; then
  die "OUTDIR '$OUTDIR' exists and is not a directory"
fi
if [[ -d $OUTDIR && $(cd -- "$OUTDIR" && pwd -P) == / ]]; then
  die "refusing to use / as OUTDIR"
fi
if [[ -d $OUTDIR && $FORCE -eq 0 && ! -e $OUTDIR/$MARKER ]]; then
  shopt -s nullglob dotglob
  existing=("$OUTDIR"/*)
  shopt -u nullglob dotglob
  [[ ${#existing[@]} -eq 0 ]] ||
    die "OUTDIR '$OUTDIR' is not empty and was not made by this script; use --force to overwrite it"
fi
command -v "$OPENSSL" >/dev/null || die "openssl not found"

# ---------------------------------------------------------------- workspace
T0=${EPOCHREALTIME/[.,]/}
umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ibsm-dev-pki.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
OUT=$WORK/out           # the PKI, moved to OUTDIR at the end
DB=$WORK/db             # openssl ca databases and configs
LOG=$WORK/openssl.log
mkdir -p "$OUT/crl" "$DB" "$WORK/newcerts"

# Run a command, keeping its chatter in $LOG; show the log if it fails.
run() {
  if ! "$@" >>"$LOG" 2>&1; then
    printf '%s: error: command failed: %s\n' "$PROG" "$*" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
}

# Minimal config for `openssl req` (-subj supplies the DN) + root extensions.
REQ_CNF=$WORK/req.cnf
cat >"$REQ_CNF" <<'EOF'
[ req ]
distinguished_name = req_dn
string_mask = utf8only
prompt = no
[ req_dn ]
CN = unused
[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

# Per-CA `openssl ca` config + empty database. $1 = base name of NAME.pem/.key.
ca_init() {
  local name=$1
  : >"$DB/$name.index"
  printf '1000\n' >"$DB/$name.crlnum"
  cat >"$DB/$name.cnf" <<EOF
[ ca ]
default_ca = ca_sect
[ ca_sect ]
database = $DB/$name.index
new_certs_dir = $WORK/newcerts
certificate = $OUT/$name.pem
private_key = $OUT/$name.key
crlnumber = $DB/$name.crlnum
rand_serial = yes
default_md = sha256
default_days = $LEAF_DAYS
default_crl_days = $CRL_DAYS
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
crl_extensions = crl_ext
[ policy_any ]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
}

# Self-signed root: BASE SUBJECT
make_root() {
  run "$OPENSSL" req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
    -keyout "$OUT/$1.key" -out "$OUT/$1.pem" -subj "$2" -sha256 -days "$ROOT_DAYS" \
    -config "$REQ_CNF" -extensions v3_root
  ca_init "$1"
}

# Write the extension file for one certificate: PROFILE SAN
write_ext() {
  local ext=$WORK/ext.cnf
  case $1 in
    intermediate)
      printf '%s\n' '[ ext ]' \
        'basicConstraints = critical, CA:true, pathlen:0' \
        'keyUsage = critical, keyCertSign, cRLSign' >"$ext" ;;
    server)
      printf '%s\n' '[ ext ]' \
        'basicConstraints = critical, CA:false' \
        'keyUsage = critical, digitalSignature' \
        'extendedKeyUsage = serverAuth, clientAuth' >"$ext" ;;
    client)
      printf '%s\n' '[ ext ]' \
        'basicConstraints = critical, CA:false' \
        'keyUsage = critical, digitalSignature' \
        'extendedKeyUsage = clientAuth' >"$ext" ;;
    server-only)  # wrong EKU for a client or a dialling node
      printf '%s\n' '[ ext ]' \
        'basicConstraints = critical, CA:false' \
        'keyUsage = critical, digitalSignature' \
        'extendedKeyUsage = serverAuth' >"$ext" ;;
  esac
  printf '%s\n' 'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid:always' >>"$ext"
  [[ -z $2 ]] || printf 'subjectAltName = %s\n' "$2" >>"$ext"
}

# Issue a certificate: ISSUER BASE PROFILE SUBJECT SAN [extra `openssl ca` args]
# Writes BASE.key and BASE.pem in $OUT.
issue() {
  local issuer=$1 base=$2 profile=$3 subj=$4 san=$5
  shift 5
  write_ext "$profile" "$san"
  # shellcheck disable=SC2086  # NEWKEY is a list of options
  run "$OPENSSL" req -new ${NEWKEY:--newkey ec -pkeyopt ec_paramgen_curve:P-256} -noenc \
    -keyout "$OUT/$base.key" -out "$WORK/req.csr" -subj "$subj" -config "$REQ_CNF"
  run "$OPENSSL" ca -batch -notext -preserveDN -config "$DB/$issuer.cnf" \
    -in "$WORK/req.csr" -out "$OUT/$base.pem" \
    -extfile "$WORK/ext.cnf" -extensions ext "$@"
}

# Leaf + issuing CA, the chain a peer presents.
chain() { cat "$OUT/$1.pem" "$OUT/$2.pem" >"$OUT/$1-chain.pem"; }

# Client (agency/auditor/test) certificate: ISSUER_NODE BASE N/x [ca args]
client_cert() {
  local node=$1 base=$2 ident=$3
  shift 3
  issue "$node-ca" "$base" client "/O=IBSM/OU=${ident%%/*}/CN=${ident%%/*}\\/${ident#*/}" \
    "URI:spiffe://ibsm/$ident" "$@"
  chain "$base" "$node-ca"
}

# ---------------------------------------------------------------- generate
make_root ca "/O=IBSM/OU=Development PKI/CN=IBSM Dev Root CA"

# Each intermediate names the one node whose identities it may issue
# (spiffe://ibsm/<N>); brokers and clients refuse a leaf spiffe://ibsm/<M>/...
# whose issuing intermediate names another node.
for n in "${CA_NODES[@]}"; do
  issue ca "$n-ca" intermediate "/O=IBSM/OU=$n/CN=IBSM $n Intermediate CA" \
    "URI:spiffe://ibsm/$n" -days "$INT_DAYS"
  ca_init "$n-ca"
done

for n in "${NODES[@]}"; do
  issue "$n-ca" "node-$n" server "/O=IBSM/OU=$n/CN=$n" \
    "URI:spiffe://ibsm/$n, DNS:localhost, DNS:node-${n,,}, IP:127.0.0.1, IP:::1"
  chain "node-$n" "$n-ca"
done

for a in "${AGENCIES[@]}"; do client_cert "${a%%/*}" "agency-${a/\//_}" "$a"; done
for a in "${AUDITORS[@]}"; do client_cert "${a%%/*}" "auditor-${a/\//_}" "$a"; done

# Negative-test material.
client_cert "$TEST_NODE" revoked "$TEST_NODE/revoked"
run "$OPENSSL" ca -config "$DB/$TEST_NODE-ca.cnf" -revoke "$OUT/revoked.pem" -crl_reason keyCompromise
client_cert "$TEST_NODE" expired "$TEST_NODE/expired" \
  -startdate 20200101000000Z -enddate 20200102000000Z

make_root foreign-ca "/O=Not IBSM/OU=Development PKI/CN=Foreign Untrusted Root CA"
issue foreign-ca foreign client "/O=IBSM/OU=$TEST_NODE/CN=$TEST_NODE\\/police" \
  "URI:spiffe://ibsm/$TEST_NODE/police"
chain foreign foreign-ca

# A sibling intermediate (another node's CA, correctly chained to the root)
# issuing identities of TEST_NODE and of the first auditor's node: what a
# node operator holding only its own intermediate key could mint.
SIBLING_NODE=""
for n in "${NODES[@]}"; do
  [[ $n != "$TEST_NODE" ]] && { SIBLING_NODE=$n; break; }
done
SIBLING_AUDITOR=""
if [[ -n $SIBLING_NODE ]]; then
  client_cert "$SIBLING_NODE" "sibling-${TEST_NODE}_police" "$TEST_NODE/police"
  for a in "${AUDITORS[@]}"; do
    [[ ${a%%/*} != "$SIBLING_NODE" ]] || continue
    SIBLING_AUDITOR=$a
    client_cert "$SIBLING_NODE" "sibling-${a/\//_}" "$a"
    break
  done
fi

# A second intermediate for TEST_NODE (say, one replaced after a compromise)
# that the root has revoked, and an otherwise valid leaf under it.
issue ca revoked-ca intermediate "/O=IBSM/OU=$TEST_NODE/CN=IBSM $TEST_NODE Revoked Intermediate CA" \
  "URI:spiffe://ibsm/$TEST_NODE" -days "$INT_DAYS"
ca_init revoked-ca
client_cert revoked under-revoked-ca "$TEST_NODE/police"
run "$OPENSSL" ca -config "$DB/ca.cnf" -revoke "$OUT/revoked-ca.pem" -crl_reason keyCompromise

# The rest of the certificate matrix (docs/security.md): each differs from a
# valid TEST_NODE identity in one respect only.
client_cert "$TEST_NODE" not-yet-valid "$TEST_NODE/police" \
  -startdate 20990101000000Z -enddate 20991231000000Z
T_SUBJ="/O=IBSM/OU=$TEST_NODE/CN=$TEST_NODE\\/police"
T_NODE_SAN="URI:spiffe://ibsm/$TEST_NODE, DNS:localhost, DNS:node-${TEST_NODE,,}, IP:127.0.0.1, IP:::1"
issue "$TEST_NODE-ca" wrong-eku server-only "$T_SUBJ" "URI:spiffe://ibsm/$TEST_NODE/police"
chain wrong-eku "$TEST_NODE-ca"
issue "$TEST_NODE-ca" node-noclient server-only "/O=IBSM/OU=$TEST_NODE/CN=$TEST_NODE" "$T_NODE_SAN"
chain node-noclient "$TEST_NODE-ca"
issue "$TEST_NODE-ca" node-expired server "/O=IBSM/OU=$TEST_NODE/CN=$TEST_NODE" "$T_NODE_SAN" \
  -startdate 20200101000000Z -enddate 20200102000000Z
chain node-expired "$TEST_NODE-ca"
issue "$TEST_NODE-ca" node-noserver client "/O=IBSM/OU=$TEST_NODE/CN=$TEST_NODE" "$T_NODE_SAN"
chain node-noserver "$TEST_NODE-ca"
issue "$TEST_NODE-ca" no-uri client "$T_SUBJ" "DNS:police.${TEST_NODE,,}"
chain no-uri "$TEST_NODE-ca"
issue "$TEST_NODE-ca" cn-spiffe client "/O=IBSM/OU=$TEST_NODE/CN=spiffe:\/\/ibsm\/$TEST_NODE\/police" ""
chain cn-spiffe "$TEST_NODE-ca"
issue "$TEST_NODE-ca" two-uris client "$T_SUBJ" \
  "URI:spiffe://ibsm/$TEST_NODE/police, URI:spiffe://ibsm/$TEST_NODE/customs"
chain two-uris "$TEST_NODE-ca"
client_cert "$TEST_NODE" unknown-agency "$TEST_NODE/nobody"
NEWKEY="-newkey rsa:1024" client_cert "$TEST_NODE" rsa1024 "$TEST_NODE/police"
client_cert "$TEST_NODE" sha1 "$TEST_NODE/police" -md sha1

# CRLs for the root and every intermediate: readable <name>.crl.pem plus a
# copy named <issuer subject hash>.rN for OpenSSL's hashed-directory lookup.
N_CRLS=0
for ca_name in ca "${CA_NODES[@]/%/-ca}" revoked-ca; do
  crl=$OUT/crl/$ca_name.crl.pem
  run "$OPENSSL" ca -gencrl -config "$DB/$ca_name.cnf" -crldays "$CRL_DAYS" -out "$crl"
  h=$("$OPENSSL" crl -in "$crl" -noout -hash)
  i=0
  while [[ -e $OUT/crl/$h.r$i ]]; do i=$((i + 1)); done
  cp "$crl" "$OUT/crl/$h.r$i"
  N_CRLS=$((N_CRLS + 1))
done

# ---------------------------------------------------------------- self-check
CHECKS=0
# expect ok|fail|revoked|expired  DESCRIPTION  openssl-verify-args...
expect() {
  local want=$1 what=$2 out rc=0
  shift 2
  out=$(cd "$OUT" && "$OPENSSL" verify "$@" 2>&1) || rc=$?
  local good=0
  case $want in
    ok) [[ $rc -eq 0 ]] && good=1 ;;
    fail) [[ $rc -ne 0 ]] && good=1 ;;
    revoked) [[ $rc -ne 0 && $out == *"certificate revoked"* ]] && good=1 ;;
    expired) [[ $rc -ne 0 && $out == *"certificate has expired"* ]] && good=1 ;;
  esac
  if [[ $good -ne 1 ]]; then
    printf '%s: SELF-CHECK FAILED: %s (wanted %s)\n  openssl verify %s\n%s\n' \
      "$PROG" "$what" "$want" "$*" "$out" >&2
    exit 1
  fi
  CHECKS=$((CHECKS + 1))
}

declare -A LEAVES_OF=() SERVERS_OF=()
for n in "${NODES[@]}"; do
  SERVERS_OF[$n]+=" node-$n.pem"
  LEAVES_OF[$n]+=" node-$n.pem"
done
for a in "${AGENCIES[@]}"; do LEAVES_OF[${a%%/*}]+=" agency-${a/\//_}.pem"; done
for a in "${AUDITORS[@]}"; do LEAVES_OF[${a%%/*}]+=" auditor-${a/\//_}.pem"; done
for n in "${CA_NODES[@]}"; do
  [[ -n ${LEAVES_OF[$n]:-} ]] || continue
  # shellcheck disable=SC2086  # word splitting of the file list is intended
  expect ok "$n leaves chain to the root" -CAfile ca.pem -untrusted "$n-ca.pem" ${LEAVES_OF[$n]}
  # shellcheck disable=SC2086
  expect ok "$n leaves as TLS clients, CRL-checked via crl/" -CAfile ca.pem -CApath crl \
    -crl_check_all -purpose sslclient -untrusted "$n-ca.pem" ${LEAVES_OF[$n]}
  if [[ -n ${SERVERS_OF[$n]:-} ]]; then
    # shellcheck disable=SC2086
    expect ok "$n node cert as TLS server" -CAfile ca.pem -CApath crl -crl_check_all \
      -purpose sslserver -verify_hostname "node-${n,,}" -verify_ip 127.0.0.1 \
      -untrusted "$n-ca.pem" ${SERVERS_OF[$n]}
  fi
done
T=$TEST_NODE-ca.pem
expect ok "revoked cert without CRL check" -CAfile ca.pem -untrusted "$T" revoked.pem
expect revoked "revoked cert, -crl_check with its CRL file" -crl_check -CAfile ca.pem \
  -untrusted "$T" -CRLfile "crl/$TEST_NODE-ca.crl.pem" revoked.pem
expect revoked "revoked cert, -crl_check_all via hashed crl/" -crl_check_all \
  -CAfile ca.pem -CApath crl -untrusted "$T" revoked.pem
expect expired "expired cert" -CAfile ca.pem -untrusted "$T" expired.pem
expect ok "expired cert is otherwise valid" -no_check_time -CAfile ca.pem -untrusted "$T" expired.pem
expect fail "foreign cert against the IBSM root" -CAfile ca.pem -untrusted foreign-chain.pem foreign.pem
expect fail "foreign cert against the IBSM root and an intermediate" -CAfile ca.pem \
  -untrusted "$T" foreign.pem
expect ok "foreign cert against its own root" -CAfile foreign-ca.pem foreign.pem
expect ok "leaf under the revoked intermediate without CRL check" -CAfile ca.pem \
  -untrusted revoked-ca.pem under-revoked-ca.pem
expect revoked "leaf under the revoked intermediate, -crl_check_all" -crl_check_all \
  -CAfile ca.pem -CApath crl -untrusted revoked-ca.pem under-revoked-ca.pem
expect fail "not-yet-valid cert" -CAfile ca.pem -untrusted "$T" not-yet-valid.pem
expect ok "not-yet-valid cert is otherwise valid" -no_check_time -CAfile ca.pem \
  -untrusted "$T" not-yet-valid.pem
for leaf in wrong-eku node-noclient; do
  expect ok "$leaf chains to the root" -CAfile ca.pem -untrusted "$T" "$leaf.pem"
  expect fail "$leaf is not a TLS client" -CAfile ca.pem -purpose sslclient -untrusted "$T" "$leaf.pem"
done
expect expired "node-expired" -CAfile ca.pem -untrusted "$T" node-expired.pem
expect fail "node-noserver is not a TLS server" -CAfile ca.pem -purpose sslserver \
  -untrusted "$T" node-noserver.pem
for leaf in no-uri cn-spiffe two-uris unknown-agency; do
  expect ok "$leaf chains to the root as a TLS client" -CAfile ca.pem -CApath crl -crl_check_all \
    -purpose sslclient -untrusted "$T" "$leaf.pem"
done
for leaf in rsa1024 sha1; do
  expect ok "$leaf chains to the root" -CAfile ca.pem -untrusted "$T" "$leaf.pem"
  expect fail "$leaf is below 112-bit security" -auth_level 2 -CAfile ca.pem -untrusted "$T" "$leaf.pem"
done
if [[ -n $SIBLING_NODE ]]; then
  # Sibling-issued certificates chain to the root: only the node binding
  # (issuer URI vs. leaf URI) refuses them.
  expect ok "sibling-issued $TEST_NODE/police chains to the root" -CAfile ca.pem -CApath crl \
    -crl_check_all -untrusted "$SIBLING_NODE-ca.pem" "sibling-${TEST_NODE}_police.pem"
fi

# ---------------------------------------------------------------- install
printf 'IBSM Exchange development PKI - NOT FOR PRODUCTION\ncreated=%s\nnodes=%s\nagencies=%s\nauditors=%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${NODES[*]}" "${AGENCIES[*]}" "${AUDITORS[*]}" >"$OUT/$MARKER"
chmod 0644 "$OUT"/*.pem "$OUT"/crl/* "$OUT/$MARKER"
chmod 0600 "$OUT"/*.key
chmod 0755 "$OUT/crl"

mkdir -p -- "$OUTDIR"
find "$OUTDIR"/ -mindepth 1 -delete   # trailing '/': also works if OUTDIR is a symlink
mv -- "$OUT"/* "$OUT/$MARKER" "$OUTDIR"/
chmod 0755 "$OUTDIR"

[[ $QUIET -eq 1 ]] && exit 0
T1=${EPOCHREALTIME/[.,]/}
MS=$(((T1 - T0) / 1000))
list() { local p=$1 s=$2; shift 2; local x out=""; for x in "$@"; do out+=" $p${x/\//_}$s"; done; printf '%s' "${out# }"; }
cat <<EOF
$PROG: development PKI written to $OUTDIR in ${MS} ms (NOT FOR PRODUCTION)
  root CA        ca.pem ca.key                       (EC P-256, ${ROOT_DAYS} days)
  intermediates  $(list "" -ca.pem "${CA_NODES[@]}")   (${INT_DAYS} days)
  nodes          $(list node- .pem "${NODES[@]}")   spiffe://ibsm/<NODE>
  agencies       $(list agency- .pem "${AGENCIES[@]}")
  auditors       $(list auditor- .pem "${AUDITORS[@]}")
                 (leaves: ${LEAF_DAYS} days, each with .key and -chain.pem; spiffe://ibsm/<NODE>/<NAME>)
  negative tests revoked.pem ($TEST_NODE/revoked, revoked in the CRL)
                 expired.pem ($TEST_NODE/expired, expired 2020-01-02)
                 foreign.pem ($TEST_NODE/police, issued by foreign-ca.pem)
  sibling        ${SIBLING_NODE:+sibling-${TEST_NODE}_police.pem ${SIBLING_AUDITOR:+sibling-${SIBLING_AUDITOR/\//_}.pem }(issued by $SIBLING_NODE-ca.pem)}
  matrix         not-yet-valid wrong-eku node-expired node-noclient node-noserver no-uri cn-spiffe
                 two-uris unknown-agency rsa1024 sha1 (.pem, .key, -chain.pem)
  revoked CA     revoked-ca.pem (revoked by the root), under-revoked-ca.pem ($TEST_NODE/police)
  CRLs           crl/: $N_CRLS CRLs (root + every intermediate) as <hash>.r0 and <name>.crl.pem, ${CRL_DAYS} days
  self-check     $CHECKS openssl verify checks passed
EOF
