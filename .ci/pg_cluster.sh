#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on loopback (trust auth) and print its URL; `stop DIR` stops it.
# Used by .ci/run so the db/ and queue tests also run on PostgreSQL (CONTRACTS §7).
set -euo pipefail
if [ "${1:-}" = "stop" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$2' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] || { echo "postgresql not installed" >&2; exit 1; }
DIR=$(mktemp -d /tmp/medssl-pg.XXXXXX)
PORT=${MEDSSL_PG_PORT:-55432}
chown postgres "$DIR"
su postgres -s /bin/sh -c "$PG_BIN/initdb -D '$DIR/data' -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$DIR/data' -l '$DIR/log' -w \
  -o \"-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200\" start" >/dev/null
echo "$DIR/data postgresql://postgres@127.0.0.1:$PORT/postgres"
