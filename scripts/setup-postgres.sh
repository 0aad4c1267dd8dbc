#!/usr/bin/env bash
# setup-postgres.sh makes the local PostgreSQL (127.0.0.1:5432, trust auth,
# user postgres) ready for dualwrite log-based capture (pgoutput):
#
#   wal_level = logical
#   max_replication_slots >= 20
#   max_wal_senders       >= 20
#
# Settings are changed with ALTER SYSTEM (postgresql.auto.conf). All three
# need a server restart, so the server is restarted only when the running
# value is not good enough, and the script then waits until the server
# accepts connections again. On a configured machine it changes nothing.
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres),
# PG_CLUSTER_VERSION (the only directory in /etc/postgresql),
# PG_CLUSTER_NAME (main).
set -euo pipefail

export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}
min_slots=20
min_senders=20

client() { psql -X -v ON_ERROR_STOP=1 -d postgres -Atq "$@"; }

wait_up() {
  for _ in $(seq 1 120); do
    if client -c 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "setup-postgres: server at $PGHOST:$PGPORT did not accept connections within 60s; see /var/log/postgresql/" >&2
  return 1
}

wait_up

setting() { client -c "SELECT setting FROM pg_settings WHERE name = '$1'"; }

restart=0
changed=0

if [ "$(setting wal_level)" != logical ]; then
  client -c "ALTER SYSTEM SET wal_level = logical"
  changed=1
fi
if [ "$(setting max_replication_slots)" -lt "$min_slots" ]; then
  client -c "ALTER SYSTEM SET max_replication_slots = $min_slots"
  changed=1
fi
if [ "$(setting max_wal_senders)" -lt "$min_senders" ]; then
  client -c "ALTER SYSTEM SET max_wal_senders = $min_senders"
  changed=1
fi

# A setting written earlier but not yet active also needs the restart.
if [ "$(client -c "SELECT count(*) FROM pg_settings WHERE pending_restart")" != 0 ]; then
  restart=1
fi
if [ "$changed" = 1 ]; then
  client -c "SELECT pg_reload_conf()" >/dev/null
  restart=1
fi

if [ "$restart" = 0 ]; then
  echo "setup-postgres: already configured (wal_level=logical, max_replication_slots=$(setting max_replication_slots), max_wal_senders=$(setting max_wal_senders)); nothing changed"
  exit 0
fi

version=${PG_CLUSTER_VERSION:-$(ls /etc/postgresql)}
cluster=${PG_CLUSTER_NAME:-main}
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup-postgres: restarting PostgreSQL $version/$cluster to apply the settings"
$sudo pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" restart
wait_up

if [ "$(setting wal_level)" != logical ]; then
  echo "setup-postgres: wal_level is still $(setting wal_level) after the restart; check postgresql.conf for an override" >&2
  exit 1
fi
echo "setup-postgres: ready (wal_level=logical, max_replication_slots=$(setting max_replication_slots), max_wal_senders=$(setting max_wal_senders))"
