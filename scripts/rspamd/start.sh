#!/usr/bin/env bash
# Starts a private rspamd for the spam-check tests (TEST-PEERS.md "Spam filter"), without Redis,
# with the modules that need the internet disabled (scripts/rspamd/local.d) and its resolver
# pointed at loopback.
#
# Prints `MAIRUST_RSPAMD_URL=http://127.0.0.1:PORT` on stdout (everything else goes to stderr), so
#   eval "$(bash scripts/rspamd/start.sh)"; export MAIRUST_RSPAMD_URL
# Idempotent: if the normal worker already answers GET /ping, it only prints the URL.
#
#   MAIRUST_RSPAMD_DIR                state dir (config, db, run, logs)                default /tmp/mairust-rspamd
#   MAIRUST_RSPAMD_PORT               normal worker (the /checkv2 API) on 127.0.0.1     default 11333
#   MAIRUST_RSPAMD_CONTROLLER_PORT    controller (web UI, learning) on 127.0.0.1        default: disabled
#   MAIRUST_RSPAMD_DNS                resolver for rspamd, `PORT` or `HOST:PORT` (a test DNS server of
#                                     your own; test/unit/spam-rspamd.test.ts expects the zone below);
#                                     default: a dnsmasq started here with one test zone that answers
#                                     NXDOMAIN for every other name, on MAIRUST_RSPAMD_DNS_STUB_PORT (11353)
#   MAIRUST_RSPAMD_START_TIMEOUT      seconds to wait for /ping                         default 60
#   MAIRUST_RSPAMD_WORKERS            normal worker processes (benchmarks: one per core) default 1
#
# Why a DNS stub: rspamd's resolver ignores ICMP "port unreachable", so pointing it at a closed
# loopback port makes every lookup wait for its timeout. Measured here (rspamd 3.4, 2 cores): with
# the default dns.timeout (1 s, 5 retransmits) a clean message took 8.0 s (the task_timeout); with
# timeout 0.1 s and no retransmits still 200 ms; with a loopback DNS server that answers, 3–13 ms
# (median 8.6 ms through src/spam's client, one worker).
set -euo pipefail

DIR="${MAIRUST_RSPAMD_DIR:-/tmp/mairust-rspamd}"
PORT="${MAIRUST_RSPAMD_PORT:-11333}"
CONTROLLER_PORT="${MAIRUST_RSPAMD_CONTROLLER_PORT:-}"
DNS="${MAIRUST_RSPAMD_DNS:-}"
DNS_STUB_PORT="${MAIRUST_RSPAMD_DNS_STUB_PORT:-11353}"
START_TIMEOUT="${MAIRUST_RSPAMD_START_TIMEOUT:-60}"
WORKERS="${MAIRUST_RSPAMD_WORKERS:-1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
URL="http://127.0.0.1:${PORT}"

log() { echo "rspamd-start: $*" >&2; }

# GET /ping over bash's /dev/tcp, so the script needs no HTTP client; rspamd answers "pong".
ping_ok() {
  local reply
  reply="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
    cat <&3' _ "$PORT" 2>/dev/null || true)"
  [[ "$reply" == *pong* ]]
}

