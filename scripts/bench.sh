#!/usr/bin/env bash
# Reruns the benchmarks of docs/benchmarks.md on this machine against the local PostgreSQL.
#   scripts/bench.sh clicks     button-click replies at 200 clicks/s
#   scripts/bench.sh read       read API over 1,000,000 messages (seeds the data once)
#   scripts/bench.sh ingest     webhook deliveries with wrk, on PostgreSQL (1,000,000 rows
#                               already stored) and SQLite; INGEST_SECONDS, INGEST_RUNS shorten it
#   scripts/bench.sh forward    forwarding to a local receiver on PostgreSQL: delivery lag at
#                               1,000 messages/s, throughput of a 100,000-record backlog, and a
#                               receiver down for 60 s under 500 messages/s
#   scripts/bench.sh reply      every pushed message answered with a reply, sent to a local
#                               stand-in for Divar: 500 messages/s for 60 s on PostgreSQL
#   scripts/bench.sh slow       1,000 messages/s on PostgreSQL while commits are stalled 1.5 s
#                               five times (the database answering): no 503 expected
#   scripts/bench.sh compare B  this build against another binary B, alternately: ingest /
#                               healthz at 256 connections and the read API's CPU per page
#                               (COMPARE_OTHER_REV=<B's commit> when B has fewer migrations)
#   scripts/bench.sh scale      a year of data: SCALE_MESSAGES (20,000,000) messages on
#                               PostgreSQL; reads, ingest, pruning while ingesting, disk size
#                               (SCALE_REUSE=1: measure again without seeding)
#   scripts/bench.sh backup     ingest at 500 deliveries/s on a ~1 GiB SQLite database, without
#                               and during `kenar-hook backup`; then the backup restored and
#                               checked (BACKUP_SEED_MIB, BACKUP_BASE_SECONDS shorten it)
#   scripts/bench.sh inbox      the web inbox in Chromium (SQLite, release build): first paint
#                               with 1,000 conversations, page weight, delivery to visible
#                               over 200 deliveries (needs node and chromium; tests/browser)
#   scripts/bench.sh            all five (not compare, scale or backup)
# Everything targets 127.0.0.1, runs for a bounded time, and the server started here is
# stopped by its pid. Results go to target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
out=target/bench
mkdir -p "$out"
scripts/pg-up.sh >/dev/null
admin="${KENAR_HOOK_TEST_DATABASE_URL:-postgres://kenar_hook:kenar_hook@127.0.0.1:5432/postgres}"
# TLS to a database on the same host only burns CPU: the benchmark disables it.
db_url() { echo "${admin%/*}/$1?sslmode=disable"; }
cargo build --release --bin kenar-hook --example loadgen --example seed --example receiver

port=18080
key=bench-identification-key-000000001
token=bench-api-token-0123456789abcdefghij
pid=""
stop_server() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
trap 'stop_server; stop_receiver; stop_ingest >/dev/null 2>&1; untune_postgres' EXIT

wait_healthy() { # port, log file
  for _ in $(seq 1 100); do
    target/release/kenar-hook healthcheck "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start; see $2" >&2
  exit 1
}

start_server() { # config file
  target/release/kenar-hook --config "$1" >"$out/server.log" 2>&1 &
  pid=$!
  wait_healthy "$port" "$out/server.log"
  # Another process answering on the port must not be measured instead.
  sleep 0.5
  kill -0 "$pid" 2>/dev/null || { echo "the server exited; see $out/server.log" >&2; exit 1; }
}

config() { # database url, extra toml
  cat >"$out/bench.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[database]
url = "$1"
max_connections = 10
[divar]
identification_keys = ["$key"]
[metrics]
enabled = true
listen = "127.0.0.1:${metrics_port:-19090}"
[log]
level = "warn"
[api]
tokens = ["$token"]
rate_limit_per_second = 1000000
rate_limit_burst = 1000000
$2
TOML
  echo "$out/bench.toml"
}

