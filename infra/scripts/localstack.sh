#!/usr/bin/env bash
# LocalStack mode.
#   localstack.sh run   start LocalStack in the foreground (host mode, no Docker) on :4566
#   localstack.sh test  run the integration tests against LocalStack
#
# With LOCALSTACK_ENDPOINT set (e.g. a LocalStack container elsewhere: http://localhost:4566) the
# tests use it as is, DynamoDB included. Without it, LocalStack's own runtime is started here in
# host mode from a Python 3.13 virtualenv (.localstack-venv). Host-mode LocalStack cannot start
# DynamoDB offline (it downloads a Java build and DynamoDB Local), so DynamoDB alone is pointed at a
# moto server (AWS_ENDPOINT_URL_DYNAMODB); SQS, EventBridge, S3, SES, Scheduler and Secrets Manager
# are LocalStack's.
set -euo pipefail
cd "$(dirname "$0")/../.."
LS_VENV=.localstack-venv
LS_PORT=${LOCALSTACK_PORT:-4566}
DDB_PORT=${HUILIU_DDB_PORT:-4567}
LOGS=.huiliu
mkdir -p "$LOGS"

ensure_localstack() {
  [ -x "$LS_VENV/bin/python" ] && "$LS_VENV/bin/python" -c "import localstack" 2>/dev/null && return
  py=""
  for candidate in python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
    path=$(command -v "$candidate" 2>/dev/null) || continue
    # pyenv shims of inactive versions exist but do not run
    if "$path" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then
      py=$path; break
    fi
  done
  [ -n "$py" ] || { echo "LocalStack host mode needs Python 3.13 (or set LOCALSTACK_ENDPOINT)" >&2; exit 1; }
  echo "==> installing LocalStack (host mode) into $LS_VENV with $py"
  "$py" -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "localstack-core[runtime]==2026.3.0" "cbor2<5.8" "pyopenssl>=25,<25.2" "cryptography>=45,<46" service_identity
}

ls_env() {
  export GATEWAY_LISTEN="127.0.0.1:${LS_PORT}"
  export SERVICES="sqs,events,s3,ses,scheduler,secretsmanager,sts,iam"
  export SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 LOCALSTACK_TELEMETRY=0
}

wait_for() {  # url, seconds
  for _ in $(seq 1 "$2"); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out waiting for $1" >&2; return 1
}

case "${1:-}" in
  run)
    ensure_localstack; ls_env
    exec "$LS_VENV/bin/python" -m localstack.runtime.main
    ;;
  test)
    pids=()
    cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
    trap cleanup EXIT
    if [ -n "${LOCALSTACK_ENDPOINT:-}" ]; then
      endpoint=$LOCALSTACK_ENDPOINT
    else
      ensure_localstack; ls_env
      "$LS_VENV/bin/python" -m localstack.runtime.main >"$LOGS/localstack.log" 2>&1 &
      pids+=($!)
      endpoint="http://127.0.0.1:${LS_PORT}"
      .venv/bin/moto_server -H 127.0.0.1 -p "$DDB_PORT" >"$LOGS/moto-dynamodb.log" 2>&1 &
      pids+=($!)
      export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${DDB_PORT}"
      wait_for "http://127.0.0.1:${DDB_PORT}/moto-api/" 30
    fi
    wait_for "${endpoint}/_localstack/health" 90
    echo "==> integration tests against LocalStack at $endpoint${AWS_ENDPOINT_URL_DYNAMODB:+ (DynamoDB: $AWS_ENDPOINT_URL_DYNAMODB)}"
    HUILIU_AWS_ENDPOINT="$endpoint" .venv/bin/python -m pytest -q -m integration
    ;;
  *)
    echo "usage: $0 run|test" >&2; exit 2 ;;
esac
