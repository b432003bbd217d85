#!/usr/bin/env bash
# Reruns the hostile cases of docs/reliability.md against a release build on 127.0.0.1 and prints
# the figures (statuses, times, the server's resident memory). Every server started here is
# stopped by its pid; PostgreSQL, frozen for the outage case, is always resumed.
#   scripts/hostile.sh            every case (about four minutes)
#   scripts/hostile.sh CASE...    some of: methods unauth-bodies slow-clients bad-inputs
#                                 idle-sockets outage-postgres outage-sqlite reads
# The functional side of each case (statuses, time limits, nothing stored) is in the test
# suite (tests/it/hostile.rs, outage.rs, api_limits.rs); this script measures memory and time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/hostile
mkdir -p "$out"
report="$out/report.txt"
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(methods unauth-bodies slow-clients bad-inputs idle-sockets outage-postgres outage-sqlite reads)

scripts/pg-up.sh >/dev/null
admin="${KENAR_HOOK_TEST_DATABASE_URL:-postgres://kenar_hook:kenar_hook@127.0.0.1:5432/postgres}"
cargo build --release --bin kenar-hook --example hostile

port=18181
metrics_port=19191
key=hostile-identification-key-000001
tokens="hostile-token-a-0001-0123456789abcdef,hostile-token-b-0001-0123456789abcdef,hostile-token-c-0001-0123456789abcdef,hostile-token-d-0001-0123456789abcdef"
pid=""
frozen=""
stop_server() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
thaw() {
  if [ -n "$frozen" ]; then kill -CONT $frozen 2>/dev/null || true; frozen=""; fi
}
trap 'thaw; stop_server' EXIT

config() { # database url, extra toml
  local toml_tokens
  toml_tokens=$(echo "$tokens" | sed 's/\([^,]*\)/"\1"/g')
  cat >"$out/hostile.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$out/data"
[database]
url = "$1"
[divar]
identification_keys = ["$key"]
[metrics]
enabled = true
listen = "127.0.0.1:$metrics_port"
[api]
tokens = [$toml_tokens]
# The cases measure memory and latency, not the per-token rate limit.
rate_limit_per_second = 1000000
rate_limit_burst = 1000000
$2
TOML
  echo "$out/hostile.toml"
}

start_server() { # config file [ulimit -n]
  if [ -n "${2:-}" ]; then
    (ulimit -n "$2"; exec target/release/kenar-hook --config "$1") >"$out/server.log" 2>&1 &
  else
    target/release/kenar-hook --config "$1" >"$out/server.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 100); do
    target/release/kenar-hook healthcheck "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start; see $out/server.log" >&2
  exit 1
}

fresh_sqlite() {
  rm -rf "$out/data"
  mkdir -p "$out/data"
  echo "sqlite://$out/data/hostile.db"
}

run() { # case
  target/release/examples/hostile "$1" --addr "127.0.0.1:$port" --pid "$pid" --key "$key" \
    --tokens "$tokens" --metrics "127.0.0.1:$metrics_port" | tee -a "$report"
}

: >"$report"
echo "== kenar-hook hostile cases, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" | tee -a "$report"
for case in "${cases[@]}"; do
  case "$case" in
    methods | unauth-bodies | slow-clients | bad-inputs)
      start_server "$(config "$(fresh_sqlite)" "")"
      run "$case"
      stop_server
      ;;
    idle-sockets)
      # 256 descriptors and 300 silent clients: the accept errors back off and the silent
      # ones are dropped after server.header_read_timeout_ms.
      start_server "$(config "$(fresh_sqlite)" "")" 256
      run idle-sockets
      stop_server
      echo "idle-sockets: log lines about failed accepts: $(grep -c 'accepting a connection failed' "$out/server.log" || true)" | tee -a "$report"
      ;;
    outage-postgres)
      psql -q "$admin" -c "drop database if exists kh_hostile" -c "create database kh_hostile"
      start_server "$(config "${admin%/*}/kh_hostile?sslmode=disable" "")"
      # Connections exist before the database stops answering.
      target/release/examples/hostile bad-inputs --addr "127.0.0.1:$port" --pid "$pid" --key "$key" >/dev/null
      frozen="$(head -n1 /var/run/postgresql/*-main.pid) $(pgrep -f 'kh_hostile' | tr '\n' ' ')"
      kill -STOP $frozen
      run outage-postgres
      thaw
      stop_server
      ;;
    outage-sqlite)
      db=$(fresh_sqlite)
      start_server "$(config "$db" "")"
      python3 - "$out/data/hostile.db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=1)
c.execute("begin exclusive")
time.sleep(12)
c.execute("commit")
PY
      locker=$!
      sleep 1
      run outage-sqlite
      wait "$locker"
      stop_server
      ;;
    reads)
      start_server "$(config "$(fresh_sqlite)" "")"
      run seed-events
      stop_server
      # A fresh process for each memory figure.
      for read_case in events-lists stalled-streams many-streams; do
        start_server "$out/hostile.toml"
        run "$read_case"
        stop_server
      done
      ;;
    *) echo "unknown case $case" >&2; exit 2 ;;
  esac
done
echo "== report: $report"
