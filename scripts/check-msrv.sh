#!/usr/bin/env bash
# Checks the minimum Rust version stated in Cargo.toml (`rust-version`) without installing
# that toolchain: no locked dependency may declare a newer one. Calls to the standard library
# newer than it are caught by clippy's `incompatible_msrv` lint, which reads the same field
# and runs in .ci/run with -D warnings.
set -euo pipefail
cd "$(dirname "$0")/.."
metadata=$(cargo metadata --locked --format-version 1)
ours=$(jq -r '.packages[] | select(.name == "kenar-hook") | .rust_version' <<<"$metadata")
[ -n "$ours" ] && [ "$ours" != null ] || { echo "Cargo.toml states no rust-version" >&2; exit 1; }
newer=$(jq -r --arg ours "$ours" '
  def v: split(".") | map(tonumber) | . + [0, 0] | .[0:3];
  .packages[] | select(.rust_version != null and (.rust_version | v) > ($ours | v))
  | "\(.name) \(.version) needs Rust \(.rust_version)"' <<<"$metadata")
if [ -n "$newer" ]; then
  echo "rust-version is $ours, but these dependencies need a newer Rust:" >&2
  echo "$newer" >&2
  exit 1
fi
echo "rust-version $ours: every dependency builds with it"
