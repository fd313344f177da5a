#!/usr/bin/env bash
# The project's test command (`npm test`, and what .ci/run runs).
#
#   test/unit         shape-independent tests, run once
#   test/integration  run twice: embedded shape (SQLite + fs) and cluster shape (PostgreSQL + S3)
#   test/e2e          whole-process tests (the CLI, `mairust serve`), also run in both shapes
#
# Peers (swaks, smtp-source, rspamd) are installed and started when missing.
# The cluster shape needs PostgreSQL (MAIRUST_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres)
# and an S3 server; when MAIRUST_S3_ENDPOINT is not set this script installs and starts the local
# Swift server (scripts/s3/). It never skips a shape silently: MAIRUST_TEST_SHAPES=embedded must be
# asked for explicitly, and then the summary says so.
set -u
cd "$(dirname "$0")/.."
mkdir -p .tmp

shapes="${MAIRUST_TEST_SHAPES:-embedded cluster}"
concurrency="${MAIRUST_TEST_CONCURRENCY:-2}"
total_pass=0
total_fail=0
status=0

find_tests() { find "$@" -name '*.test.ts' 2>/dev/null | sort; }

run_suite() {
  local label=$1; shift
  local files
  files=$(find_tests "$@")
  if [ -z "$files" ]; then echo "== $label: no test files"; return 0; fi
  echo "== $label"
  # shellcheck disable=SC2086
  node --import tsx --test --test-concurrency="$concurrency" --test-reporter=spec $files 2>&1 | tee ".tmp/test-$label.log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -E '^ℹ pass [0-9]+' ".tmp/test-$label.log" | tail -1 | awk '{print $3}')
  f=$(grep -E '^ℹ fail [0-9]+' ".tmp/test-$label.log" | tail -1 | awk '{print $3}')
  total_pass=$((total_pass + ${p:-0}))
  total_fail=$((total_fail + ${f:-0}))
  if [ "$rc" -ne 0 ]; then status=1; [ "${f:-0}" -eq 0 ] && total_fail=$((total_fail + 1)); fi
}

# Real peers the tests talk to (Debian packages; installing needs root): swaks, smtp-source, openssl,
# and rspamd with its loopback DNS. Nothing is mocked, so a missing peer is installed, not skipped.
command -v swaks >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 || bash scripts/peers/install-smtp-peers.sh
if [ -z "${MAIRUST_RSPAMD_URL:-}" ]; then
  bash scripts/rspamd/install.sh && eval "$(bash scripts/rspamd/start.sh)" && export MAIRUST_RSPAMD_URL || {
    echo "error: could not start rspamd for the spam tests" >&2; status=1; total_fail=$((total_fail + 1))
  }
fi

run_suite unit test/unit

for shape in $shapes; do
  if [ "$shape" = cluster ]; then
    if [ -z "${MAIRUST_S3_ENDPOINT:-}" ]; then
      bash scripts/s3/swift-install.sh && eval "$(bash scripts/s3/swift-start.sh)" || {
        echo "error: could not start the S3 test server; the cluster shape cannot run" >&2
        status=1; total_fail=$((total_fail + 1)); continue
      }
    fi
    export MAIRUST_S3_ENDPOINT MAIRUST_S3_REGION MAIRUST_S3_ACCESS_KEY_ID MAIRUST_S3_SECRET_ACCESS_KEY
  fi
  MAIRUST_TEST_SHAPE=$shape run_suite "integration-$shape" test/integration
  MAIRUST_TEST_SHAPE=$shape run_suite "e2e-$shape" test/e2e
done

case " $shapes " in *" cluster "*) ;; *) echo "NOTE: the cluster shape (PostgreSQL + S3) was NOT run (MAIRUST_TEST_SHAPES=$shapes)";; esac
echo "$total_pass passed, $total_fail failed"
exit $status
