#!/usr/bin/env bash
# Makes the PostgreSQL the tests use reachable: starts the local cluster when it is down
# (needs root and Debian's postgresql package) and creates the test role. Idempotent.
set -euo pipefail

url="${KENAR_HOOK_TEST_DATABASE_URL:-postgres://kenar_hook:kenar_hook@127.0.0.1:5432/postgres}"

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  running=1
else
  running=0
fi

if [ "$running" = 0 ] && [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi

if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && [ -z "${KENAR_HOOK_TEST_DATABASE_URL:-}" ]; then
  su postgres -c "psql -q -v ON_ERROR_STOP=1 -d postgres" <<'SQL'
do $$
begin
  if not exists (select from pg_roles where rolname = 'kenar_hook') then
    create role kenar_hook login createdb password 'kenar_hook';
  end if;
end
$$;
SQL
  # Test databases of earlier runs.
  su postgres -c "psql -qtA -d postgres -c \"select datname from pg_database where datname like 'kh_test_%'\"" \
    | while read -r db; do su postgres -c "dropdb --if-exists '$db'" || true; done
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL is not reachable at 127.0.0.1:5432; the PostgreSQL tests will fail." >&2
  echo "Start it (e.g. 'pg_ctlcluster 15 main start' as root) or set KENAR_HOOK_TEST_DATABASE_URL." >&2
fi
echo "tests use PostgreSQL at ${url%%@*}@…" | sed 's#//[^:]*:[^@]*@#//***@#'
