#!/usr/bin/env bash
# Validates the packaging that this machine cannot run for real
# (docs/operations.md, "Install"). One check per mode, each a ctest:
#   validate-packaging.sh systemd   BUILD_DIR  systemd-analyze verify (and
#                                              security) of the unit as installed
#   validate-packaging.sh container SOURCE_DIR the Containerfile's structure
#   validate-packaging.sh k8s       SOURCE_DIR BUILD_DIR  the manifests'
#                                   kinds and required fields (python3-yaml),
#                                   then the ConfigMap's config and the probe
#                                   command run against a real ibsm-broker
# Prints "<mode>: ok" and exits 0, or names what is wrong and exits 1.
# Exits 0 with "SKIP: ..." only where the tool itself is missing.
set -euo pipefail
mode=${1:?usage: validate-packaging.sh systemd|container|k8s ...}
shift
fail() {
  echo "$mode: $*" >&2
  exit 1
}
work=$(mktemp -d)
broker_pid=
cleanup() {
  if [[ -n $broker_pid ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

case $mode in
systemd)
  build=${1:?BUILD_DIR}
  command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 0; }
  prefix=$work/prefix
  cmake --install "$build" --prefix "$prefix" >/dev/null
  unit=$prefix/lib/systemd/system/ibsm-broker.service
  [[ -f $unit ]] || fail "the unit is not installed at $unit"
  grep -q "^ExecStart=$prefix/bin/ibsm-broker " "$unit" || fail "ExecStart does not name the installed binary"
  for setting in ProtectSystem=strict NoNewPrivileges=yes DynamicUser=yes User=ibsm \
      StateDirectory=ibsm LoadCredential=node.key: LoadCredential=storage.key: \
      RestartPreventExitStatus=2; do
    grep -q "^$setting" "$unit" || fail "the unit lacks $setting"
  done
  # verify checks the syntax, every setting's value, the binary and the man
  # page of Documentation=.
  if ! out=$(MANPATH=$prefix/share/man systemd-analyze verify "$unit" 2>&1); then
    fail "systemd-analyze verify: $out"
  fi
  [[ -z $out ]] || fail "systemd-analyze verify warned: $out"
  # The exposure score of the sandboxing (0 = fully locked down, 10 = none).
  if score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p') && [[ -n $score ]]; then
    echo "systemd-analyze security: exposure $score"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score is above 2.0"
  fi
  echo "systemd: ok"
  ;;

container)
  source=${1:?SOURCE_DIR}
  /usr/bin/python3 - "$source/deploy/container/Containerfile" <<'EOF'
import re, sys
path = sys.argv[1]
lines, cont = [], ""
for raw in open(path):
    line = raw.rstrip("\n")
    if cont:
        line = cont + " " + line.strip()
    if line.endswith("\\"):
        cont = line[:-1]
        continue
    cont = ""
    if line.strip() and not line.lstrip().startswith("#"):
        lines.append(line.strip())
errors = []
def err(msg): errors.append(msg)
instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
known = {"FROM","RUN","COPY","ADD","ENV","ARG","WORKDIR","USER","EXPOSE","VOLUME","ENTRYPOINT","CMD","LABEL","STOPSIGNAL","HEALTHCHECK","SHELL","ONBUILD"}
for k, _ in instr:
    if k not in known: err(f"unknown instruction {k}")
froms = [a for k, a in instr if k == "FROM"]
if len(froms) < 2: err("not multi-stage (fewer than two FROM)")
for a in froms:
    image = a.split()[0]
    if not re.fullmatch(r"debian:(12|bookworm)(-slim)?", image):
        err(f"FROM {image} is not a Debian 12 image")
stages = [a.split()[2] for a in froms if len(a.split()) == 3 and a.split()[1].upper() == "AS"]
final = [i for i, (k, _) in enumerate(instr) if k == "FROM"][-1]
tail = instr[final:]
for k, a in tail:
    if k == "COPY" and "--from=" in a:
        stage = re.search(r"--from=(\S+)", a).group(1)
        if stage not in stages: err(f"COPY --from={stage}: no such stage")
