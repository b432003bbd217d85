#!/usr/bin/env bash
# Runs every test, on SQLite and on PostgreSQL, then (without arguments) the web inbox in
# Chromium. The PostgreSQL tests fail (never skip) when the database cannot be reached; the
# browser tests when node or chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pg-up.sh
export KENAR_HOOK_TEST_DATABASE_URL="${KENAR_HOOK_TEST_DATABASE_URL:-postgres://kenar_hook:kenar_hook@127.0.0.1:5432/postgres}"
cargo test --locked "$@"
if [ $# -eq 0 ]; then
  scripts/browser-test.sh
fi
