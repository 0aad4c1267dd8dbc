#!/usr/bin/env bash
# setup-mariadb.sh makes the local MariaDB (127.0.0.1:3306, root, empty
# password) ready for dualwrite binlog capture:
#
#   log_bin=ON, binlog_format=ROW, binlog_row_image=FULL, server_id set,
#   binlog_expire_logs_seconds >= 24h.
#
# It writes /etc/mysql/mariadb.conf.d/60-dualwrite.cnf (and makes
# /etc/mysql/my.cnf include that directory), and restarts the server only
# when the running server does not already have these settings. Run it as
# often as you like: on a configured machine it changes nothing.
#
# Environment: MYSQL_HOST (127.0.0.1), MYSQL_PORT (3306), MYSQL_USER (root),
# MYSQL_PWD (empty), MARIADB_CONF_DIR (/etc/mysql/mariadb.conf.d).
set -euo pipefail

host=${MYSQL_HOST:-127.0.0.1}
port=${MYSQL_PORT:-3306}
user=${MYSQL_USER:-root}
conf_dir=${MARIADB_CONF_DIR:-/etc/mysql/mariadb.conf.d}
main_cnf=/etc/mysql/my.cnf
conf_file="$conf_dir/60-dualwrite.cnf"
retention=172800 # 48h; dualwrite needs at least 24h to resume after a pause

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

client() { mariadb -h"$host" -P"$port" -u"$user" --batch --skip-column-names "$@"; }

wait_up() {
  for _ in $(seq 1 120); do
    if client -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "setup-mariadb: server at $host:$port did not accept connections within 60s; see /var/log/mysql/error.log" >&2
  return 1
}

# settings_ok reports whether the running server has what capture needs.
settings_ok() {
  local out
  out=$(client -e "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@binlog_expire_logs_seconds") || return 1
  read -r log_bin fmt image sid expire <<<"$out"
  [ "$log_bin" = 1 ] && [ "$fmt" = ROW ] && [ "$image" = FULL ] && [ "$sid" != 0 ] && [ "$expire" -ge 86400 ]
}

desired=$(cat <<CNF
# Written by dualwrite scripts/setup-mariadb.sh: binlog settings for capture.
[mariadbd]
server_id                  = 1
log_bin                    = mysql-bin
binlog_format              = ROW
binlog_row_image           = FULL
binlog_expire_logs_seconds = $retention
CNF
)

wait_up

changed=0
$sudo mkdir -p "$conf_dir"
if [ ! -f "$conf_file" ] || [ "$(cat "$conf_file")" != "$desired" ]; then
  printf '%s\n' "$desired" | $sudo tee "$conf_file" >/dev/null
  changed=1
  echo "setup-mariadb: wrote $conf_file"
fi
if [ -f "$main_cnf" ] && ! grep -Eq "^[[:space:]]*!includedir[[:space:]]+$conf_dir/?[[:space:]]*$" "$main_cnf"; then
  printf '\n!includedir %s/\n' "$conf_dir" | $sudo tee -a "$main_cnf" >/dev/null
  changed=1
  echo "setup-mariadb: added !includedir $conf_dir/ to $main_cnf"
fi

if settings_ok; then
  echo "setup-mariadb: server already configured for binlog capture"
  exit 0
fi

echo "setup-mariadb: restarting MariaDB to apply binlog settings (config changed: $changed)"
mariadb-admin -h"$host" -P"$port" -u"$user" shutdown
for _ in $(seq 1 120); do
  if ! pgrep -x mariadbd >/dev/null; then break; fi
  sleep 0.5
done
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled mariadb >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $sudo systemctl start mariadb
else
  $sudo mkdir -p /run/mysqld
  $sudo chown mysql:mysql /run/mysqld 2>/dev/null || true
  $sudo start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_up
if ! settings_ok; then
  echo "setup-mariadb: server restarted but the binlog settings are still not in effect; check $conf_file is read (mariadbd --print-defaults)" >&2
  exit 1
fi
echo "setup-mariadb: server ready for binlog capture"
