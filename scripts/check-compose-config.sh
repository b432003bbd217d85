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
