#!/usr/bin/env bash
# Reruns the benchmarks of BENCHMARKS.md on this machine against the local PostgreSQL.
#   scripts/bench.sh clicks     button-click replies at 200 clicks/s
#   scripts/bench.sh read       read API over 1,000,000 messages (seeds the data once)
#   scripts/bench.sh            both
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
cargo build --release --bin kenar-hook --example loadgen --example seed

port=18080
key=bench-identification-key
token=bench-api-token
pid=""
stop_server() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
trap 'stop_server; untune_postgres' EXIT

start_server() { # config file
  target/release/kenar-hook --config "$1" >"$out/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    target/release/kenar-hook healthcheck "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start; see $out/server.log" >&2
  exit 1
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
listen = "127.0.0.1:19090"
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
signing_key = "bench-signing-key"
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
  local have=0
  if psql -qtA "$admin" -c "select 1 from pg_database where datname = 'kh_bench'" | grep -q 1; then
    have=$(psql -qtA "$url" -c "select count(*) from message" 2>/dev/null || echo 0)
  fi
  if [ "$have" != 1000000 ]; then
    psql -q "$admin" -c "drop database if exists kh_bench" -c "create database kh_bench"
    target/release/examples/seed --database-url "$url" --messages 1000000 --conversations 20000 --posts 1000 --out "$out"
    psql -q "$url" -c "vacuum analyze"
  else
    target/release/examples/seed --database-url "$url" --messages 1000000 --conversations 20000 --posts 1000 --out "$out" --paths-only yes
  fi
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

case "$what" in
  clicks) bench_clicks ;;
  read) bench_read ;;
  all) bench_clicks; bench_read ;;
  *) echo "usage: scripts/bench.sh [clicks|read|all]" >&2; exit 2 ;;
esac
