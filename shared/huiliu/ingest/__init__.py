"""Ingestion: connectors' requests → verified, deduplicated, archived canonical events on the bus.

Imports are lazy so a handler pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huiliu.ingest.pipeline import IngestPipeline
    from huiliu.ingest.replayer import ReplayReport

__all__ = ["IngestPipeline", "ReplayReport", "build_pipeline", "replay"]


def build_pipeline(settings: Any | None = None) -> IngestPipeline:
    from huiliu.ingest.pipeline import build_pipeline as _build

    return _build(settings)


def replay(*args: Any, **kwargs: Any) -> ReplayReport:
    """Re-ingest archived requests of a tenant in a time range (see :func:`huiliu.ingest.replayer.replay`)."""
    from huiliu.ingest.replayer import replay as _replay

    return _replay(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "IngestPipeline":
        from huiliu.ingest.pipeline import IngestPipeline

        return IngestPipeline
    if name == "ReplayReport":
        from huiliu.ingest.replayer import ReplayReport

        return ReplayReport
    raise AttributeError(name)
