#!/usr/bin/env bash
# The web inbox driven in a real Chromium (tests/browser, docs/inbox.md) against the debug
# build of kenar-hook. Fails, never skips, when node or chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "browser tests: $tool is missing (apt-get install nodejs)" >&2; exit 1; }
done
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "browser tests: $chromium is missing (apt-get install chromium fonts-noto-core)" >&2; exit 1; }
cargo build --locked --bin kenar-hook
cd tests/browser
npm ci --no-audit --no-fund --loglevel=error
CHROMIUM="$chromium" npm test
