"""Segments function: ``profile.changed|merged|unmerged|erased`` (via SQS) -> segment.entered/exited.

The stage runner (huiliu.stage) parses each record into its contract, calls the segments service
and publishes what it returns; a record that fails fails alone (partial batch response).
"""

from __future__ import annotations

from typing import Any

from huiliu.stage import queue_handler


def _build() -> Any:
    """Built on first use: no boto3 at import time."""
    from huiliu.segments.wiring import build_service

    return build_service()


handler = queue_handler("segments", build=_build)