users = [a for k, a in tail if k == "USER"]
if not users: err("the final stage has no USER (it would run as root)")
elif users[-1].split(":")[0] in ("root", "0"): err("the final stage runs as root")
for k, a in instr:
    if k == "ADD" and re.search(r"https?://", a): err("ADD of a URL (downloads outside apt)")
    if k == "RUN" and re.search(r"\b(curl|wget)\b", a): err("RUN downloads with curl/wget")
    if k == "RUN" and "apt-get install" in a:
        if "--no-install-recommends" not in a: err("apt-get install without --no-install-recommends")
        if "rm -rf /var/lib/apt/lists" not in a: err("apt lists not removed in the same RUN")
entry = [a for k, a in tail if k == "ENTRYPOINT"]
if not entry or not entry[-1].startswith("["): err("ENTRYPOINT missing or not in exec form")
if not any(k == "VOLUME" and "/var/lib/ibsm" in a for k, a in tail): err("no VOLUME for /var/lib/ibsm")
if errors:
    print("container: " + "; ".join(errors), file=sys.stderr); sys.exit(1)
EOF
  # The runtime packages exist in Debian 12 (from the apt lists, when this
  # machine has them).
  pkgs=$(sed -n '/^FROM debian:12-slim$/,$p' "$source/deploy/container/Containerfile" |
    sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' | grep -E '^lib[a-z0-9.+-]+$' || true)
  [[ -n $pkgs ]] || fail "no runtime packages found in the final stage"
  if apt-cache show libc6 >/dev/null 2>&1; then
    for p in $pkgs; do
      apt-cache show "$p" >/dev/null 2>&1 || fail "runtime package $p is not known to apt"
    done
  else
    echo "container: apt lists absent, package names not checked"
  fi
  echo "container: ok (structure only: no container runtime here)"
  ;;

k8s)
  source=${1:?SOURCE_DIR}
  build=${2:?BUILD_DIR}
  /usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: no python3-yaml"; exit 0; }
  manifest=$source/deploy/k8s/ibsm-node.yaml
  /usr/bin/python3 - "$manifest" "$work" <<'EOF'
import sys, yaml
path, work = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
def err(msg): errors.append(msg)
def need(obj, dotted, where):
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            err(f"{where}: missing {dotted}"); return None
        cur = cur[part]
    return cur
api = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1",
       "StatefulSet": "apps/v1", "NetworkPolicy": "networking.k8s.io/v1",
       "PersistentVolumeClaim": "v1", "CronJob": "batch/v1"}
by_kind = {}
for d in docs:
    kind = d.get("kind")
    where = f"{kind}/{d.get('metadata', {}).get('name')}"
    if kind not in api: err(f"{where}: unexpected kind"); continue
    if d.get("apiVersion") != api[kind]: err(f"{where}: apiVersion {d.get('apiVersion')}, expected {api[kind]}")
    need(d, "metadata.name", where)
    by_kind.setdefault(kind, []).append(d)
for kind in api:
    if kind not in by_kind: err(f"no {kind}")
if errors:
    print("k8s: " + "; ".join(errors), file=sys.stderr); sys.exit(1)
cm = by_kind["ConfigMap"][0]; secret = by_kind["Secret"][0]
sts = by_kind["StatefulSet"][0]; np = by_kind["NetworkPolicy"][0]
for key in ("node.textproto", "policy.textproto"):
    if key not in cm.get("data", {}): err(f"ConfigMap lacks {key}")
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
for key in ("node.key", "node-chain.pem", "ca.pem", "storage.key"):
    if key not in secret_keys: err(f"Secret lacks {key}")
spec = sts["spec"]
if spec.get("replicas") != 1: err("StatefulSet: replicas must be 1 (one writer per data directory)")
labels = need(sts, "spec.template.metadata.labels", "StatefulSet") or {}
sel = need(sts, "spec.selector.matchLabels", "StatefulSet") or {}
if any(labels.get(k) != v for k, v in sel.items()): err("StatefulSet: selector does not match the template labels")
need(sts, "spec.serviceName", "StatefulSet")
services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
if spec.get("serviceName") not in services: err("StatefulSet: serviceName names no Service")
elif services[spec["serviceName"]]["spec"].get("clusterIP") != "None": err("StatefulSet: its Service is not headless")
pod = spec["template"]["spec"]
psc = pod.get("securityContext", {})
if not psc.get("runAsNonRoot") or psc.get("runAsUser", 0) == 0: err("pod: not runAsNonRoot with a non-zero runAsUser")
claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
containers = pod.get("containers", [])
broker = next((c for c in containers if c.get("name") == "broker"), None)
if broker is None:
    err("StatefulSet: no container named broker")
