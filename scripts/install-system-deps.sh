#!/usr/bin/env bash
# System packages the test suite needs beyond pip: Debian's headless Chromium and its driver, for
# tests/test_report_browser.py. Installs them only as root and only when missing; otherwise says so and does
# nothing, so it is fast to run before every test run (the README's test command and .ci/run do).
set -euo pipefail

packages=(chromium chromium-driver)
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
  echo "install-system-deps: chromium and chromedriver are installed; nothing to do"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: not root, not installing ${packages[*]} (the browser tests skip without them)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: no apt-get here, not installing ${packages[*]} (the browser tests skip without them)"
  exit 0
fi

echo "install-system-deps: installing ${packages[*]} with apt-get"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-system-deps: apt-get failed installing ${packages[*]} (output above)" >&2
  exit 1
fi
if ! have; then
  echo "install-system-deps: ${packages[*]} installed but chromium/chromedriver still not on PATH" >&2
  exit 1
fi
echo "install-system-deps: installed $(chromium --version 2>/dev/null | head -n1)"
