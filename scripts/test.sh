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

# The module must be tidy: every requirement used, direct ones marked
# direct, go.sum complete. `go mod tidy -diff` prints what tidy would change
# and fails without touching the files.
if ! go mod tidy -diff; then
	echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result" >&2
	exit 1
fi
test -z "$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo "gofmt: the files above are not formatted" >&2; exit 1; }

# The enforced style of record: go vet and staticcheck with every check on
# (none is turned off), pinned so every run judges the same way.
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -count=1 -timeout 15m ./... "$@"
