"""Huiliu's deployment helpers and local runtime (not deployed to Lambda)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Where a running local runtime describes itself (ports, tenant, keys, env).
DEFAULT_STATE_FILE = ROOT / ".huiliu" / "local.json"


def state_file() -> Path:
    """The local runtime's state file (``HUILIU_STATE_FILE`` overrides)."""
    return Path(os.environ.get("HUILIU_STATE_FILE") or DEFAULT_STATE_FILE)


def local_state() -> dict[str, Any]:
    """What the running local runtime wrote about itself, or {} when none has run."""
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def default_api() -> str:
    """The HTTP API the CLI talks to: ``HUILIU_API``, else the local runtime's, else port 3000."""
    return os.environ.get("HUILIU_API") or local_state().get("api_url") or "http://127.0.0.1:3000"