# True when the pid in FILE is alive and its command line contains NAME (guards against pid reuse).
pid_alive() {
  local file=$1 name=$2 pid
  [[ -s $file ]] || return 1
  pid="$(cat "$file")"
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

# The loopback DNS that rspamd is configured to use. Checked on every call, also when rspamd itself
# already answers: an rspamd whose resolver is gone makes every check wait for DNS timeouts.
ensure_dns() {
  mkdir -p "$DIR/run" "$DIR/log"
  if ! pid_alive "$DIR/run/dnsmasq.pid" dnsmasq; then
    # A real DNS server with one small test zone and nothing else: every other name is answered
    # NXDOMAIN at once (`--address=/#/` with no address), so lookups end in ~1 ms with "no record"
    # instead of a timeout. The zone (TEST-NET-1 address, RFC 5737) is a well-configured sender:
    #   mail.example.com  A 192.0.2.10 (and the PTR back)     example.com  MX 10 mail.example.com
    #   example.com       TXT "v=spf1 ip4:192.0.2.10 -all"   _dmarc.example.com  TXT "v=DMARC1; p=none"
    # test/unit/spam-rspamd.test.ts relies on it (SPF pass/fail by client IP, HELO that resolves).
    user_opt=()
    if [[ "$(id -u)" == "0" ]]; then user_opt=(--user=nobody); fi
    # setsid: its own session, so it outlives the shell (and process group) that started it.
    setsid dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
      --listen-address=127.0.0.1 --bind-interfaces --port="$DNS_STUB_PORT" --local-ttl=60 \
      --host-record=mail.example.com,192.0.2.10 \
      --mx-host=example.com,mail.example.com,10 \
      --txt-record=example.com,"v=spf1 ip4:192.0.2.10 -all" \
      --txt-record=_dmarc.example.com,"v=DMARC1; p=none" \
      --address=/#/ \
      --pid-file= --log-facility="$DIR/log/dnsmasq.log" "${user_opt[@]}" \
      >"$DIR/log/dnsmasq.out" 2>&1 </dev/null &
    echo $! >"$DIR/run/dnsmasq.pid"
    sleep 0.2
    pid_alive "$DIR/run/dnsmasq.pid" dnsmasq || { log "dnsmasq did not start:"; cat "$DIR/log/dnsmasq.out" >&2; exit 1; }
  fi
}

if ping_ok; then
  [[ -n $DNS ]] || ensure_dns
  echo "MAIRUST_RSPAMD_URL=${URL}"
  exit 0
fi

mkdir -p "$DIR"
# Two test files may start the instance at the same moment: one starts it, the other waits here
# and then finds it answering.
exec 9>"$DIR/start.lock"
flock -w $((START_TIMEOUT + 30)) 9 || { log "could not take $DIR/start.lock"; exit 1; }
if ping_ok; then
  echo "MAIRUST_RSPAMD_URL=${URL}"
  exit 0
fi

if [[ ! -x /usr/bin/rspamd ]] || { [[ -z $DNS ]] && ! command -v dnsmasq >/dev/null; }; then
  bash "$HERE/install.sh"
fi

CONF="$DIR/conf"
mkdir -p "$CONF/local.d" "$CONF/override.d" "$DIR/db" "$DIR/run" "$DIR/log"
rm -f "$CONF/local.d/"* "$CONF/override.d/"*
cp "$HERE/local.d/"* "$CONF/local.d/"

# --- resolver -------------------------------------------------------------------------------
if [[ -z $DNS ]]; then
  DNS="127.0.0.1:${DNS_STUB_PORT}"
  ensure_dns
elif [[ $DNS =~ ^[0-9]+$ ]]; then
  DNS="127.0.0.1:${DNS}"
fi

# --- generated configuration (depends on the ports above) -----------------------------------
# override.d replaces the packaged values (local.d would merge and keep a second bind_socket).
cat >"$CONF/override.d/options.inc" <<EOF
# Generated by scripts/rspamd/start.sh.
dns {
  nameserver = ["${DNS}"];
  # A loopback resolver answers in well under a millisecond; a short timeout bounds a check
  # if it stops answering (the packaged 1 s x 5 retransmits runs into the 8 s task timeout).
  timeout = 0.5s;
  retransmits = 1;
  sockets = 16;
}
EOF
cat >"$CONF/override.d/worker-normal.inc" <<EOF
# Generated by scripts/rspamd/start.sh.
bind_socket = "127.0.0.1:${PORT}";
mime = true;
count = ${WORKERS};
EOF
if [[ -n $CONTROLLER_PORT ]]; then
  cat >"$CONF/override.d/worker-controller.inc" <<EOF
# Generated by scripts/rspamd/start.sh.
bind_socket = "127.0.0.1:${CONTROLLER_PORT}";
count = 1;
EOF
else
  echo "count = 0; # disabled by scripts/rspamd/start.sh" >"$CONF/override.d/worker-controller.inc"
fi
# Maps: only the packaged files, not their copies on maps.rspamd.com (no internet in tests). These
# go to override.d because local.d merges arrays, which would keep the https:// entries.
cat >"$CONF/override.d/mid.conf" <<'CONF'
# Generated by scripts/rspamd/start.sh.
source { url = ["${CONFDIR}/maps.d/mid.inc"]; }
CONF
cat >"$CONF/override.d/mime_types.conf" <<'CONF'
# Generated by scripts/rspamd/start.sh.
file = ["${CONFDIR}/maps.d/mime_types.inc"];
CONF
# The milter proxy is not used: MaiRust talks to the normal worker over HTTP.
echo "count = 0; # disabled by scripts/rspamd/start.sh" >"$CONF/override.d/worker-proxy.inc"

# --- start ----------------------------------------------------------------------------------
user_opts=()
if [[ "$(id -u)" == "0" ]]; then
  # rspamd drops to _rspamd; its db/run/log dirs must be writable by that user.
  chown -R _rspamd:_rspamd "$DIR/db" "$DIR/run" "$DIR/log"
  user_opts=(-u _rspamd -g _rspamd)
fi

# -f keeps rspamd in the foreground (it writes no pid file then); backgrounded with setsid so it
# outlives the caller's process group. The hyperscan caches in db/ make later starts take ~1 s;
# the very first one compiles the TLD list (~30 s on 2 cores).
log "starting rspamd on ${URL} (resolver ${DNS}, state ${DIR})"
setsid rspamd -f "${user_opts[@]}" -c /etc/rspamd/rspamd.conf \
  --var=LOCAL_CONFDIR="$CONF" --var=DBDIR="$DIR/db" --var=RUNDIR="$DIR/run" --var=LOGDIR="$DIR/log" \
  >"$DIR/log/stdout.log" 2>&1 </dev/null &
echo $! >"$DIR/run/rspamd.pid"

deadline=$((SECONDS + START_TIMEOUT))
until ping_ok; do
  if ! pid_alive "$DIR/run/rspamd.pid" rspamd; then
    log "rspamd exited during start-up:"
    tail -n 30 "$DIR/log/stdout.log" "$DIR/log/rspamd.log" >&2 2>/dev/null || true
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    log "rspamd did not answer /ping within ${START_TIMEOUT} s"
    tail -n 30 "$DIR/log/rspamd.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
log "ready after $((SECONDS)) s"
echo "MAIRUST_RSPAMD_URL=${URL}"
