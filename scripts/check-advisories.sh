#!/usr/bin/env bash
# Checks Cargo.lock against a snapshot of the RustSec advisory database, offline, with
# cargo-audit (installed on first use). Fails on a vulnerability of any locked crate that
# .cargo/audit.toml does not ignore, and on an ignored one whose crate is compiled after all.
# The database is a plain folder (no git, nothing fetched): ../shared/advisory-db beside the
# repository unless KENAR_HOOK_ADVISORY_DB names another; a missing one fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.22.2
db="${KENAR_HOOK_ADVISORY_DB:-../shared/advisory-db}"
if [ ! -d "$db/crates" ]; then
  echo "no advisory database at $db (a RustSec advisory-db folder with crates/ in it);" \
    "put a snapshot there or set KENAR_HOOK_ADVISORY_DB" >&2
  exit 1
fi

# Outside the clone, so CI's fresh clones on one machine build it once; its own root, so a
# cargo-audit of another version elsewhere on the PATH is neither used nor replaced.
root="${KENAR_HOOK_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kenar-hook/tools}"
audit="$root/bin/cargo-audit"
if [ "$("$audit" --version 2>/dev/null)" != "cargo-audit $version" ]; then
  echo "installing cargo-audit $version into $root"
  # Without binary scanning, which this check does not use, it builds in a few minutes.
  env -u CARGO_TARGET_DIR cargo install --locked --quiet --no-default-features \
    --root "$root" cargo-audit --version "$version"
fi

echo "advisory database: $db ($(cat "$db/SNAPSHOT" 2>/dev/null || echo 'no SNAPSHOT file'))"
# --no-fetch reads the folder as it is; --stale: a snapshot's age alone is no failure.
"$audit" audit --no-fetch --stale --db "$db" --file Cargo.lock

for id in $(sed -n 's/^ *"\(RUSTSEC-[0-9]*-[0-9]*\)".*/\1/p' .cargo/audit.toml); do
  advisory=$(find "$db/crates" -name "$id.md" -print -quit)
  if [ -z "$advisory" ]; then
    echo ".cargo/audit.toml ignores $id, which the advisory database does not have" >&2
    exit 1
  fi
  crate=$(basename "$(dirname "$advisory")")
  if ! tree=$(cargo tree --locked --target all -e normal,build,dev -i "$crate" 2>/dev/null); then
    echo "cannot tell whether $crate is compiled: cargo tree failed" >&2
    exit 1
  fi
  if [ -n "$tree" ]; then
    echo ".cargo/audit.toml ignores $id because $crate is not compiled, but it is now:" >&2
    echo "$tree" >&2
    exit 1
  fi
done
echo "advisories: no known vulnerability in a compiled crate"
