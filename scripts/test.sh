#!/usr/bin/env bash
# Runs every test against the real services on loopback. It first makes the
# local PostgreSQL and MariaDB ready for log-based capture (idempotent: a
# configured server is left alone), then runs vet and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

for s in scripts/setup-postgres.sh scripts/setup-mariadb.sh; do
	if [[ -x "$s" || -f "$s" ]]; then
		bash "$s"
	fi
done

go vet ./...
go test -count=1 -timeout 15m ./... "$@"
