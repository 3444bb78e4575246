"""CSV import Lambda: SQS (fed by S3 ObjectCreated notifications) → one S3 object per record.

Partial batch failure: a record whose import hits an AWS error is retried by SQS alone; rows
already published are deduplicated on the retry. ``s3:TestEvent`` messages are acknowledged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from huiliu.observability import logger

if TYPE_CHECKING:
    from huiliu.ingest.importer import CsvImporter
    from huiliu.settings import Settings

processor = BatchProcessor(event_type=EventType.SQS)
_built: tuple[Settings, CsvImporter] | None = None


def importer() -> CsvImporter:
    global _built
    from huiliu.settings import get_settings

    settings = get_settings()
    if _built is None or _built[0] is not settings:
        from huiliu.ingest.importer import build_importer

        _built = (settings, build_importer(settings))
    return _built[1]


def s3_objects(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) pairs of an S3 event notification; [] for s3:TestEvent."""
    if body.get("Event") == "s3:TestEvent":
        return []
    found = []
    for record in body.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return found


def record_handler(record: SQSRecord) -> None:
    from huiliu.ingest.importer import is_import_file

    for bucket, key in s3_objects(json.loads(record.body)):
        if not is_import_file(key):
            logger.info("not an import file, skipped", extra={"key": key})
            continue
        importer().run(bucket, key)


def process(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


@logger.inject_lambda_context(clear_state=True)
def _in_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event, context)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (a local runtime may pass no context)."""
    return process(event) if context is None else _in_lambda(event, context)
