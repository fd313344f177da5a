#!/usr/bin/env bash
# Stops the Swift started by swift-start.sh. `--purge` also deletes its state dir (data, rings, logs).
set -euo pipefail

DIR="${MAIRUST_SWIFT_DIR:-/tmp/mairust-swift}"

stop_one() { # $1 = pidfile
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  rm -f "$1"
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  # Only signal the pid if it is still a swift server (pids get reused).
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q swift- || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

for name in proxy object container account; do
  [[ -f "$DIR/run/$name.pid" ]] && stop_one "$DIR/run/$name.pid"
done
echo "swift-stop: stopped"

if [[ "${1:-}" == "--purge" ]]; then
  rm -rf "$DIR"
  echo "swift-stop: removed $DIR"
fi
