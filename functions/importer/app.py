"""CSV import Lambda: SQS (fed by S3 ObjectCreated notifications) → one S3 object per record.

Partial batch failure: a record whose import hits an AWS error is retried by SQS alone; rows
already published are deduplicated on the retry. ``s3:TestEvent`` messages are acknowledged.

Long files: the importer checkpoints after every chunk and stops when the invocation is about to
time out. The file is then continued by a message ``{"huiliu_import_continue": {"bucket", "key"}}``
sent to ``IMPORT_QUEUE_URL`` (this function's own queue); without that variable the record fails,
SQS redelivers it after its visibility timeout, and the next attempt resumes from the checkpoint.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from huiliu.observability import logger
from huiliu.stage import register

if TYPE_CHECKING:
    from huiliu.ingest.importer import CsvImporter

processor = BatchProcessor(event_type=EventType.SQS)
_context: Any = None  # the current invocation's Lambda context (for the remaining time)
CONTINUE = "huiliu_import_continue"


class ImportIncomplete(Exception):
    """The file is not finished and no continuation queue is configured: fail the record so SQS
    redelivers it; the checkpoint lets the next attempt resume."""


def _build() -> CsvImporter:
    from huiliu.ingest.importer import build_importer

    return build_importer()


# The importer's collaborator slot: built on first use, rebuilt when the settings change,
# injected with ``huiliu.stage.configure("importer", service=...)`` like every stage's service.
_state = register("importer", build=_build)


def importer() -> CsvImporter:
    return _state.get_service()  # type: ignore[no-any-return]


def s3_objects(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) pairs of an S3 event notification; [] for s3:TestEvent."""
    if body.get("Event") == "s3:TestEvent" or CONTINUE in body:
        return []
    found = []
    for record in body.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return found


def _remaining_ms() -> Any:
    get = getattr(_context, "get_remaining_time_in_millis", None)
    return get if callable(get) else None


def continue_later(bucket: str, key: str) -> None:
    """Hand an unfinished file to the next invocation (a continuation message, or SQS redelivery)."""
    import os

    queue_url = os.environ.get("IMPORT_QUEUE_URL")
    if not queue_url:
        raise ImportIncomplete(f"{key} is not finished; SQS will redeliver and it resumes")
    from huiliu import aws

    body = {CONTINUE: {"bucket": bucket, "key": key}}
    aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    logger.info("csv import continues in another invocation", extra={"key": key})


def record_handler(record: SQSRecord) -> None:
    from huiliu.ingest.importer import is_import_file

    body = json.loads(record.body)
    jobs = [(b, k, False) for b, k in s3_objects(body)]
    target = body.get(CONTINUE)
    if (
        isinstance(target, dict)
        and isinstance(target.get("bucket"), str)
        and isinstance(target.get("key"), str)
    ):
        jobs.append((target["bucket"], target["key"], True))
    for bucket, key, resume_only in jobs:
        if not is_import_file(key):
            logger.info("not an import file, skipped", extra={"key": key})
            continue
        report = importer().run(bucket, key, remaining_ms=_remaining_ms(), resume_only=resume_only)
        if report.status == "in_progress":
            continue_later(bucket, key)


def process(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _context
    _context = context
    try:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    finally:
        _context = None


@logger.inject_lambda_context(clear_state=True)
def _in_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event, context)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (a local runtime may pass no context)."""
    return process(event) if context is None else _in_lambda(event, context)
