"""Ingest Lambda: API Gateway HTTP API (payload v2) → the ingest pipeline → the source's reply.

Routes: ``/v1/hooks/{connector}/{tenant}`` (Youzan, WeChat, Shopify, signed JSON, Segment) and
Segment's ``/v1/{identify,track,page,screen,alias,group,batch}``. The handler is the stage runner's
HTTP shape (:func:`huiliu.stage.http_handler`); the adapter is :mod:`huiliu.ingest.http`.
"""

from __future__ import annotations

from typing import Any

from huiliu.stage import http_handler


def _build() -> Any:
    """Built on first use (no boto3 at import time); rebuilt when the settings change (tests)."""
    from huiliu.ingest.http import build_http_ingest

    return build_http_ingest()


handler = http_handler("ingest", build=_build)
