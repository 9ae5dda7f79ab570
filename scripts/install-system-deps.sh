#!/usr/bin/env bash
# System packages the test suite needs beyond pip: Debian's headless Chromium and its driver, for
# tests/test_report_browser.py, and a single-node Slurm (controller, node daemon, client commands, munge),
# for the Slurm tests (tests/fixtures_slurm.py). Installs whatever is missing, only as root, with one apt-get
# update and one apt-get install; when everything is present it makes no apt call at all, so it is fast to run
# before every test run (the README's test command and .ci/run do). Not root or no apt-get: says so and exits 0
# (the tests that need the packages skip).
set -euo pipefail

# per group: its Debian packages, and the commands whose presence means the group is installed
chromium_packages=(chromium chromium-driver)
chromium_commands=(chromium chromedriver)
slurm_packages=(slurmctld slurmd slurm-client munge)
# munged and the daemons live in /usr/sbin, which a non-root PATH may lack
slurm_commands=(slurmctld slurmd sbatch munged)

have_all() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || return 1
  done
}

missing=()
needed_by=()
if ! have_all "${chromium_commands[@]}"; then
  missing+=("${chromium_packages[@]}")
  needed_by+=("the browser tests")
fi
if ! have_all "${slurm_commands[@]}"; then
  missing+=("${slurm_packages[@]}")
  needed_by+=("the Slurm tests")
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: chromium, chromedriver, slurmctld, slurmd, sbatch and munged are installed; nothing to do"
  exit 0
fi
skipping="$(IFS=,; echo "${needed_by[*]}" | sed 's/,/ and /') skip without them"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: not root, not installing ${missing[*]} ($skipping)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: no apt-get here, not installing ${missing[*]} ($skipping)"
  exit 0
fi

echo "install-system-deps: installing ${missing[*]} with apt-get"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1
then
  cat "$log" >&2
  echo "install-system-deps: apt-get failed installing ${missing[*]} (output above)" >&2
  exit 1
fi
if ! have_all "${chromium_commands[@]}"; then
  echo "install-system-deps: installed, but ${chromium_commands[*]} still not all on PATH" >&2
  exit 1
fi
if ! have_all "${slurm_commands[@]}"; then
  echo "install-system-deps: installed, but ${slurm_commands[*]} still not all on PATH or in /usr/sbin" >&2
  exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
