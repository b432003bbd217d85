#!/usr/bin/env bash
# Runs `kenar-hook config check` on the settings the container gets: the Dockerfile's ENV
# (its settings file is a copy of config/default.toml), the environment docker-compose.yml
# gives the kenar-hook service, and a stand-in file for every secret it names under
# /run/secrets.
# Usage: scripts/check-compose-config.sh [path/to/kenar-hook]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/kenar-hook}"
secrets="$(mktemp -d)"
trap 'rm -rf "$secrets"' EXIT

# The file itself: valid YAML, each service with the keys it needs, every named secret and
# volume declared, and the trusted proxy the pinned network's gateway.
py=""
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import yaml' 2>/dev/null; then py="$candidate"; break; fi
done
[ -n "$py" ] || { echo "PyYAML is needed: apt-get install python3-yaml" >&2; exit 1; }
"$py" - docker-compose.yml <<'PY'
import sys, yaml
path = sys.argv[1]
try:
    doc = yaml.safe_load(open(path))
except yaml.YAMLError as e:
    sys.exit(f"{path} is not valid YAML: {e}")
problems = []
services = doc.get("services") or {}
for name in ("postgres", "kenar-hook"):
    if name not in services:
        problems.append(f"no service {name}")
known = {"image", "build", "command", "environment", "secrets", "volumes", "healthcheck",
         "restart", "depends_on", "ports", "read_only", "tmpfs", "cap_drop", "security_opt",
         "stop_grace_period"}
for name, service in services.items():
    extra = set(service or {}) - known
    if extra:
        problems.append(f"service {name}: unexpected keys {sorted(extra)}")
    for secret in (service or {}).get("secrets", []):
        if secret not in (doc.get("secrets") or {}):
            problems.append(f"service {name}: secret {secret} is not declared")
    for volume in (service or {}).get("volumes", []):
        source = str(volume).split(":", 1)[0]
        if not source.startswith((".", "/")) and source not in (doc.get("volumes") or {}):
            problems.append(f"service {name}: volume {source} is not declared")
if not any(str(v).startswith("pgdata:") for v in services.get("postgres", {}).get("volumes", [])):
    problems.append("service postgres: its data is not on the pgdata volume")
try:
    gateway = doc["networks"]["default"]["ipam"]["config"][0]["gateway"]
except (KeyError, IndexError, TypeError):
    gateway = None
    problems.append("networks.default: no pinned gateway")
proxies = str(services.get("kenar-hook", {}).get("environment", {}).get(
    "KENAR_HOOK__SERVER__TRUSTED_PROXIES", ""))
if gateway and gateway not in proxies.split(","):
    problems.append(f"KENAR_HOOK__SERVER__TRUSTED_PROXIES ({proxies}) is not the gateway {gateway}")
if problems:
    sys.exit(f"{path}: " + "; ".join(problems))
PY

# The `environment:` block of the kenar-hook service, as KEY=value lines.
mapfile -t vars < <(awk '
  /^  kenar-hook:/ { in_service = 1; next }
  in_service && /^  [a-z]/ { in_service = 0 }
  in_service && /^    environment:/ { in_env = 1; next }
  in_env && /^    [a-z_]+:/ { in_env = 0 }
  in_env && /^      [A-Z_]+:/ {
    line = $0; sub(/^ +/, "", line)
    key = line; sub(/:.*/, "", key)
    value = line; sub(/^[A-Z_]+: */, "", value); gsub(/^"|"$/, "", value)
    print key "=" value
  }' docker-compose.yml)
[ "${#vars[@]}" -gt 0 ] || { echo "no environment found for the kenar-hook service" >&2; exit 1; }

env_args=()
for var in "${vars[@]}"; do
  value="${var#*=}"
  if [[ "$value" == /run/secrets/* ]]; then
    name="${value#/run/secrets/}"
    # A random stand-in of the length `openssl rand -base64 32` gives.
    head -c 32 /dev/urandom | base64 > "$secrets/$name"
    value="$secrets/$name"
  fi
  env_args+=("${var%%=*}=$value")
done

# The image's ENV, with its settings file found where the Dockerfile copies it from.
mapfile -t image_vars < <(grep -oE 'KENAR_HOOK[A-Z_]*=[^ \\]+' Dockerfile \
  | sed 's|^KENAR_HOOK_CONFIG=.*|KENAR_HOOK_CONFIG=config/default.toml|')
[ "${#image_vars[@]}" -gt 0 ] || { echo "no ENV found in the Dockerfile" >&2; exit 1; }

echo "checking the container settings: ${image_vars[*]%%=*} ${vars[*]%%=*}"
env -i PATH="$PATH" "${image_vars[@]}" "${env_args[@]}" "$bin" config check >/dev/null
