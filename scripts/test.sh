#!/usr/bin/env bash
# Runs every test against the real services on loopback. It first makes the
# local PostgreSQL and MariaDB ready for log-based capture (idempotent: a
# configured server is left alone) and installs Chromium for the browser
# tests of the web workspace when it is missing, then runs vet and the test
# suite.
set -euo pipefail
cd "$(dirname "$0")/.."

for s in scripts/setup-postgres.sh scripts/setup-mariadb.sh scripts/setup-chromium.sh; do
	if [[ -x "$s" || -f "$s" ]]; then
		bash "$s"
	fi
done

# The enforced style of record: go vet and staticcheck with every check on
# (none is turned off), pinned so every run judges the same way.
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -count=1 -timeout 15m ./... "$@"
