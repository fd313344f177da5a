#!/usr/bin/env bash
# Installs Dovecot 2.3 (Debian `dovecot-core` + `dovecot-imapd`), the IMAP peer of bench/imap
# (docs: /work/shared/design/TEST-PEERS.md). The benchmark runs its own throw-away instance
# (`dovecot -c FILE`, bench/imap/dovecot.sh); the system service the package ships must not run:
# it would hold port 143/993 and answer with the system's config.
#
# Idempotent and non-interactive: does nothing when the binaries are there. Must run as root.
set -euo pipefail

if [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ] && [ -x /usr/lib/dovecot/imap ]; then
  echo "dovecot: already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "dovecot: not installed; run this script as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the maintainer scripts from starting the service (invoke-rc.d honours policy-rc.d, exit 101
# = "action forbidden"). A machine that already has a policy-rc.d keeps its own.
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

install() { apt-get install -y --no-install-recommends dovecot-core dovecot-imapd; }
if ! install; then
  # A fresh machine may have no package lists yet.
  apt-get update
  install
fi

# Whatever started anyway (a machine without policy-rc.d support, systemd): stop it and keep it
# from starting at boot. Each step may legitimately fail when there is no such service manager.
if command -v systemctl >/dev/null 2>&1; then
  # `disable` works without a running systemd (it removes the unit's links); `stop` needs one.
  if [ -d /run/systemd/system ]; then systemctl stop dovecot.service dovecot.socket >/dev/null 2>&1 || true; fi
  systemctl disable dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/dovecot ]; then
  /etc/init.d/dovecot stop >/dev/null 2>&1 || true
  update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
# The package's own instance uses the default config and base_dir /run/dovecot.
if [ -e /run/dovecot/master.pid ]; then doveadm stop >/dev/null 2>&1 || true; fi

echo "dovecot: installed $(dovecot --version)"
