"""Dead letters that say why: a record failing its last attempt goes to the DLQ with its reason.

SQS moves a message to its queue's DLQ after ``maxReceiveCount`` failed receives, keeping the
body and attributes it had — not why it failed (and attributes cannot be changed in place). So the
stage runner does the move itself on the **last** attempt: it sends the body to the DLQ with

    failure_reason   "<ExceptionType>: <message>" (first 1,000 characters)
    failed_stage     the stage that failed (identity, journeys …)
    failed_at        ISO-8601 UTC
    attempts         how many receives it took
    source_queue     the queue it came from (what ``huiliu dlq redrive`` sends it back to)

and then reports the record as handled, so SQS deletes it from the source queue. The send is tried
``FORWARD_ATTEMPTS`` times (the SDK's own retries inside each), with a short back-off: a throttle
that outlasts the SDK's retries on this last, rare send would otherwise cost the reason. If every try
fails, the record is reported as failed and SQS's own redrive policy moves it (without a reason: the
function's log has it, keyed by the SQS message id). A redriven message that fails again gets a
fresh message with the new reason. Earlier attempts are only logged ("record failed" with the
message id and reason).

Cost: nothing on success. On a dead letter: one GetQueueAttributes per container (the source
queue's redrive policy, cached) and one SendMessage. IAM: sqs:SendMessage on the function's own DLQ
(``SQSSendMessagePolicy``; sqs:GetQueueAttributes on the source queue comes with the SQS event
source).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from huiliu.observability import logger

REASON_LIMIT = 1000
FORWARD_ATTEMPTS = 3
FORWARD_BACKOFF_S = 0.2  # doubled per try: 0.2 s, 0.4 s
_sleep: Callable[[float], None] = time.sleep  # tests replace it: they never sleep
_policies: dict[str, tuple[str, int] | None] = {}


def reason_of(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:REASON_LIMIT]


def _queue_url(sqs: Any, arn: str) -> str:
    """The queue's URL from its ARN on the client's endpoint (no sqs:GetQueueUrl needed)."""
    _, _, _, _region, account, name = arn.split(":", 5)
    return f"{sqs.meta.endpoint_url.rstrip('/')}/{account}/{name}"


def _redrive(sqs: Any, source_arn: str) -> tuple[str, int] | None:
    """(DLQ URL, maxReceiveCount) of the source queue, cached per container."""
    if source_arn not in _policies:
        attrs = sqs.get_queue_attributes(
            QueueUrl=_queue_url(sqs, source_arn), AttributeNames=["RedrivePolicy"]
        )
        raw = attrs.get("Attributes", {}).get("RedrivePolicy")
        if raw:
            policy = json.loads(raw)
            _policies[source_arn] = (
                _queue_url(sqs, policy["deadLetterTargetArn"]),
                int(policy["maxReceiveCount"]),
            )
        else:
            _policies[source_arn] = None
    return _policies[source_arn]


def forward_if_last_attempt(record: Any, exc: BaseException, stage: str) -> bool:
    """Send a failing record to its DLQ with the reason when this was its last attempt.

    Returns True when the record is now in the DLQ (report it as handled), False otherwise
    (report it as failed: SQS retries it, or redrives it without a reason)."""
    reason = reason_of(exc)
    raw = record.raw_event if hasattr(record, "raw_event") else record
    count = (raw.get("attributes") or {}).get("ApproximateReceiveCount")
    attempts = int(str(count)) if str(count or "").isdigit() else 0
    source_arn = raw.get("eventSourceARN") or ""
    logger.warning(
        "record failed",
        extra={"stage": stage, "message_id": raw.get("messageId"), "attempt": attempts, "reason": reason},
    )
    if not source_arn.startswith("arn:") or attempts < 1:  # not a record SQS delivered
        return False
    try:
        from huiliu import aws

        sqs = aws.client("sqs")
        policy = _redrive(sqs, source_arn)
        if policy is None or attempts < policy[1]:
            return False
        dlq_url, _max = policy
        attributes = {
            k: {"DataType": v.get("dataType", "String"), "StringValue": v.get("stringValue", "")}
            for k, v in (raw.get("messageAttributes") or {}).items()
            if not k.startswith("failed_")
            and k not in ("failure_reason", "attempts", "source_queue")
            and v.get("stringValue") is not None
        }
        attributes.update(
            {
                "failure_reason": {"DataType": "String", "StringValue": reason},
                "failed_stage": {"DataType": "String", "StringValue": stage},
                "failed_at": {
                    "DataType": "String",
                    "StringValue": datetime.now(UTC).isoformat(timespec="seconds"),
                },
                "attempts": {"DataType": "Number", "StringValue": str(attempts)},
                "source_queue": {"DataType": "String", "StringValue": source_arn},
            }
        )
        # SQS allows 10 message attributes: ours first, then as many of the original as fit
        ours = ("failure_reason", "failed_stage", "failed_at", "attempts", "source_queue")
        kept = {k: attributes[k] for k in ours} | {k: v for k, v in attributes.items() if k not in ours}
        _send_with_retries(
            sqs,
            QueueUrl=dlq_url,
            MessageBody=raw.get("body") or "",
            MessageAttributes=dict(list(kept.items())[:10]),
        )
    except Exception as send_error:  # the DLQ send failed: leave it to SQS's redrive policy
        logger.error("dead letter not forwarded", extra={"stage": stage, "reason": reason_of(send_error)})
        return False
    logger.error("dead letter", extra={"stage": stage, "message_id": raw.get("messageId"), "reason": reason})
    return True


def _send_with_retries(sqs: Any, **request: Any) -> None:
    """``SendMessage``, tried ``FORWARD_ATTEMPTS`` times; the last error is raised."""
    for attempt in range(1, FORWARD_ATTEMPTS + 1):
        try:
            sqs.send_message(**request)
            return
        except Exception as exc:
            if attempt == FORWARD_ATTEMPTS:
                raise
            logger.warning("dead letter send retried", extra={"attempt": attempt, "reason": reason_of(exc)})
            _sleep(FORWARD_BACKOFF_S * 2 ** (attempt - 1))