else:
    ports = {p.get("name"): p.get("containerPort") for p in broker.get("ports", [])}
    if "client" not in ports or "federation" not in ports: err("broker: ports client and federation must be named")
    sc = broker.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False: err("broker: allowPrivilegeEscalation must be false")
    if not sc.get("readOnlyRootFilesystem"): err("broker: readOnlyRootFilesystem must be true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []): err("broker: capabilities must drop ALL")
    for probe in ("readinessProbe", "livenessProbe"):
        p = broker.get(probe)
        if not p: err(f"broker: no {probe}"); continue
        if not any(k in p for k in ("exec", "grpc", "tcpSocket", "httpGet")): err(f"broker: {probe} has no handler")
    mounts = {m["mountPath"]: m["name"] for m in broker.get("volumeMounts", [])}
    for path_, name in mounts.items():
        if name not in volumes and name not in claims: err(f"broker: mount {path_} names no volume {name}")
    if mounts.get("/var/lib/ibsm") not in claims: err("broker: /var/lib/ibsm is not on the persistent volume claim")
    with open(f"{work}/probe.txt", "w") as f:
        f.write("\n".join(broker["readinessProbe"]["exec"]["command"]))
for name, v in volumes.items():
    if "secret" in v and v["secret"].get("secretName") != secret["metadata"]["name"]: err(f"volume {name}: no such Secret")
    if "configMap" in v and v["configMap"].get("name") != cm["metadata"]["name"]: err(f"volume {name}: no such ConfigMap")
for c in claims.values():
    if not c["spec"].get("accessModes") or "storage" not in c["spec"].get("resources", {}).get("requests", {}):
        err("volumeClaimTemplate: accessModes and resources.requests.storage are required")
if set(np["spec"].get("policyTypes", [])) != {"Ingress", "Egress"}: err("NetworkPolicy: policyTypes must be Ingress and Egress")
if np["spec"].get("podSelector", {}).get("matchLabels") != sel: err("NetworkPolicy: podSelector does not select the node")
named = set(ports) if broker else set()
for rule in np["spec"].get("ingress", []):
    for p in rule.get("ports", []):
        if isinstance(p.get("port"), str) and p["port"] not in named: err(f"NetworkPolicy: port {p['port']} is not a named container port")
cron = by_kind["CronJob"][0]
need(cron, "spec.schedule", "CronJob")
if cron["spec"].get("concurrencyPolicy") != "Forbid": err("CronJob: concurrencyPolicy must be Forbid (one backup at a time)")
job_pod = need(cron, "spec.jobTemplate.spec.template.spec", "CronJob") or {}
if job_pod.get("restartPolicy") not in ("Never", "OnFailure"): err("CronJob: restartPolicy must be Never or OnFailure")
jsc = job_pod.get("securityContext", {})
if not jsc.get("runAsNonRoot") or jsc.get("runAsUser", 0) == 0: err("CronJob: not runAsNonRoot")
job_volumes = {v["name"]: v for v in job_pod.get("volumes", [])}
pvcs = {p["metadata"]["name"] for p in by_kind["PersistentVolumeClaim"]}
for c in job_pod.get("containers", []) + job_pod.get("initContainers", []):
    for m in c.get("volumeMounts", []):
        if m["name"] not in job_volumes: err(f"CronJob {c['name']}: mount {m['mountPath']} names no volume")
for name, v in job_volumes.items():
    if "persistentVolumeClaim" in v and v["persistentVolumeClaim"].get("claimName") not in pvcs: err(f"CronJob volume {name}: no such claim")
    if "secret" in v and v["secret"].get("secretName") != secret["metadata"]["name"]: err(f"CronJob volume {name}: no such Secret")
    if "configMap" in v and v["configMap"].get("name") != cm["metadata"]["name"]: err(f"CronJob volume {name}: no such ConfigMap")
backup_cmd = " ".join(job_pod["containers"][0].get("command", []))
if "ibsm-broker backup --config /etc/ibsm/node.textproto" not in backup_cmd: err("CronJob: does not run ibsm-broker backup with the node's config")
job_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
if not any(p.get("podSelector", {}).get("matchLabels") == job_labels
           for rule in np["spec"].get("ingress", []) for p in rule.get("from", [])):
    err("NetworkPolicy: the backup job may not reach the node")
with open(f"{work}/backup.txt", "w") as f: f.write(backup_cmd)
with open(f"{work}/node.textproto", "w") as f: f.write(cm["data"]["node.textproto"])
if errors:
    print("k8s: " + "; ".join(errors), file=sys.stderr); sys.exit(1)
EOF
  # The ConfigMap's config and the probe command, against a real broker
  # with the development PKI (paths of the pod mapped into $work).
  bash "$source/certs/make-dev-pki.sh" "$work/pki" --nodes CIV --agencies CIV/police -q >/dev/null
  keys=$work/keys
  mkdir -m 0700 "$keys"
  install -m 0400 "$work/pki/node-CIV.key" "$keys/node.key"
  install -m 0400 "$work/pki/node-CIV-chain.pem" "$keys/node-chain.pem"
  install -m 0400 "$work/pki/ca.pem" "$keys/ca.pem"
  "$build/bin/ibsm-broker" keygen --out "$keys/storage.key" >/dev/null
  mkdir -m 0700 "$work/state"
  sed -e "s|/run/ibsm/keys|$keys|g" -e "s|/var/lib/ibsm|$work/state|g" \
      -e "s|/etc/ibsm/policy.textproto|$source/policies/ibsm-west-africa.textproto|" \
      -e 's|0.0.0.0:7443|127.0.0.1:0|' -e 's|0.0.0.0:7444|127.0.0.1:0|' \
      "$work/node.textproto" >"$work/config.textproto"
  echo "port_file: \"$work/port\"" >>"$work/config.textproto"
  "$build/bin/ibsm-broker" --config "$work/config.textproto" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 1 300); do
    [[ -s $work/port ]] && break
    kill -0 "$broker_pid" 2>/dev/null || fail "the ConfigMap's config does not start a broker: $(tail -3 "$work/broker.log")"
    sleep 0.1
  done
  [[ -s $work/port ]] || fail "the broker did not serve within 30 s"
  port=$(cat "$work/port")
  mapfile -t probe <"$work/probe.txt"
  probe=("${probe[@]//\/run\/ibsm\/keys/$keys}")
  probe=("${probe[@]//127.0.0.1:7443/127.0.0.1:$port}")
  probe[0]=$build/bin/ibsm
  "${probe[@]}" >"$work/probe.out" 2>&1 || fail "the probe fails against a serving node: $(cat "$work/probe.out")"
  # The CronJob's backup command, with the pod's paths mapped likewise.
  mkdir "$work/backups"
  backup_cmd=$(sed -e "s|/opt/ibsm/bin/ibsm-broker|$build/bin/ibsm-broker|" \
      -e "s|/etc/ibsm/node.textproto|$work/config.textproto|" \
      -e "s|ibsm-civ-0.ibsm-civ:7443|127.0.0.1:$port|" -e "s|/backups|$work/backups|g" "$work/backup.txt")
  sh -c "$backup_cmd" >"$work/backup.out" 2>&1 || fail "the CronJob's backup fails: $(cat "$work/backup.out")"
  ls "$work"/backups/civ-*/backup-manifest.textproto >/dev/null 2>&1 || fail "the CronJob's backup wrote no manifest"
  kill "$broker_pid"
  wait "$broker_pid" || true
  broker_pid=
  if "${probe[@]}" >"$work/probe.out" 2>&1; then
    fail "the probe succeeds with the node stopped"
  fi
  echo "k8s: ok (manifests checked; the probe passes on a serving node and fails on a stopped one; the CronJob's backup command writes a backup)"
  ;;
*)
  fail "unknown mode (systemd, container or k8s)"
  ;;
esac
