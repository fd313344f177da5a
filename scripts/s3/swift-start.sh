#!/usr/bin/env bash
# Starts a throw-away single-node OpenStack Swift with the S3 API (s3api middleware) for tests.
# Layout follows /work/shared/design/TEST-PEERS.md "S3-compatible object storage".
# Idempotent: if the proxy already answers a signed S3 request, it only prints the env lines.
#
#   MAIRUST_SWIFT_DIR   state dir (configs, rings, data, logs, pids)   default /tmp/mairust-swift
#   MAIRUST_SWIFT_PORT  S3/Swift proxy port                            default 8090
set -euo pipefail

DIR="${MAIRUST_SWIFT_DIR:-/tmp/mairust-swift}"
PORT="${MAIRUST_SWIFT_PORT:-8090}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3 # Debian's interpreter: PATH may hold another python3 without Swift
ACCESS_KEY="test:tester"
SECRET_KEY="testing"
REGION="us-east-1" # must equal s3api's `location`, which checks the SigV4 credential scope

print_env() {
  echo "MAIRUST_S3_ENDPOINT=http://127.0.0.1:${PORT} MAIRUST_S3_REGION=${REGION}" \
    "MAIRUST_S3_ACCESS_KEY_ID=${ACCESS_KEY} MAIRUST_S3_SECRET_ACCESS_KEY=${SECRET_KEY}"
}

# A real S3 request (ListBuckets, SigV4-signed with the stdlib) rather than a TCP probe, so
# "ready" means proxy + s3api + tempauth + account/container servers all work.
s3_ok() {
  "$PY" - "$PORT" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" <<'PYEOF' >/dev/null 2>&1
import datetime, hashlib, hmac, sys, urllib.request
port, ak, sk, region = sys.argv[1:5]
host = f"127.0.0.1:{port}"
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
empty = hashlib.sha256(b"").hexdigest()
signed = "host;x-amz-content-sha256;x-amz-date"
canon = "\n".join(["GET", "/", "", f"host:{host}", f"x-amz-content-sha256:{empty}",
                   f"x-amz-date:{amz}", "", signed, empty])
scope = f"{day}/{region}/s3/aws4_request"
sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canon.encode()).hexdigest()])
k = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(f"http://{host}/", headers={
    "x-amz-date": amz, "x-amz-content-sha256": empty,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"})
sys.exit(0 if urllib.request.urlopen(req, timeout=3).status == 200 else 1)
PYEOF
}

if s3_ok; then
  print_env
  exit 0
fi

if [[ ! -x /usr/bin/swift-proxy-server ]]; then
  bash "$HERE/swift-install.sh"
fi

mkdir -p "$DIR"/{etc,srv/d1,log,run}
ETC="$DIR/etc"
USER_NAME="$(id -un)" # servers drop privileges to `user`; root -> root keeps the state dir writable

# Own swift.conf in swift_dir: the servers read it from there instead of /etc/swift.
cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = mairust-test
swift_hash_path_prefix = mairust-test

[storage-policy:0]
name = Policy-0
default = yes
EOF

common() { # $1 = port
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $USER_NAME
swift_dir = $ETC
devices = $DIR/srv
mount_check = false
log_level = INFO
EOF
}

for spec in object:6210 container:6211 account:6212; do
  name="${spec%%:*}" port="${spec##*:}"
  {
    common "$port"
    printf '\n[pipeline:main]\npipeline = %s-server\n\n[app:%s-server]\nuse = egg:swift#%s\n' "$name" "$name" "$name"
  } >"$ETC/$name-server.conf"
done

{
  common "$PORT"
  cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = $REGION

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SECRET_KEY .admin

# tempauth needs a cache filter ("Memcache required" otherwise); memcached itself is optional.
# Its connection errors (no memcached) would be logged on every request; silence them.
[filter:cache]
use = egg:swift#memcache
set log_level = CRITICAL

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
} >"$ETC/proxy-server.conf"

# Rings: part power 8, 1 replica, min_part_hours 1, one device. Built once.
for spec in object:6210 container:6211 account:6212; do
  name="${spec%%:*}" port="${spec##*:}"
  if [[ ! -f "$ETC/$name.ring.gz" ]]; then
    (
      cd "$ETC"
      rm -f "$name.builder"
      swift-ring-builder "$name.builder" create 8 1 1 >/dev/null
      swift-ring-builder "$name.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "$port" \
        --device d1 --weight 100 >/dev/null
      # Exit status 1 is "warning" (e.g. balance notes), 2 is an error.
      swift-ring-builder "$name.builder" rebalance >/dev/null || [[ $? == 1 ]]
    )
  fi
done

alive() { # $1 = pidfile; true if it names a running swift process
  [[ -f $1 ]] || return 1
  local pid
  pid="$(cat "$1")"
  [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q swift-
}

for name in account container object proxy; do
  pidfile="$DIR/run/$name.pid"
  if alive "$pidfile"; then continue; fi
  # setsid: own session, so the servers outlive the shell/job that started them.
  # -v: log to stderr as well as syslog, captured in log/<name>.log.
  setsid "/usr/bin/swift-$name-server" "$ETC/$name-server.conf" -v \
    >>"$DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
done

for _ in $(seq 1 120); do
  if s3_ok; then
    print_env
    exit 0
  fi
  sleep 0.5
done

echo "swift-start: Swift did not answer S3 requests within 60 s; logs in $DIR/log:" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
exit 1
