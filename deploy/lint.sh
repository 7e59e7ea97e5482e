#!/usr/bin/env bash
# Lints what can be linted here: the systemd unit (systemd-analyze verify, with ExecStart pointed
# at a built squeezed), every YAML file (parsed with python3's yaml; Kubernetes objects must have
# apiVersion, kind and metadata.name), and the Dockerfile's promises (bookworm, non-root user,
# data volume). A tool that is missing is skipped and said so; exit 77 when nothing could run.
#   deploy/lint.sh [BUILD_BIN_DIR]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$here/../build/bin}"
ran=0 failed=0

if command -v systemd-analyze >/dev/null 2>&1 && [ -x "$bin/squeezed" ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  sed "s|/usr/local/bin/squeezed|$(cd "$bin" && pwd)/squeezed|" "$here/systemd/squeezed.service" > "$tmp/squeezed.service"
  if out="$(systemd-analyze verify "$tmp/squeezed.service" 2>&1)" && [ -z "$out" ]; then
    echo "systemd-analyze verify squeezed.service: ok"
  else
    echo "systemd-analyze verify squeezed.service: FAILED"; echo "$out"; failed=1
  fi
  ran=1
else
  echo "systemd unit: skipped (no systemd-analyze or no built squeezed in $bin)"
fi

if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  if python3 - "$here" <<'PY'
import pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
bad = 0
for path in sorted(list(root.rglob("*.yaml")) + list(root.rglob("*.yml"))):
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        print(f"{path.name}: not YAML: {e}"); bad = 1; continue
    if "kubernetes" in path.parts:
        for d in docs:
            if not (d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name")):
                print(f"{path.name}: an object lacks apiVersion, kind or metadata.name"); bad = 1
            if d.get("kind") == "StatefulSet":
                spec = d["spec"]["template"]["spec"]
                c = spec["containers"][0]
                for probe in ("readinessProbe", "livenessProbe"):
                    if "health" not in str(c.get(probe)):
                        print(f"{path.name}: {probe} does not ask the gRPC health service"); bad = 1
                if not spec.get("securityContext", {}).get("runAsNonRoot"):
                    print(f"{path.name}: the pod may run as root"); bad = 1
                if not d["spec"].get("volumeClaimTemplates"):
                    print(f"{path.name}: no persistent volume"); bad = 1
    if path.name == "compose.yaml" and "squeezed" not in docs[0].get("services", {}):
        print(f"{path.name}: no squeezed service"); bad = 1
    print(f"{path.relative_to(root)}: {len(docs)} YAML document(s) ok" if not bad else "", end="\n" if not bad else "")
sys.exit(bad)
PY
  then :; else failed=1; fi
  ran=1
else
  echo "YAML: skipped (no python3 with yaml)"
fi

docker="$here/Dockerfile"
for want in "FROM debian:bookworm AS build" "FROM debian:bookworm-slim" "USER squeeze" "VOLUME" "deploy/install-deps.sh"; do
  grep -q "$want" "$docker" || { echo "Dockerfile: missing '$want'"; failed=1; }
done
[ "$failed" = 0 ] && echo "Dockerfile: bookworm stages, non-root user, data volume: ok"
ran=1

[ "$ran" = 0 ] && exit 77
exit "$failed"
