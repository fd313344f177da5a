#!/usr/bin/env bash
# Stops the private rspamd (and its DNS stub) started by scripts/rspamd/start.sh.
# Only the processes whose pids start.sh recorded are signalled. Idempotent.
#
#   MAIRUST_RSPAMD_DIR   state dir   default /tmp/mairust-rspamd
set -euo pipefail

DIR="${MAIRUST_RSPAMD_DIR:-/tmp/mairust-rspamd}"

log() { echo "rspamd-stop: $*" >&2; }

# Sends TERM to the pid in FILE if it is alive and still NAME (guards against pid reuse), waits
# up to 10 s, then KILL.
stop_pid() {
  local file=$1 name=$2 pid
  [[ -s $file ]] || return 0
  pid="$(cat "$file")"
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      [[ -e /proc/$pid ]] || break
      sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
      # start.sh ran it under setsid, so its pid is also its process group: this reaches the
      # workers too, which would otherwise keep the port.
      log "$name ($pid) did not stop after 10 s; killing its process group"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name ($pid)"
  fi
  rm -f "$file"
}

stop_pid "$DIR/run/rspamd.pid" rspamd
stop_pid "$DIR/run/dnsmasq.pid" dnsmasq