bench_clicks() {
  psql -q "$admin" -c "drop database if exists kh_bench_clicks" -c "create database kh_bench_clicks"
  cfg=$(config "$(db_url kh_bench_clicks)" '
[callback]
allowed_hosts = ["app.example-kenar.ir"]
fallback_url = "https://app.example-kenar.ir/start?post={post_token}"
signing_key = "bench-signing-key-0123456789abcdefghijk"
[[callback.rules]]
name = "buyer-order"
data = { role = "buyer" }
url = "https://app.example-kenar.ir/divar/landing?post={post_token}&order={data.order_id}&side={side}"')
  start_server "$cfg"
  echo "== clicks: 200/s for 60 s (legacy and v2 bodies in turn), PostgreSQL" | tee "$out/clicks.txt"
  target/release/examples/loadgen --url "http://127.0.0.1:$port/callbacks/divar" \
    --rate 200 --seconds 60 --warmup-seconds 5 --header "authorization:$key" \
    --body-file tests/fixtures/legacy_button_click.json \
    --body-file tests/fixtures/open_server_link_v2.json | tee -a "$out/clicks.txt"
  psql -qtA "$(db_url kh_bench_clicks)" -c "select 'clicks stored: ' || count(*) from click" | tee -a "$out/clicks.txt"
  stop_server
}

# The read benchmark's data set is about 720 MB with its indexes. With Debian's default
# shared_buffers (128 MB), PostgreSQL copies most pages from the OS cache again on every
# query; a database sized for its data keeps them in its own cache. On the local cluster
# (root, no KENAR_HOOK_TEST_DATABASE_URL) the read benchmark sets shared_buffers = 1GB for
# its duration and puts the earlier setting back when it ends.
tuned=""
as_postgres() { su postgres -c "psql -qXtA -v ON_ERROR_STOP=1 -d postgres" <<<"$1"; }
restart_cluster() {
  pg_ctlcluster "$(ls /usr/lib/postgresql | sort -n | tail -n 1)" main restart
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  echo "PostgreSQL did not come back" >&2
  exit 1
}
tune_postgres() {
  if [ "$(id -u)" != 0 ] || [ -n "${KENAR_HOOK_TEST_DATABASE_URL:-}" ]; then
    echo "note: not the local cluster; using its shared_buffers as they are" >&2
    return 0
  fi
  local bytes
  bytes=$(as_postgres "select setting::bigint * 8192 from pg_settings where name = 'shared_buffers'")
  [ "$bytes" -ge 1073741824 ] && return 0
  # An earlier ALTER SYSTEM value is put back as it was; otherwise the setting is reset.
  tuned=$(as_postgres "select case when sourcefile like '%postgresql.auto.conf'
    then 'set shared_buffers = ''' || current_setting('shared_buffers') || ''''
    else 'reset shared_buffers' end from pg_settings where name = 'shared_buffers'")
  as_postgres "alter system set shared_buffers = '1GB'"
  restart_cluster
}
untune_postgres() {
  if [ -n "$tuned" ]; then as_postgres "alter system $tuned"; tuned=""; restart_cluster; fi
}

bench_read() {
  local url; url=$(db_url kh_bench)
  tune_postgres
  seed_read_data "$url"
  start_server "$(config "$url" "")"
  {
    echo "== PostgreSQL shared_buffers: $(psql -qtA "$url" -c 'show shared_buffers')"
    route="/api/v1/conversations/{id}/messages"
    # Every path once, unmeasured: opens the pool's connections and reads the data set into
    # PostgreSQL's cache, as a server that has been running would have it.
    echo "== warm-up pass over every path (not counted)"
    target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "$out/conversation_pages.txt" \
      --rate 2000 --seconds 10 --warmup-seconds 0 --header "authorization:Bearer $token" | grep statuses
    buckets "$route" >"$out/buckets.before"
    for run in 1 2 3; do
      echo "== one conversation's 50-message page at random depths: 2000/s for 30 s (run $run)"
      target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "$out/conversation_pages.txt" \
        --rate 2000 --seconds 30 --warmup-seconds 5 --header "authorization:Bearer $token"
    done
    buckets "$route" >"$out/buckets.after"
    echo "== runs 1 to 3 measured inside the server (http_request_duration_seconds): share answered within"
    paste -d ' ' "$out/buckets.before" "$out/buckets.after" \
      | awk '{le[NR]=$1; n[NR]=$4-$2} END {for (i=1;i<=NR;i++) if (le[i] <= 0.01 || le[i] == "+Inf") printf "  %s s: %.3f%% of %d\n", le[i], 100*n[i]/n[NR], n[NR]}'
    echo "== GET /messages?post_token= first page: 500/s for 30 s"
    target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "$out/post_first_pages.txt" \
      --rate 500 --seconds 30 --warmup-seconds 5 --header "authorization:Bearer $token"
  } | tee "$out/read.txt"
  stop_server
  explain "$url" | tee "$out/explain.txt"
}

buckets() { # route: "le count" lines of its latency histogram
  curl -s http://127.0.0.1:19090/metrics | grep "^http_request_duration_seconds_bucket{route=\"$1\"" \
    | sed -E 's/.*le="([^"]+)"} ([0-9]+)/\1 \2/'
}

explain() { # database url
  local conv deep post
  conv=$(psql -qtA "$1" -c "select conversation_id from message where id = 'bench-000007-000000'")
  deep=$(psql -qtA "$1" -c "select to_char(sent_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') from message where id = 'bench-000007-002000'")
  post=BP000007
  psql -q "$1" <<SQL
\echo == a deep page of one conversation (GET /conversations/{id}/messages?cursor=...)
explain (analyze, buffers, costs off) select seq, id, source, event_type, conversation_id, post_token, message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, sent_at_raw, received_at, data::text as data, metadata::text as metadata, raw_body from message where conversation_id = '$conv' and (sent_at, id) > ('$deep', 'bench-000007-002000') order by sent_at asc, id asc limit 51;
\echo == first page of a post (GET /messages?post_token=...)
explain (analyze, buffers, costs off) select seq, id, source, event_type, conversation_id, post_token, message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, sent_at_raw, received_at, data::text as data, metadata::text as metadata, raw_body from message where post_token = '$post' order by sent_at asc, id asc limit 51;
\echo == conversations of a post (GET /conversations?post_token=...)
explain (analyze, buffers, costs off) select * from conversation where post_token = '$post' order by last_message_at desc, id desc limit 51;
SQL
}

seed_read_data() { # database url: the read benchmark's 1,000,000 messages, built once
  local have=0
  if psql -qtA "$admin" -c "select 1 from pg_database where datname = 'kh_bench'" | grep -q 1; then
    have=$(psql -qtA "$1" -c "select count(*) from message" 2>/dev/null || echo 0)
  fi
  if [ "$have" != 1000000 ]; then
    psql -q "$admin" -c "drop database if exists kh_bench" -c "create database kh_bench"
    target/release/examples/seed --database-url "$1" --messages 1000000 --conversations 20000 --posts 1000 --out "$out"
    psql -q "$1" -c "vacuum analyze conversation, message"
  else
    target/release/examples/seed --database-url "$1" --messages 1000000 --conversations 20000 --posts 1000 --out "$out" --paths-only yes
  fi
}

# --- ingest -------------------------------------------------------------------------------
# wrk (closed loop, -t2) posts unique ~600-byte deliveries, half legacy CHAT_MESSAGE and half
# NEW_MESSAGE with Persian text over 5,000 conversations, built by scripts/ingest/wrk.lua: a
# post per conversation, and again (the *_posts700_* scenarios) on 700 posts, as apps receive
# them (several conversations on each post). The server runs with the settings users run
# (log level info, pretty logs to a file, metrics on); only the listen addresses, the key and
# the database differ. Each figure is set beside GET /healthz of the
# same binary under the same generator in the same invocation. Afterwards every scenario's
# rows are counted: at least every delivery answered 200 must be stored (redeliveries: none).
ingest_secs=${INGEST_SECONDS:-10}
ingest_runs=${INGEST_RUNS:-3}
ingest_config() { # name, database url, port, metrics port, extra toml
  cat >"$out/ingest-$1.toml" <<TOML
[server]
listen = "127.0.0.1:$3"
data_dir = "$out/ingest-data"
[database]
url = "$2"
[divar]
identification_keys = ["$key"]
[metrics]
listen = "127.0.0.1:$4"
$5
TOML
  echo "$out/ingest-$1.toml"
}
# The servers' pids are kept in a file: the scenarios run in a pipeline's subshell, and the
# exit trap must still find them.
start_ingest() { # config, port: starts one more server (KENAR_HOOK_BIN: another build)
  "${KENAR_HOOK_BIN:-target/release/kenar-hook}" --config "$1" >>"$out/server-ingest.log" 2>&1 &
  echo $! >>"$out/ingest.pids"
  wait_healthy "$2" "$out/server-ingest.log"
}
stop_ingest() { # prints the peak RSS (MiB) of every server started, then stops them
  local p
  [ -f "$out/ingest.pids" ] || return 0
  for p in $(cat "$out/ingest.pids"); do
    echo "$(($(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0) / 1024))"
    kill -TERM "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  done
  rm -f "$out/ingest.pids"
}
wrk_run() { # scenario, run, connections, threads, port, run id, wrap, path[, posts] -> RESULT line
  INGEST_RUN="$6" INGEST_WRAP="$7" INGEST_PATH="$8" INGEST_KEY="$key" INGEST_POSTS="${9:-0}" \
    wrk -t"$4" -c"$3" -d"${ingest_secs}s" --timeout 10s -s scripts/ingest/wrk.lua \
    "http://127.0.0.1:$5$8" | grep '^RESULT' | sed "s/^RESULT/$1 run=$2/"
}
steady_run() { # scenario, run, port, run id -> the same fields from loadgen at 1,000/s
  target/release/examples/loadgen --url "http://127.0.0.1:$3/webhooks/divar" --rate 1000 \
    --seconds "$ingest_secs" --warmup-seconds 2 --unique "$4" --header "authorization:$key" \
    --header "content-type:application/json" \
    --body-file scripts/ingest/legacy.json --body-file scripts/ingest/events.json \
    | awk -v s="$1" -v r="$2" '
      /^requests/ {n=$2} /^target rate/ {rate=$5; sub("/s","",rate)}
      /^statuses/ {ok=0; if (match($0, /200: [0-9]+/)) ok=substr($0, RSTART+5, RLENGTH-5)}
      /^latency/ {printf "%s run=%s requests=%d seconds=0 rate=%s non2xx=%d socket_errors=0 p50_ms=%s p99_ms=%s max_ms=%s\n", s, r, n, rate, n-ok, $4, $8, $12}'
}
pg_count() { psql -qtA "$1" -c "select count(*) from message"; }
# Where each millisecond of a delivery goes: the server's per-stage histograms
# (kenar_ingest_stage_seconds) and the whole request's, taken before and after a scenario.
metrics_snapshot() { curl -s "http://127.0.0.1:$1/metrics"; }
staged() { # metrics port, scenario, command...: runs it, then one "stages" line of its deltas
  local mport=$1 scenario=$2 before
  shift 2
  before=$(metrics_snapshot "$mport")
  "$@"
  python3 - "$scenario" <(echo "$before") <(metrics_snapshot "$mport") <<'PY'
import re, sys
def read(path):
    v = {}
    for line in open(path):
        m = re.match(r'kenar_sqlite_log_restart_seconds_(sum|count) (\S+)$', line)
        if m:
            v[('restart', m.group(1), None)] = float(m.group(2))
            continue
        m = re.match(r'(kenar_ingest_stage_seconds|http_request_duration_seconds)_(bucket|sum|count)\{(.*)\} (\S+)$', line)
        if not m: continue
        name, kind, labels, value = m.groups()
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if name == 'http_request_duration_seconds':
            if lab.get('route') != '/webhooks/divar': continue
            stage = 'request'
        else:
            stage = lab['stage']
        key = (stage, kind, lab.get('le'))
        v[key] = v.get(key, 0.0) + float(value)
    return v
before, after = read(sys.argv[2]), read(sys.argv[3])
d = {k: after[k] - before.get(k, 0.0) for k in after}
out = []
for stage in ['prepare', 'queue', 'commit', 'answer', 'request']:
    n = d.get((stage, 'count', None), 0)
    if n <= 0: continue
    mean = d[(stage, 'sum', None)] / n * 1e3
    buckets = sorted((float(k[2]), c) for k, c in d.items() if k[0] == stage and k[1] == 'bucket' and k[2] != '+Inf')
    p99 = next((le * 1e3 for le, c in buckets if c >= 0.99 * n), float('inf'))
    out.append(f"{stage}_mean_ms={mean:.3f} {stage}_p99_le_ms={p99:g}")
    if stage == 'request':
        # The slowest request's bucket, and how many took over 100 ms: a stall holds every
        # connection at once, and wrk's p99 shows it more than these counts (see
        # docs/benchmarks.md, "The generator's p99 and the server's").
        slowest = next((le * 1e3 for le, c in buckets if c >= n), float('inf'))
        over = n - next((c for le, c in buckets if le >= 0.1), n)
        out.append(f"request_max_le_ms={slowest:g} requests_over_100ms={over:g}")
# SQLite: the log's restarts in the run, and how long batches waited for them in all.
if sys.argv[1].startswith('sqlite'):
    out.append(f"log_restarts={d.get(('restart', 'count', None), 0):g} "
               f"log_restart_wait_ms={d.get(('restart', 'sum', None), 0) * 1e3:.0f}")
print(f"stages {sys.argv[1]} " + " ".join(out))
PY
}
counted() { # count command, its argument, scenario, command...: runs it, then "rows SCENARIO BEFORE AFTER"
  local count=$1 where=$2 scenario=$3 before after
  shift 3
  before=$($count "$where"); "$@"; after=$($count "$where")
  echo "rows $scenario $before $after"
}
sqlite_count() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from message').fetchone()[0])" "$1"; }
answered_200() { # scenario: sum of 2xx answers of its runs
  awk -v s="$1" '$1 == s {for (i=2;i<=NF;i++) {split($i,kv,"="); f[kv[1]]=kv[2]} n += f["requests"] - f["non2xx"]} END {print n+0}' "$out/ingest-runs.txt"
}
check_count() { # scenario, rows added, "unique" or "duplicate"
  local ok
  ok=$(answered_200 "$1")
  if [ "$3" = duplicate ]; then
    [ "$2" = 0 ] && echo "check $1: $ok answered 200, no row added: ok" \
      || echo "check $1: FAILED, redeliveries added $2 rows"
  elif [ "$2" -ge "$ok" ] && [ "$ok" -gt 0 ]; then
    echo "check $1: $ok answered 200, $2 rows added: ok"
  else
    echo "check $1: FAILED, $ok answered 200 and $2 rows added"
  fi
}

bench_ingest() {
  command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
  local src; src=$(db_url kh_bench)
  # PostgreSQL sized as for the read benchmark (shared_buffers = 1GB, restored afterwards):
  # the pre-filled tables and indexes do not fit Debian's default 128 MB.
  tune_postgres
  seed_read_data "$src"
  local db=kh_bench_ingest url; url=$(db_url kh_bench_ingest)
  # A copy of the read benchmark's 1,000,000 messages, so inserts meet full indexes.
  psql -q "$admin" -c "drop database if exists $db" -c "create database $db template kh_bench"
  rm -rf "$out/ingest-data" "$out/server-ingest.log" "$out/ingest-runs.txt" "$out/ingest.pids"
  local tag; tag=$(date +%s)
  local before after r rows
  {
    echo "== PostgreSQL, default settings, 1,000,000 messages stored; wrk -t2, ${ingest_secs} s per run"
    start_ingest "$(ingest_config pg "$url" $port 19090 "")" $port
    wrk_run warmup 0 64 2 $port "warm$tag" 0 /webhooks/divar >/dev/null
    wrk_run prime 0 256 2 $port "dup$tag" 2000 /webhooks/divar >/dev/null
    for r in $(seq 1 "$ingest_runs"); do
      wrk_run pg_healthz_c256 "$r" 256 2 $port "" 0 /healthz
      staged 19090 pg_ingest_c256 counted pg_count "$url" pg_ingest_c256 wrk_run pg_ingest_c256 "$r" 256 2 $port "u256$tag$r" 0 /webhooks/divar
      wrk_run pg_healthz_c64 "$r" 64 2 $port "" 0 /healthz
      staged 19090 pg_ingest_c64 counted pg_count "$url" pg_ingest_c64 wrk_run pg_ingest_c64 "$r" 64 2 $port "u64$tag$r" 0 /webhooks/divar
      staged 19090 pg_posts700_c256 counted pg_count "$url" pg_posts700_c256 wrk_run pg_posts700_c256 "$r" 256 2 $port "p256$tag$r" 0 /webhooks/divar 700
      staged 19090 pg_posts700_c64 counted pg_count "$url" pg_posts700_c64 wrk_run pg_posts700_c64 "$r" 64 2 $port "p64$tag$r" 0 /webhooks/divar 700
      counted pg_count "$url" pg_redeliver_c256 wrk_run pg_redeliver_c256 "$r" 256 2 $port "dup$tag" 2000 /webhooks/divar
      staged 19090 pg_steady_1000 counted pg_count "$url" pg_steady_1000 steady_run pg_steady_1000 "$r" $port "s$tag$r"
    done
    echo "rss pg $(stop_ingest)"

    echo "== PostgreSQL, ingest.batch_max = 1"
    start_ingest "$(ingest_config pg1 "$url" $port 19090 $'[ingest]\nbatch_max = 1')" $port
    for r in $(seq 1 "$ingest_runs"); do
      counted pg_count "$url" pg_batch1_c256 wrk_run pg_batch1_c256 "$r" 256 2 $port "b1$tag$r" 0 /webhooks/divar
    done
    stop_ingest >/dev/null

    echo "== PostgreSQL, two replicas, wrk -t1 -c128 on each at once"
    start_ingest "$(ingest_config pga "$url" $port 19090 "")" $port
    start_ingest "$(ingest_config pgb "$url" $((port + 1)) 19091 "")" $((port + 1))
    for r in $(seq 1 "$ingest_runs"); do
      before=$(pg_count "$url")
      wrk_run pg_replica_a "$r" 128 1 $port "ra$tag$r" 0 /webhooks/divar >"$out/replica-a" &
      local other=$!
      wrk_run pg_replica_b "$r" 128 1 $((port + 1)) "rb$tag$r" 0 /webhooks/divar >"$out/replica-b"
      wait "$other"
      after=$(pg_count "$url")
      cat "$out/replica-a" "$out/replica-b"
      paste -d ' ' "$out/replica-a" "$out/replica-b" | awk -v r="$r" '{
        for (i=1;i<=NF;i++) {split($i,kv,"="); v[i]=kv[2]}
        printf "pg_two_replicas run=%s requests=%d seconds=%s rate=%.0f non2xx=%d socket_errors=%d p50_ms=%s p99_ms=%s max_ms=%s\n",
          r, v[3]+v[13], v[4], v[5]+v[15], v[6]+v[16], v[7]+v[17], (v[8]>v[18]?v[8]:v[18]), (v[9]>v[19]?v[9]:v[19]), (v[10]>v[20]?v[10]:v[20])}'
      echo "rows pg_two_replicas $before $after"
    done
    echo "rss pg_replicas $(stop_ingest | tr '\n' ' ')"

    echo "== SQLite, default settings (new file)"
    local file="$out/ingest-data/kenar-hook.db"
    start_ingest "$(ingest_config sqlite "sqlite://$file" $port 19090 "")" $port
    wrk_run warmup 0 64 2 $port "warms$tag" 0 /webhooks/divar >/dev/null
    for r in $(seq 1 "$ingest_runs"); do
      wrk_run sqlite_healthz_c64 "$r" 64 2 $port "" 0 /healthz
      staged 19090 sqlite_ingest_c64 counted sqlite_count "$file" sqlite_ingest_c64 wrk_run sqlite_ingest_c64 "$r" 64 2 $port "q64$tag$r" 0 /webhooks/divar
      staged 19090 sqlite_posts700_c64 counted sqlite_count "$file" sqlite_posts700_c64 wrk_run sqlite_posts700_c64 "$r" 64 2 $port "qp64$tag$r" 0 /webhooks/divar 700
      staged 19090 sqlite_steady_1000 counted sqlite_count "$file" sqlite_steady_1000 steady_run sqlite_steady_1000 "$r" $port "qs$tag$r"
    done
    echo "rss sqlite $(stop_ingest)"
  } | tee "$out/ingest-runs.txt"
  {
    echo "== summary: median (min-max) of $ingest_runs runs; rates per second, latencies in ms"
    for s in $(awk '$1 ~ /^(pg|sqlite)_/ && $2 ~ /^run=/ {print $1}' "$out/ingest-runs.txt" | awk '!seen[$0]++'); do
      awk -v s="$s" '$1 == s {for (i=2;i<=NF;i++) {split($i,kv,"="); f[kv[1]]=kv[2]}
          n++; rate[n]=f["rate"]; p50[n]=f["p50_ms"]; p99[n]=f["p99_ms"]; bad+=f["non2xx"]+f["socket_errors"]}
        function med(a, n,  i, j, t) {for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (a[j]+0 < a[i]+0) {t=a[i]; a[i]=a[j]; a[j]=t}
          return sprintf("%s (%s-%s)", a[int((n+1)/2)], a[1], a[n])}
        END {printf "%-20s rate %-24s p50 %-20s p99 %-22s errors %d\n", s, med(rate,n), med(p50,n), med(p99,n), bad}' "$out/ingest-runs.txt"
    done
    awk '$1 ~ /^pg_healthz_c256|^pg_ingest_c256|^pg_healthz_c64|^pg_ingest_c64|^pg_posts700_|^sqlite_healthz_c64|^sqlite_ingest_c64|^sqlite_posts700_|^pg_batch1_c256|^pg_redeliver_c256|^pg_two_replicas/ && $2 ~ /^run=/ {
        split($5,kv,"="); sum[$1]+=kv[2]; n[$1]++}
      END {
        printf "ratio PostgreSQL c256 ingest / healthz     %.3f (target >= 0.33)\n", sum["pg_ingest_c256"]/n["pg_ingest_c256"] / (sum["pg_healthz_c256"]/n["pg_healthz_c256"])
        printf "ratio PostgreSQL c64 ingest / healthz      %.3f (target >= 0.25)\n", sum["pg_ingest_c64"]/n["pg_ingest_c64"] / (sum["pg_healthz_c64"]/n["pg_healthz_c64"])
        printf "ratio SQLite c64 ingest / healthz          %.3f (target >= 0.25)\n", sum["sqlite_ingest_c64"]/n["sqlite_ingest_c64"] / (sum["sqlite_healthz_c64"]/n["sqlite_healthz_c64"])
        printf "ratio the same on 700 posts: PostgreSQL c256 %.3f, c64 %.3f, SQLite c64 %.3f\n", sum["pg_posts700_c256"]/n["pg_posts700_c256"] / (sum["pg_healthz_c256"]/n["pg_healthz_c256"]), sum["pg_posts700_c64"]/n["pg_posts700_c64"] / (sum["pg_healthz_c64"]/n["pg_healthz_c64"]), sum["sqlite_posts700_c64"]/n["sqlite_posts700_c64"] / (sum["sqlite_healthz_c64"]/n["sqlite_healthz_c64"])
        printf "ratio default / batch_max = 1 (c256)       %.1f (target >= 5)\n", sum["pg_ingest_c256"]/n["pg_ingest_c256"] / (sum["pg_batch1_c256"]/n["pg_batch1_c256"])
        printf "ratio redeliveries / first deliveries      %.2f (target >= 1)\n", sum["pg_redeliver_c256"]/n["pg_redeliver_c256"] / (sum["pg_ingest_c256"]/n["pg_ingest_c256"])
        printf "ratio two replicas / one replica (c256)    %.2f (target >= 1)\n", sum["pg_two_replicas"]/n["pg_two_replicas"] / (sum["pg_ingest_c256"]/n["pg_ingest_c256"])
      }' "$out/ingest-runs.txt"
    grep '^rss' "$out/ingest-runs.txt" | sed 's/^rss \([^ ]*\)/peak RSS MiB (\1)/'
    echo "== where a delivery's time goes (server side, per run: mean, and the bucket holding p99)"
    grep '^stages' "$out/ingest-runs.txt"
    echo "== stored-row checks"
    for s in pg_ingest_c256 pg_ingest_c64 pg_posts700_c256 pg_posts700_c64 pg_steady_1000 pg_batch1_c256 pg_two_replicas sqlite_ingest_c64 sqlite_posts700_c64 sqlite_steady_1000; do
      rows=$(awk -v s="$s" '$1 == "rows" && $2 == s {a += $4 - $3} END {print a+0}' "$out/ingest-runs.txt")
      check_count "$s" "$rows" unique
    done
    rows=$(awk '$1 == "rows" && $2 == "pg_redeliver_c256" {a += $4 - $3} END {print a+0}' "$out/ingest-runs.txt")
    check_count pg_redeliver_c256 "$rows" duplicate
  } | tee "$out/ingest.txt"
  psql -q "$admin" -c "drop database if exists $db"
  ! grep -q FAILED "$out/ingest.txt"
}

# --- forward ------------------------------------------------------------------------------
# One endpoint pointing at examples/receiver.rs on loopback, which answers 200 (or 503 while
# told to be down) and measures each record's lag (its received_at to its arrival), duplicates
# and per-conversation seq order. Deliveries are NEW_MESSAGEs over 5,000 conversations from
# loadgen (open loop). retry_base_delay_ms is 1 s here (5 s by default), so that the outage's
# catch-up is not mostly backoff; everything else is the default.
rpid=""
receiver=127.0.0.1:18281
stop_receiver() {
  if [ -n "$rpid" ]; then kill -TERM "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; rpid=""; fi
}
receiver_stat() { # field of the receiver's figures (dotted path)
  curl -s "http://$receiver/stats" | python3 -c "import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split('.'): v=v[k]
print(v)" "$1"
}
wait_delivered() { # count, seconds at most
  local i
  for i in $(seq 1 "$2"); do
    [ "$(receiver_stat delivered)" -ge "$1" ] && return 0
    sleep 1
  done
  echo "only $(receiver_stat delivered) of $1 delivered within $2 s"
}
send_messages() { # rate, seconds, run id
  target/release/examples/loadgen --url "http://127.0.0.1:$port/webhooks/divar" --rate "$1" \
    --seconds "$2" --warmup-seconds 0 --unique "$3" --header "authorization:$key" \
    --header "content-type:application/json" --body-file scripts/ingest/events.json | grep -E '^(requests|statuses|no answer|latency)'
}
bench_forward() {
  local db=kh_bench_forward url tag before after stored cfg
  # Ports of its own: the other modes may be running on the same machine.
  port=18280
  metrics_port=19290
  url=$(db_url $db)
  tag=$(date +%s)
  psql -q "$admin" -c "drop database if exists $db" -c "create database $db"
  target/release/examples/receiver --listen "$receiver" >"$out/receiver.log" 2>&1 &
  rpid=$!
  cfg=$(config "$url" '
[forward]
allow_private_http = true
retry_base_delay_ms = 1000
[[forward.endpoints]]
name = "bench"
url = "http://'"$receiver"'/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"')
  start_server "$cfg"
  count() { psql -qtA "$url" -c "select count(*) from message"; }
  {
    echo "== lag: 1,000 messages/s for 60 s, the receiver answering 200 (PostgreSQL)"
    curl -s -X POST "http://$receiver/reset"
    before=$(count); send_messages 1000 60 "lag$tag"; after=$(count)
    stored=$((after - before)); wait_delivered "$stored" 60
    echo "stored $stored; receiver: $(curl -s "http://$receiver/stats")"

    echo "== throughput: 100,000 messages stored while the endpoint is paused, then resumed"
    target/release/kenar-hook --config "$cfg" forward pause bench
    sleep 2 # the service notices within a second
    before=$(count); send_messages 4000 25 "tp$tag"; after=$(count)
    stored=$((after - before))
    curl -s -X POST "http://$receiver/reset"
    target/release/kenar-hook --config "$cfg" forward resume bench
    wait_delivered "$stored" 300
    echo "stored $stored; receiver: $(curl -s "http://$receiver/stats")"

    echo "== outage: 500 messages/s for 90 s, the receiver answering 503 for the first 60 s"
    curl -s -X POST "http://$receiver/reset"
    curl -s -X POST "http://$receiver/down?seconds=60"
    before=$(count); send_messages 500 90 "out$tag"; after=$(count)
    stored=$((after - before)); wait_delivered "$stored" 600
    echo "stored $stored; receiver: $(curl -s "http://$receiver/stats")"
    target/release/kenar-hook --config "$cfg" forward status
  } 2>&1 | tee "$out/forward.txt"
  stop_server
  stop_receiver
  psql -q "$admin" -c "drop database if exists $db"
}

# --- reply ----------------------------------------------------------------------------------
# Replies in the answer: examples/receiver.rs --reply answers every push with a reply and also
# stands in for Divar's chatbot send. NEW_CHATBOT_MESSAGEs at 500/s for 60 s (PostgreSQL,
# default settings and log level), twice in one run: first the receiver answering without a
# reply (forwarding alone), then with one. Every message must get exactly one send; the figure
# is the time from kenar-hook receiving a message to the stand-in receiving its reply, beside
# the push's own lag in each phase.
reply_phase() { # label, receiver flags
  local before after stored i
  stop_receiver
  target/release/examples/receiver --listen "$receiver" $2 >"$out/receiver.log" 2>&1 &
  rpid=$!
  sleep 0.5
  echo "== $1: 500 chatbot messages/s for 60 s (PostgreSQL)"
  before=$(count)
  target/release/examples/loadgen --url "http://127.0.0.1:$port/webhooks/divar" --rate 500 \
    --seconds 60 --warmup-seconds 0 --unique "$1$tag" --header "authorization:$key" \
    --header "content-type:application/json" --body-file scripts/ingest/chatbot.json \
    | grep -E '^(requests|statuses|no answer|latency)'
  after=$(count)
  stored=$((after - before))
  wait_delivered "$stored" 120
  if [ -n "$2" ]; then
    for i in $(seq 1 120); do
      [ "$(receiver_stat divar.sends)" -ge "$stored" ] && break
      sleep 1
    done
    sleep 3 # a second send of any reply would come now
  fi
  python3 - "$1" "$stored" "$(curl -s "http://$receiver/stats")" <<'PY'
import json, sys
label, stored, s = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
lag = s["lag_ms"]
print(f"{label}: {stored} stored, {s['delivered']} pushed ({s['duplicates']} again); push lag "
      f"p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms")
d = s["divar"]
if d["sends"] or label == "replies":
    ok = d["sends"] == stored and d["messages_answered"] == stored and d["duplicates"] == 0
    r = d["received_to_sent_ms"]
    print(f"check: {d['sends']} sends for {d['messages_answered']} of {stored} messages, "
          f"{d['duplicates']} duplicates: {'ok' if ok else 'FAILED'}; received to sent "
          f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms (target <= 1000), max {r['max']:.1f} ms")
PY
}
bench_reply() {
  local db=kh_bench_reply url cfg
  port=18290
  metrics_port=19291
  url=$(db_url $db)
  tag=$(date +%s)
  psql -q "$admin" -c "drop database if exists $db" -c "create database $db"
  cfg=$(config "$url" '
[forward]
allow_private_http = true
[[forward.endpoints]]
name = "bench"
url = "http://'"$receiver"'/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"')
  KENAR_HOOK__LOG__LEVEL=info KENAR_HOOK__DIVAR__API_KEY=bench-api-key \
    KENAR_HOOK__DIVAR__OPEN_API_BASE_URL="http://$receiver" start_server "$cfg"
  count() { psql -qtA "$url" -c "select count(*) from message"; }
  {
    reply_phase pushes ""
    reply_phase replies --reply
    psql -qtA "$url" -c "select status, count(*) from outbox group by status order by status"
  } 2>&1 | tee "$out/reply.txt"
  stop_server
  stop_receiver
  psql -q "$admin" -c "drop database if exists $db"
  ! grep -q FAILED "$out/reply.txt"
}

# --- slow -----------------------------------------------------------------------------------
# Slow is not down: 1,000 NEW_MESSAGEs/s for 40 s on PostgreSQL while another connection holds
# the writers' advisory lock for 1.5 s every 8 s (five stalls), so every commit waits as in a
# checkpoint's long fsync while the database answers. Nothing may be answered 503.
bench_slow() {
  local db=kh_bench_slow url tag before after i lock=7738712899516395371
  port=18380
  metrics_port=19390
  url=$(db_url $db)
  tag=$(date +%s)
  psql -q "$admin" -c "drop database if exists $db" -c "create database $db"
  start_server "$(config "$url" '')"
  {
    echo "== slow commits: 1,000 messages/s for 40 s, commits stalled 1.5 s five times (PostgreSQL)"
    before=$(psql -qtA "$url" -c "select count(*) from message")
    (
      for i in 1 2 3 4 5; do
        sleep 6.5
        psql -qtA "$url" -c "select pg_advisory_lock($lock)" -c "select pg_sleep(1.5)" \
          -c "select pg_advisory_unlock($lock)" >/dev/null
      done
    ) &
    local stalls=$!
    send_messages 1000 40 "slow$tag"
    wait "$stalls"
    after=$(psql -qtA "$url" -c "select count(*) from message")
    echo "stored $((after - before))"
    echo "server: $(grep -c 'a commit is slow' "$out/server.log") slow-commit warnings, $(grep -c 'does not answer' "$out/server.log") breaker openings"
  } 2>&1 | tee "$out/slow.txt"
  stop_server
  psql -q "$admin" -c "drop database if exists $db"
}

# --- compare ------------------------------------------------------------------------------
# This build against another (`scripts/bench.sh compare PATH/TO/kenar-hook`), alternately,
# COMPARE_ROUNDS rounds (4 by default; which build goes first alternates too), each server
# fresh on one copy of the 1,000,000-message database and driven by this build's load
# generators: wrk on /healthz and on ingest at 256 connections (10 s each;
# ratio = ingest / healthz of the same server), then the read API at 1,000 pages/s for 20 s
# after a 5 s warm-up, with the server's CPU per page (user + system, from /proc).
# COMPARE_INGEST=0 leaves out /healthz and ingest: the read step then runs on a database no
# server has just written to.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
read_pages() { # seconds -> loadgen's output
  target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "$out/conversation_pages.txt" \
    --rate 1000 --seconds "$1" --warmup-seconds 0 --header "authorization:Bearer $token"
}
bench_compare() { # the other build's binary
  local other=${1:-}
  [ -n "$other" ] && [ -x "$other" ] || { echo "usage: scripts/bench.sh compare PATH/TO/OTHER/kenar-hook" >&2; exit 2; }
  command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
  tune_postgres
  seed_read_data "$(db_url kh_bench)"
  # Each build on a copy of its own: the two may differ in migrations, and neither may
  # meet the other's.
  local build
  for build in other this; do
    psql -q "$admin" -c "drop database if exists kh_bench_compare_$build" \
      -c "create database kh_bench_compare_$build template kh_bench"
    # An older build refuses a database that has migrations it does not know; they only
    # add, so its copy forgets them (COMPARE_OTHER_REV: the commit the other build is of).
    if [ $build = other ] && [ -n "${COMPARE_OTHER_REV:-}" ]; then
      local known
      known=$(git ls-tree --name-only "$COMPARE_OTHER_REV" migrations/postgres/ \
        | sed -E 's|.*/0*([0-9]+)_.*|\1|' | paste -sd, -)
      psql -q "$(db_url kh_bench_compare_other)" \
        -c "delete from _sqlx_migrations where version not in ($known)"
    fi
    ingest_config "compare-$build" "$(db_url "kh_bench_compare_$build")" $port 19090 "[api]
tokens = [\"$token\"]
rate_limit_per_second = 1000000
rate_limit_burst = 1000000" >/dev/null
  done
  rm -rf "$out/ingest-data" "$out/server-ingest.log" "$out/ingest.pids"
  # The other build runs in an empty folder: an older one would read this tree's
  # config/default.toml as a settings layer, and its newer keys as typos.
  mkdir -p "$out/other-cwd"
  printf '#!/bin/sh\ncd "%s" && exec "%s" "$@"\n' "$PWD/$out/other-cwd" "$(realpath "$other")" \
    >"$out/other-bin.sh"
  chmod +x "$out/other-bin.sh"
  for build in other this; do
    sed -i "s|^data_dir = \"$out/|data_dir = \"$PWD/$out/|" "$out/ingest-compare-$build.toml"
  done
  local cfg tag r spid t0 t1 hz rounds=${COMPARE_ROUNDS:-4}
  hz=$(getconf CLK_TCK)
  tag=$(date +%s)
  {
    echo "== other: $other; this: target/release/kenar-hook ($(git rev-parse --short HEAD))"
    for r in $(seq 1 "$rounds"); do
      # The second server of a round meets the database still busy with the first one's
      # ingest (autovacuum, checkpoints): the order alternates, so neither build always
      # comes second.
      for build in $(if [ $((r % 2)) = 1 ]; then echo other this; else echo this other; fi); do
        if [ $build = other ]; then export KENAR_HOOK_BIN=$out/other-bin.sh; else unset KENAR_HOOK_BIN; fi
        cfg="$PWD/$out/ingest-compare-$build.toml"
        start_ingest "$cfg" $port
        spid=$(tail -n 1 "$out/ingest.pids")
        if [ "${COMPARE_INGEST:-1}" = 1 ]; then
          wrk_run "${build}_healthz_c256" "$r" 256 2 $port "" 0 /healthz
          wrk_run "${build}_ingest_c256" "$r" 256 2 $port "cmp$build$tag$r" 0 /webhooks/divar
        fi
        read_pages 5 >/dev/null
        t0=$(cpu_ticks "$spid")
        read_pages 20 >"$out/compare-read.txt"
        t1=$(cpu_ticks "$spid")
        awk -v b="$build" -v r="$r" -v t=$((t1 - t0)) -v hz="$hz" '
          /^requests/ {n=$2} /^statuses/ {ok=0; if (match($0, /200: [0-9]+/)) ok=substr($0, RSTART+5, RLENGTH-5)}
          /^latency/ {p99=$8}
          END {printf "%s_read run=%s pages=%d non200=%d cpu_ms_per_page=%.3f p99_ms=%s\n", b, r, n, n-ok, t*1000/hz/n, p99}' \
          "$out/compare-read.txt"
        stop_ingest >/dev/null
      done
    done
    unset KENAR_HOOK_BIN
  } | tee "$out/compare-runs.txt"
  {
    echo "== summary: mean of $rounds rounds"
    awk -v n="$rounds" '$2 ~ /^run=/ {for (i=2;i<=NF;i++) {split($i,kv,"="); f[kv[1]]=kv[2]}
        if ($1 ~ /_c256$/) {rate[$1]+=f["rate"]; bad+=f["non2xx"]+f["socket_errors"]}
        if ($1 ~ /_read$/) {cpu[$1]+=f["cpu_ms_per_page"]; p99[$1]+=f["p99_ms"]; bad+=f["non200"]}}
      END {split("other this", bs, " ")
        for (i=1;i<=2;i++) {x=bs[i]
          hz = rate[x "_healthz_c256"]
          printf "%-5s ingest / healthz (c256) %s   read CPU per page %.3f ms   read p99 %.2f ms\n", x,
            hz ? sprintf("%.3f", rate[x "_ingest_c256"]/hz) : "-", cpu[x "_read"]/n, p99[x "_read"]/n}
        printf "errors (non-2xx, socket errors, non-200 pages): %d\n", bad}' "$out/compare-runs.txt"
  } | tee "$out/compare.txt"
  psql -q "$admin" -c "drop database if exists kh_bench_compare_other" \
    -c "drop database if exists kh_bench_compare_this"
}

# --- scale --------------------------------------------------------------------------------
# A year of a busy app: SCALE_MESSAGES (20,000,000 by default) messages over the 200 days
# before 2025-03-01 (older than every delivery the load tools send, so pruning the oldest
# days removes seeded conversations only, as retention removes old ones while new ones grow),
# half legacy and half events API, in conversations of about 20 messages (ten at a time
# interleaved) on posts of 20 conversations, seeded with set-based SQL (indexes built after
# the load), then measured in one run: reads at 2,000/s and ingest against the same binary's
# /healthz, each beside the 1,000,000-message copy of the read benchmark, 1,000 deliveries/s
# alone, while the oldest PRUNE_DAYS days are pruned and alone again, and the size per
# million messages.
scale_seed() { # database url, messages
  psql -q "$admin" -c "drop database if exists kh_scale" -c "create database kh_scale"
  target/release/kenar-hook --config "$(ingest_config scale "$1" $port 19090 "")" migrate
  psql -q -v ON_ERROR_STOP=1 "$1" <<SQL
set maintenance_work_mem = '1GB';
alter table message drop constraint message_pkey, drop constraint message_seq_key;
drop index message_conversation_idx, message_post_idx, message_sent_idx, message_sender_idx, message_receiver_idx;
\timing on
insert into message (id, origin, source, event_type, conversation_id, post_token, message_type,
    text, sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, sent_at_raw,
    received_at, data, metadata, raw_body)
select 'scale-' || g, '', s.source, case when s.source = 'legacy' then 'CHAT_MESSAGE' else 'NEW_MESSAGE' end,
    'sc-' || c, 'SP' || (c % $(( $2 / 400 ))), 'TEXT', t,
    case when g % 3 = 0 then 'SELLER' else 'BUYER' end, 'HUMAN',
    case when s.source = 'legacy' then 'user-' || (c % $(( $2 / 50 ))) end,
    case when s.source = 'legacy' then 'SELLER' end,
    case when s.source = 'legacy' then 'seller-' || (c % $(( $2 / 400 ))) end,
    at, null, at + interval '1 second', null, null,
    convert_to('{"type":"NEW_MESSAGE","new_message":{"id":"scale-' || g || '","conversation":{"id":"sc-'
      || c || '","type":"POST","post_token":"SP' || (c % $(( $2 / 400 ))) || '"},"sender":{"side":"BUYER","type":"HUMAN"},"type":"TEXT","sent_at":'
      || (extract(epoch from at) * 1000000)::bigint || ',"text":"' || t || '"}}', 'UTF8')
from generate_series(1, $2) g,
  lateral (select (g / 200) * 10 + g % 10 as c,
                  case when g % 2 = 0 then 'legacy' else 'events' end as source,
                  timestamptz '2025-03-01 00:00:00+00' - interval '200 days' + (g::float8 / $2) * interval '200 days' as at,
                  (array['سلام، وقت بخیر. این ماشین هنوز فروشی هست؟', 'قیمت نهایی چنده؟ امکان معاوضه هم هست؟',
                         'بله موجوده. فردا ساعت ۱۷ برای بازدید تشریف بیارید.', 'آدرس دقیق کجاست؟',
                         'Is the price negotiable?', 'ممنون، فردا تماس می‌گیرم.'])[g % 6 + 1] as t) s;
insert into conversation (id, kind, source, post_token, supply_user_id, demand_user_id,
    first_message_at, last_message_at, message_count)
select conversation_id, 'POST', min(source), min(post_token), min(receiver_id), min(sender_id),
    min(sent_at), max(sent_at), count(*) from message group by conversation_id;
alter table message add constraint message_pkey primary key (id, origin), add constraint message_seq_key unique (seq);
create index message_conversation_idx on message (conversation_id, sent_at, id);
create index message_post_idx on message (post_token, sent_at, id);
create index message_sent_idx on message (sent_at, id);
create index message_sender_idx on message (sender_id) where sender_id is not null;
create index message_receiver_idx on message (receiver_id) where receiver_id is not null;
vacuum analyze message, conversation;
SQL
}

scale_sizes() { # database url, label
  psql -qtA "$1" -c "select '$2 messages=' || count(*) || ' bytes_per_message=' ||
      round((pg_total_relation_size('message') + pg_total_relation_size('conversation'))::numeric / count(*))
      || ' heap+toast=' || round((pg_total_relation_size('message') - pg_indexes_size('message'))::numeric / count(*))
      || ' message_indexes=' || round(pg_indexes_size('message')::numeric / count(*))
      || ' conversation=' || round(pg_total_relation_size('conversation')::numeric / count(*))
      || ' MiB_per_million=' || round((pg_total_relation_size('message') + pg_total_relation_size('conversation'))::numeric / count(*) * 1000000 / 1048576)
    from message"
  psql -qtA "$1" -c "select '$2 index ' || indexrelname || '=' || pg_size_pretty(pg_relation_size(indexrelid))
    from pg_stat_user_indexes where relname = 'message' order by pg_relation_size(indexrelid) desc"
}

scale_read() { # label, paths file, rate
  target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "$2" --rate "$3" \
    --seconds 20 --warmup-seconds 5 --header "authorization:Bearer $token" \
    | awk -v s="$1" '/^statuses/ {st=$0} /^latency/ {print "read " s " " $0 "   " st}'
}

scale_reads() { # label prefix, paths file prefix: a warm-up pass, then the three reads
  echo "== reads at 2,000/s for 20 s each, $1 (warm-up pass first, not counted)"
  target/release/examples/loadgen --url "http://127.0.0.1:$port" --paths-file "${2}_conversation_pages.txt" \
    --rate 2000 --seconds 10 --warmup-seconds 0 --header "authorization:Bearer $token" >/dev/null
  scale_read "$1 conversation_page" "${2}_conversation_pages.txt" 2000
  scale_read "$1 post_conversations" "${2}_post_lists.txt" 2000
  scale_read "$1 text_search_in_post" "${2}_text_search.txt" 2000
}

# A steady run starts after a checkpoint and a pause, so that neither the one alone nor the
# one while pruning pays for the writes before it.
settled() { # database url
  if [ "$(id -u)" = 0 ] && [ -z "${KENAR_HOOK_TEST_DATABASE_URL:-}" ]; then
    as_postgres "checkpoint" >/dev/null
  else
    psql -q "$1" -c checkpoint 2>/dev/null || echo "note: no CHECKPOINT (needs pg_checkpoint)" >&2
  fi
  sleep 5
}

bench_scale() {
  command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
  local n=${SCALE_MESSAGES:-20000000} days=${PRUNE_DAYS:-5} url small tag cfg
  url=$(db_url kh_scale); small=$(db_url kh_scale_small); tag=$(date +%s)
  ingest_secs=${INGEST_SECONDS:-20}
  tune_postgres
  seed_read_data "$(db_url kh_bench)"
  psql -q "$admin" -c "drop database if exists kh_scale_small" -c "create database kh_scale_small template kh_bench"
  rm -rf "$out/ingest-data" "$out/server-ingest.log" "$out/ingest.pids"
  {
    local have=0
    if [ -n "${SCALE_REUSE:-}" ]; then
      have=$(psql -qtA "$url" -c "select count(*) from message where id like 'scale-%'" 2>/dev/null || echo 0)
    fi
    # SCALE_REUSE=1 measures again on the data set of an earlier run (its oldest days pruned).
    if [ "$have" -ge "$((n * 9 / 10))" ]; then
      echo "== reusing kh_scale: $have seeded messages left"
    else
      echo "== seeding $n messages"
      local t0=$SECONDS
      scale_seed "$url" "$n" 2>&1 | grep -E '^(Time|INSERT)' | paste -sd ' '
      echo "seeded in $((SECONDS - t0)) s"
    fi
    scale_sizes "$url" "size"
    local api=$'[api]\ntokens = ["'"$token"$'"]\nrate_limit_per_second = 1000000\nrate_limit_burst = 1000000'
    cfg=$(ingest_config scale "$url" $port 19090 "$api")
    python3 - "$n" "$out" <<'PY'
import random, sys
n, out = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
convs, posts = n // 20, n // 400
with open(f"{out}/scale_conversation_pages.txt", "w") as f:
    for _ in range(20000): f.write(f"/api/v1/conversations/sc-{rnd.randrange(convs)}/messages\n")
with open(f"{out}/scale_post_lists.txt", "w") as f:
    for _ in range(20000): f.write(f"/api/v1/conversations?post_token=SP{rnd.randrange(posts)}\n")
with open(f"{out}/scale_text_search.txt", "w") as f:
    for _ in range(20000): f.write(f"/api/v1/messages?post_token=SP{rnd.randrange(posts)}&q=%D9%82%DB%8C%D9%85%D8%AA\n")
PY
    # The same reads on the 1,000,000-message copy first, for a ratio taken in this run. Its
    # conversations hold 50 messages, these 20: the page is cut at 20 so both weigh the same.
    psql -qtA "$small" -c "select '/api/v1/conversations/' || id || '/messages?limit=20' from conversation order by random() limit 20000" >"$out/small_conversation_pages.txt"
    psql -qtA "$small" -c "select '/api/v1/conversations?post_token=' || post_token from conversation order by random() limit 20000" >"$out/small_post_lists.txt"
    sed 's|^/api/v1/conversations?post_token=\(.*\)|/api/v1/messages?post_token=\1\&q=%D9%82%DB%8C%D9%85%D8%AA|' "$out/small_post_lists.txt" >"$out/small_text_search.txt"
    start_ingest "$(ingest_config small "$small" $port 19090 "$api")" $port
    scale_reads small "$out/small"
    stop_ingest >/dev/null
    start_ingest "$cfg" $port
    scale_reads scale "$out/scale"
    stop_ingest >/dev/null
    echo "== ingest against the same binary's /healthz, wrk -t2 -c256, ${ingest_secs} s, 2 runs each size"
    start_ingest "$(ingest_config small "$small" $port 19090 "")" $port
    wrk_run warmup 0 64 2 $port "warmsm$tag" 0 /webhooks/divar >/dev/null
    for r in 1 2; do
      wrk_run small_healthz_c256 "$r" 256 2 $port "" 0 /healthz
      wrk_run small_ingest_c256 "$r" 256 2 $port "sm$tag$r" 0 /webhooks/divar
    done
    stop_ingest >/dev/null
    start_ingest "$cfg" $port
    wrk_run warmup 0 64 2 $port "warmsc$tag" 0 /webhooks/divar >/dev/null
    for r in 1 2; do
      wrk_run scale_healthz_c256 "$r" 256 2 $port "" 0 /healthz
      wrk_run scale_ingest_c256 "$r" 256 2 $port "sc$tag$r" 0 /webhooks/divar
    done
    echo "== 1,000 deliveries/s for ${ingest_secs} s: alone, while the oldest $days days are pruned, alone again"
    settled "$url"
    steady_run scale_steady_alone 1 $port "sa$tag"
    local oldest cut start end
    settled "$url"
    oldest=$(psql -qtA "$url" -c "select extract(epoch from now() - min(sent_at))::bigint from message")
    cut=$((oldest - days * 86400))
    # The prune starts 3 s into the run (after loadgen's 2 s warm-up), and times itself.
    (
      sleep 3
      start=$(date +%s.%N)
      target/release/kenar-hook --config "$cfg" prune --older-than "${cut}s" --kind messages --json >"$out/scale-prune.jsonl" 2>"$out/scale-prune.err"
      end=$(date +%s.%N)
      echo "$start $end" >"$out/scale-prune.time"
    ) &
    local prune_pid=$!
    steady_run scale_steady_pruning 1 $port "sp$tag"
    wait "$prune_pid"
    settled "$url"
    steady_run scale_steady_alone 2 $port "sb$tag"
    read -r start end <"$out/scale-prune.time"
    tail -n 1 "$out/scale-prune.jsonl" | python3 -c "import json,sys; r=json.load(sys.stdin)['removed']['messages']; s=float(sys.argv[2])-float(sys.argv[1]); print(f'prune rows={r} seconds={s:.2f} rows_per_second={r/s:.0f} (the whole command, start-up included)')" "$start" "$end"
    echo "rss scale $(stop_ingest)"
    scale_sizes "$url" "after"
  } | tee "$out/scale-runs.txt"
  {
    echo "== summary"
    grep -E '^(size|read|prune|seeded|rss|scale_steady)' "$out/scale-runs.txt"
    awk -v n="$rounds" '$2 ~ /^run=/ {for (i=2;i<=NF;i++) {split($i,kv,"="); f[kv[1]]=kv[2]}
        rate[$1]+=f["rate"]; n[$1]++; p99[$1]+=f["p99_ms"]}
      END {
        small = rate["small_ingest_c256"]/rate["small_healthz_c256"]
        big = rate["scale_ingest_c256"]/rate["scale_healthz_c256"]
        printf "ingest / healthz c256: 1,000,000 messages %.3f, scale %.3f, scale / 1,000,000 %.2f (target >= 0.90)\n", small, big, big/small
        alone = p99["scale_steady_alone"]/n["scale_steady_alone"]
        printf "steady 1,000/s p99: alone %.2f ms (mean of the runs before and after), while pruning %.2f ms, ratio %.2f (target <= 2)\n",
          alone, p99["scale_steady_pruning"], p99["scale_steady_pruning"]/alone
      }' "$out/scale-runs.txt"
  } | tee "$out/scale.txt"
  psql -q "$admin" -c "drop database if exists kh_scale_small"
}

# --- backup -------------------------------------------------------------------------------
# A SQLite database of about 1 GiB (BACKUP_SEED_MIB), filled straight into the file by SQLite
# itself (a recursive insert over the schema `kenar-hook migrate` made; kept in
# target/bench/backup-seed.db for the next run), then 500 deliveries/s from loadgen (open
# loop; half legacy, half NEW_MESSAGE): BACKUP_BASE_SECONDS without a backup, then again
# while `kenar-hook backup` runs, until 3 s after it ends. loadgen records every request (id,
# due time, latency, status), so the p99 "during" counts only requests due while the backup
# ran. The backup is then restored into a new folder, and every delivery answered 200 before
# the backup began is looked up in the restored copy.
seed_backup_data() { # file, MiB
  python3 - "$1" "$2" <<'PY'
import os, sqlite3, sys
path, mib = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None)
# Filled alone, without the write-ahead log and fsyncs; the service switches it back to WAL.
db.execute("pragma journal_mode = delete")
db.execute("pragma synchronous = off")
text = "سلام، وقت بخیر. این ماشین هنوز فروشی هست؟ قیمت نهایی چنده و امکان معاوضه با پراید هم هست؟ فردا ساعت ۱۷ می‌توانم برای بازدید بیایم."
body = ('{"type":"CHAT_MESSAGE","timestamp":1741508209067000,"payload":{"id":"%s","type":"TEXT","sent_at":1741508209015000,'
        '"data":{"text":"' + text + '"},"from":{"id":"8c1d2e3f-4a5b-4c6d-8e7f-%s","is_supply":false},'
        '"to":{"id":"0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d","is_supply":true},'
        '"metadata":{"category":"light","post_token":"SP%s","title":"پژو ۲۰۶ تیپ ۲ مدل ۱۳۹۸"}}}')
start = db.execute("select count(*) from message").fetchone()[0]
chunk = 50000
while os.path.getsize(path) < mib * 1024 * 1024:
    db.execute("begin")
    db.execute("""
      with recursive n(i) as (select ? union all select i + 1 from n where i < ?)
      insert into message (id, origin, source, event_type, conversation_id, post_token,
          message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id,
          sent_at, sent_at_raw, received_at, raw_body)
      select printf('seed-%09d', i), '', 'legacy', 'CHAT_MESSAGE',
          printf('seed-conversation-%06d', i % 20000), printf('SP%06d', i % 1000), 'TEXT', ?,
          'BUYER', 'USER', printf('8c1d2e3f-4a5b-4c6d-8e7f-%012d', i % 20000), 'SELLER',
          '0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d', 1700000000000000 + i * 1000000,
          cast(1700000000000000 + i * 1000000 as text), 1700000000000000 + i * 1000000,
          cast(printf(?, printf('seed-%09d', i), printf('%012d', i % 20000), printf('%06d', i % 1000)) as blob)
      from n""", (start, start + chunk - 1, text, body))
    db.execute("commit")
    start += chunk
db.execute("delete from conversation")
db.execute("""
  insert into conversation (id, kind, source, post_token, supply_user_id, demand_user_id,
      first_message_at, last_message_at, message_count)
  select conversation_id, 'POST', 'legacy', min(post_token), '0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d',
      min(sender_id), min(sent_at), max(sent_at), count(*)
  from message group by conversation_id""")
db.execute("pragma journal_mode = wal")
db.close()
print(f"seeded {start} messages, {os.path.getsize(path) / 2**20:.0f} MiB")
PY
}
request_stats() { # record file, from (Unix ms; -N: N ms after the first request), to
  # -> requests due in [from, to): count, non-200, p50, p99, max
  python3 - "$@" <<'PY'
import sys
path, lo, hi = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [line.split() for line in open(path)]
if lo < 0:
    lo = min(float(r[1]) for r in rows) - lo
lat, bad = [], 0
for _, due, ms, status in rows:
    if lo <= float(due) < hi:
        lat.append(float(ms)); bad += status != "200"
lat.sort()
pct = lambda p: lat[max(0, min(len(lat) - 1, int(len(lat) * p + 0.999999) - 1))] if lat else float("nan")
print(f"requests={len(lat)} non200={bad} p50_ms={pct(0.5):.2f} p99_ms={pct(0.99):.2f} max_ms={pct(1.0):.2f}")
PY
}
bench_inbox() {
  echo "== inbox: first paint, weight, delivery to visible (Chromium)"
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null &&
    KENAR_HOOK_BIN="$PWD/../../target/release/kenar-hook" node bench.mjs) | tee "$out/inbox.txt"
}

bench_backup() {
  local mib=${BACKUP_SEED_MIB:-1024} base=${BACKUP_BASE_SECONDS:-30}
  local data="$out/backup-data" seed="$out/backup-seed.db" dir="$out/backup-dir" restored="$out/backup-restored"
  local file="$out/backup-data/kenar-hook.db" cfg="$out/backup.toml" tag t0 t1 stop="$out/backup-stop"
  port=18480
  tag=$(date +%s)
  rm -rf "$data" "$dir" "$restored" "$stop" "$out"/backup-*.rec "$out/backup-t0"
  mkdir -p "$data"
  cat >"$cfg" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$PWD/$data"
[database]
url = "sqlite://$PWD/$file"
[divar]
identification_keys = ["$key"]
[metrics]
enabled = false
[log]
level = "warn"
TOML
  if [ ! -f "$seed" ] || [ "$(stat -c %s "$seed")" -lt $((mib * 1024 * 1024)) ]; then
    rm -f "$seed"
    KENAR_HOOK__DATABASE__URL="sqlite://$PWD/$seed" target/release/kenar-hook --config "$cfg" migrate
    seed_backup_data "$seed" "$mib"
  fi
  cp "$seed" "$file"
  # The generated key a service without divar.identification_keys keeps here: copied too.
  target/release/kenar-hook secret new >"$data/identification_key"
  chmod 600 "$data/identification_key"
  start_server "$cfg"
  gen() { # run id, record file, seconds, warm-up seconds, extra...
    local run=$1 rec=$2 secs=$3 warm=$4
    shift 4
    target/release/examples/loadgen --url "http://127.0.0.1:$port/webhooks/divar" --rate 500 \
      --seconds "$secs" --warmup-seconds "$warm" --unique "$run" --header "authorization:$key" \
      --header "content-type:application/json" --record "$rec" "$@" \
      --body-file scripts/ingest/legacy.json --body-file scripts/ingest/events.json
  }
  {
    echo "== SQLite, $(du -m "$file" | cut -f1) MiB, $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from message').fetchone()[0])" "$file") messages stored"
    echo "== without a backup: 500 deliveries/s for $base s (after 5 s of warm-up)"
    gen "bb$tag" "$out/backup-base.rec" "$base" 5 | grep -E '^(requests|statuses|no answer|latency)'
    echo "== during kenar-hook backup: 500 deliveries/s from 5 s before it until 3 s after"
    gen "bd$tag" "$out/backup-during.rec" 900 0 --stop-file "$stop" >"$out/backup-during.txt" &
    local load=$!
    sleep 5
    t0=$(date +%s%3N)
    target/release/kenar-hook --config "$cfg" backup "$dir" --json >"$out/backup.json"
    t1=$(date +%s%3N)
    echo "$t0" >"$out/backup-t0"
    sleep 3
    touch "$stop"
    wait "$load"
    echo "backup took $(( (t1 - t0) ))ms wall clock (the command's own figure: $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['seconds'], 2))" "$out/backup.json") s), $(du -m "$dir/kenar-hook.db" | cut -f1) MiB written"
    echo "p99 without: $(request_stats "$out/backup-base.rec" -5000 1e15 | tee "$out/backup-base.stats")"
    echo "p99 during:  $(request_stats "$out/backup-during.rec" "$t0" "$t1" | tee "$out/backup-during.stats")"
    python3 - "$out/backup-base.stats" "$out/backup-during.stats" <<'PY'
import sys
p99 = [float(dict(kv.split("=") for kv in open(f).read().split())["p99_ms"]) for f in sys.argv[1:]]
ratio = p99[1] / p99[0]
print(f"ratio p99 during / without {ratio:.2f} (target <= 3): {'ok' if ratio <= 3 else 'MISSED'}")
PY
  } 2>&1 | tee "$out/backup.txt"
  stop_server
  t0=$(cat "$out/backup-t0")
  {
    echo "== restore into a new folder, and every delivery answered 200 before the backup began looked up"
    KENAR_HOOK__DATABASE__URL="sqlite://$PWD/$restored/kenar-hook.db" KENAR_HOOK__SERVER__DATA_DIR="$PWD/$restored" \
      target/release/kenar-hook --config "$cfg" restore "$dir"
    cmp -s "$data/identification_key" "$restored/identification_key" && echo "identification key: the same" \
      || echo "identification key: FAILED, it differs"
    python3 - "$restored/kenar-hook.db" "$t0" "$out/backup-base.rec" "$out/backup-during.rec" <<'PY'
import sqlite3, sys
db, t0 = sqlite3.connect(sys.argv[1]), float(sys.argv[2])
acked = [line.split()[0] for path in sys.argv[3:] for line in open(path)
         if line.split()[3] == "200" and float(line.split()[1]) + float(line.split()[2]) < t0]
db.execute("create temp table acked (id text primary key)")
db.executemany("insert or ignore into acked values (?)", ((i,) for i in acked))
missing = db.execute("select count(*) from acked where id not in (select id from message)").fetchone()[0]
print(f"check: {len(acked)} deliveries answered 200 before the backup began, {missing} missing "
      f"from the restored copy: {'ok' if missing == 0 and acked else 'FAILED'}")
PY
  } 2>&1 | tee -a "$out/backup.txt"
  rm -rf "$data" "$dir" "$restored"
  ! grep -q FAILED "$out/backup.txt"
}

case "$what" in
  clicks) bench_clicks ;;
  read) bench_read ;;
  ingest) bench_ingest ;;
  forward) bench_forward ;;
  reply) bench_reply ;;
  slow) bench_slow ;;
  compare) bench_compare "${2:-}" ;;
  scale) bench_scale ;;
  backup) bench_backup ;;
  inbox) bench_inbox ;;
  all) bench_clicks; bench_read; bench_ingest; bench_forward; bench_slow ;;
  *) echo "usage: scripts/bench.sh [clicks|read|ingest|forward|reply|slow|scale|backup|all|compare OTHER-BINARY]" >&2; exit 2 ;;
esac
