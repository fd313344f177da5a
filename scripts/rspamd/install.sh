#!/usr/bin/env bash
# Installs Debian's rspamd for the spam-check tests (src/spam, test/unit/spam-*.test.ts), and
# dnsmasq-base (the dnsmasq binary only, no service) which start.sh runs as rspamd's loopback
# resolver. Idempotent: does nothing when both packages are installed.
#
# Only the package is wanted: scripts/rspamd/start.sh runs a private instance with its own
# local.d, state dirs and ports; the packaged service is never started (there is no init
# system in CI containers, and a system-wide instance would take port 11333).
set -euo pipefail

PKGS=(rspamd dnsmasq-base)

missing=()
for p in "${PKGS[@]}"; do
  # dpkg-query prints "install ok installed" only for a fully configured package.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

check() {
  /usr/bin/rspamd --version >/dev/null 2>&1 \
    || { echo "rspamd-install: /usr/bin/rspamd does not run" >&2; exit 1; }
  getent passwd _rspamd >/dev/null \
    || { echo "rspamd-install: system user _rspamd missing" >&2; exit 1; }
  /usr/sbin/dnsmasq --version >/dev/null 2>&1 \
    || { echo "rspamd-install: /usr/sbin/dnsmasq does not run" >&2; exit 1; }
}

if ((${#missing[@]} == 0)); then
  check
  echo "rspamd-install: all packages present" >&2
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo -E"; fi

echo "rspamd-install: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package index may be empty on a fresh container; refresh it once if the candidate is unknown.
# (Captured first: with pipefail, `grep -q` closing the pipe early would fail the pipeline.)
policy="$(apt-cache policy rspamd 2>/dev/null || true)"
if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
  $SUDO apt-get update -q >&2
fi
# policy-rc.d 101 keeps the package's postinst from starting the system service.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  created_policy=1
fi
trap 'if [[ $created_policy == 1 ]]; then $SUDO rm -f "$POLICY"; fi' EXIT

# --no-install-recommends: skips redis-server, which the private instance does not use.
# The lock timeout lets it wait for another install (another test script) instead of failing.
$SUDO apt-get install -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends "${missing[@]}" >&2

check
echo "rspamd-install: done" >&2
