#!/usr/bin/env bash
# One command for the IMAP benchmark (bench/imap/README.md): installs Dovecot if missing, raises
# the open-file limit for 1 000 idle sessions (each one a socket in the load generator and in the
# server), runs run.ts in a fresh work directory and removes it afterwards — also when interrupted,
# stopping the throw-away Dovecot first. Arguments go to run.ts (see there). Must run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/peers/install-dovecot.sh >&2

# Soft limit up to the hard limit (at least 4 096 are needed for the defaults).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  echo "bench/imap: open-file limit $(ulimit -n) is below 4096; raise the hard limit (ulimit -Hn)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/mairust-bench-imap-XXXXXX)
keep=0
for a in "$@"; do [ "$a" = --keep ] && keep=1; done
cleanup() {
  bash bench/imap/dovecot.sh stop "$work/dovecot" >/dev/null 2>&1 || true
  if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "work directory kept: $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

node --import tsx bench/imap/run.ts --work "$work" "$@"
