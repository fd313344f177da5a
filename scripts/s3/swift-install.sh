#!/usr/bin/env bash
# Installs a single-node OpenStack Swift (Debian packages) for the S3 integration tests.
# Idempotent: does nothing when every package is already installed.
#
# The s3api middleware (swift.common.middleware.s3api) ships inside python3-swift since
# Swift 2.18 (the old swift3 project was merged into Swift), so no extra package is needed;
# see /work/shared/design/TEST-PEERS.md "S3-compatible object storage".
set -euo pipefail

PKGS=(swift swift-proxy swift-object swift-container swift-account python3-swift)

missing=()
for p in "${PKGS[@]}"; do
  # dpkg-query prints "install ok installed" only for fully configured packages.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

check() {
  # Use Debian's interpreter explicitly: PATH may hold another python3 (pyenv) without the packages.
  /usr/bin/python3 -c 'import swift.common.middleware.s3api' \
    || { echo "swift-install: s3api middleware not importable" >&2; exit 1; }
}

if ((${#missing[@]} == 0)); then
  check
  echo "swift-install: all packages present"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo -E"; fi

echo "swift-install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package index may be empty on a fresh container; refresh it once if the candidate is unknown.
# (Captured first: with pipefail, `grep -q` closing the pipe early would fail the pipeline.)
policy="$(apt-cache policy swift-proxy 2>/dev/null || true)"
if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
  $SUDO apt-get update -q
fi
# policy-rc.d 101 keeps the Debian packages from trying to start their own services
# (there is no init system in containers, and we run our own instance anyway).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $SUDO rm -f "$POLICY"' EXIT

$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

check
echo "swift-install: done"
