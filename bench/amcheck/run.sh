#!/usr/bin/env bash
# Builds a throwaway cluster with a generated database (default ~2.2 GB: a
# mix of text and non-text indexes) and compares `ringfence pg check --heap
# --jobs 2` with `pg_amcheck --jobs 2`, interleaved, median of RUNS runs.
#
#   bench/amcheck/run.sh                 # ROWS=5000000 RUNS=5
#   DIR=/tmp/rf-bench KEEP=1 bench/amcheck/run.sh   # keep the cluster for reruns
#   CHANGE_COLLATION=1 ...   # first switch the ICU collation under the indexes
#                            # to Danish order (aa after z), so both tools have findings
#
# Runs as root (PostgreSQL runs as the postgres user) or as a normal user.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-5000000}
RUNS=${RUNS:-5}
PORT=${PORT:-55432}
DIR=${DIR:-$(mktemp -d /tmp/ringfence-bench.XXXXXX)}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
shared_buffers = 1GB
max_wal_size = 8GB
fsync = off
synchronous_commit = off
CONF
fi
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w status >/dev/null 2>&1 ||
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
trap '[ -n "${KEEP:-}" ] || { as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null; rm -rf "$DIR"; }' EXIT

PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
if ! "${PSQL[@]}" -d bench -c 'SELECT 1' >/dev/null 2>&1; then
  echo "generating $ROWS rows..." >&2
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench TEMPLATE template0"
  "${PSQL[@]}" -d bench <<SQL
CREATE EXTENSION amcheck;
CREATE COLLATION IF NOT EXISTS en_icu (provider = icu, locale = 'en-US');
CREATE TABLE accounts (
  id bigint PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text COLLATE en_icu NOT NULL,
  country text NOT NULL,
  created_at timestamptz NOT NULL,
  score int NOT NULL,
  bio text);
INSERT INTO accounts
SELECT g, 'user' || g || '@example.com', initcap(substr(md5(g::text), 1, 12)) || ' ' || substr(md5((g * 7)::text), 1, 8),
       (ARRAY['de','fr','us','gb','jp','br'])[1 + g % 6], now() - g * interval '1 second', g % 1000,
       repeat(md5(g::text), 3)
FROM generate_series(1, $ROWS) g;
CREATE INDEX accounts_name ON accounts (name);
CREATE INDEX accounts_created ON accounts (created_at);
CREATE INDEX accounts_score ON accounts (score);
CREATE INDEX accounts_country_name ON accounts (country, name);
CREATE TABLE events (id bigint PRIMARY KEY, account_id bigint NOT NULL, kind text NOT NULL, at timestamptz NOT NULL);
INSERT INTO events SELECT g, g % $ROWS, (ARRAY['login','logout','upgrade','error'])[1 + g % 4], now() - g * interval '1 ms'
FROM generate_series(1, $ROWS / 2) g;
CREATE INDEX events_account ON events (account_id);
CREATE INDEX events_kind ON events (kind);
SQL
  "${PSQL[@]}" -d bench -c 'VACUUM ANALYZE'
  fresh=1
fi

go build -o "$DIR/ringfence" ./cmd/ringfence
DSN="postgres://postgres@127.0.0.1:$PORT/bench?sslmode=disable"
if [ -n "${fresh:-}" ]; then
  "$DIR/ringfence" pg fingerprint --record "$DSN" >/dev/null
fi
if [ -n "${CHANGE_COLLATION:-}" ]; then
  # What changed ICU rules do to existing indexes.
  "${PSQL[@]}" -d bench -c "UPDATE pg_collation SET colliculocale = 'da' WHERE collname = 'en_icu'"
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
go run ./bench/amcheck -dsn "$DSN" -ringfence "$DIR/ringfence" -pg-amcheck "$BIN/pg_amcheck" -runs "$RUNS" -jobs 2
