#!/usr/bin/env bash
# setup-chromium.sh installs Debian's chromium package, which the browser
# tests of the web workspace (internal/web) drive with chromedp. It is
# idempotent: when a chromium binary is already on PATH it changes nothing,
# and it runs apt-get update only when the package lists do not know
# chromium yet.
#
# Environment: DW_CHROMIUM (a browser binary to use instead; then nothing is
# installed).
set -euo pipefail

if [ -n "${DW_CHROMIUM:-}" ] && [ -x "${DW_CHROMIUM}" ]; then
	exit 0
fi
for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null 2>&1; then
		exit 0
	fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

if ! apt-cache show chromium >/dev/null 2>&1; then
	$sudo apt-get update -q
fi
$sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
echo "setup-chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
