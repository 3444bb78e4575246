#!/usr/bin/env bash
# checkov on template.yaml (run by `make test` and `make scan`). Every check passes or is skipped in
# the template's own Metadata with a one-line reason.
#
# checkov lives in its own virtualenv (.checkov-venv): it pins boto3/botocore 1.35, packaging 23 and
# networkx 2, which would downgrade what moto, SAM CLI and cfn-lint need in .venv. The version is the
# `scan` extra of pyproject.toml. Checkov's network features are off (--skip-download).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.checkov-venv
PIN=$(grep -oE 'checkov==[0-9][0-9.]*' pyproject.toml | head -1)
STAMP="$VENV/.installed-$PIN"
if [ ! -f "$STAMP" ]; then
  echo "==> installing $PIN into $VENV (first run takes a minute)"
  [ -x "$VENV/bin/python" ] || .venv/bin/python -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PIN"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
"$VENV/bin/checkov" --file template.yaml --framework cloudformation --skip-download --compact --quiet "$@"
