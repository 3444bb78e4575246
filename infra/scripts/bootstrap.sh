#!/usr/bin/env bash
# Create .venv with a Python 3.12 interpreter (Lambda's runtime) and install Huiliu with its dev
# tools. Re-runs only when pyproject.toml changed. Override the interpreter with PYTHON=/path/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv
STAMP="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
[ -f "$STAMP" ] && exit 0

runs_312() {  # the candidate runs (pyenv shims of inactive versions do not) and is 3.12+
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  # Lambda runs python3.12: prefer exactly that, from PATH or pyenv, then any newer Python.
  for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 python3.13 python3; do
    path=$(command -v "$candidate" 2>/dev/null) || continue
    if runs_312 "$path"; then echo "$path"; return; fi
  done
  echo "Huiliu needs Python >= 3.12 (Lambda runs python3.12); set PYTHON=/path/to/python3.12" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  py=$(pick_python)
  echo "==> creating $VENV with $py ($("$py" --version))"
  "$py" -m venv "$VENV"
fi
echo "==> installing Huiliu and its dev tools into $VENV (first run takes a minute or two)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
rm -f "$VENV"/.installed-*
touch "$STAMP"
