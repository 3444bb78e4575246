"""``huiliu dlq list|show|redrive``: dead-letter queues, each message with the reason it failed.

Operator commands on the queues themselves (AWS credentials): ``--local`` (the running local
runtime; the default) or ``--stack NAME`` (its ``AWS::SQS::Queue`` resources).

- ``list``: every DLQ, the queue it catches for, and how many messages it holds.
- ``show QUEUE [--max N] [--json]``: each message's id, when it failed, the stage, attempts, the
  ``failure_reason`` the stage runner attached (see ``huiliu.dead_letters``) and what the message
  was (detail-type, tenant, event id). Messages are peeked, not consumed: they become visible again
  at once.
- ``redrive QUEUE [--id MESSAGE_ID …] [--max N]``: send messages back to the queue they came from
  (the failure attributes dropped: a new failure attaches a new reason), then delete them from the
  DLQ. At least once: a stage sees a redriven event again and treats it idempotently.

QUEUE is a DLQ's logical name or any unique part of it, case-insensitive (``identity`` →
``IdentityDLQ``). Replaying archived raw webhooks is ``huiliu replay`` (see README).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

FAILURE_ATTRIBUTES = ("failure_reason", "failed_stage", "failed_at", "attempts", "source_queue")
NO_REASON = (
    "not recorded (moved by SQS's redrive policy): see the consuming function's log for this message id"
)


@dataclass
class DeadLetterQueue:
    name: str
    url: str
    arn: str
    depth: int
    source: str | None = None  # logical name of the queue it catches for
    source_url: str | None = None


@dataclass
class Letter:
    message_id: str
    receipt: str
    body: str
    sent_at: str
    reason: str
    stage: str | None = None
    failed_at: str | None = None
    attempts: str | None = None
    detail_type: str | None = None
    tenant_id: str | None = None
    event_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        keys = (
            "message_id",
            "sent_at",
            "failed_at",
            "stage",
            "attempts",
            "reason",
            "detail_type",
            "tenant_id",
        )
        return {k: getattr(self, k) for k in (*keys, "event_id")}


def queue_urls(args: argparse.Namespace) -> dict[str, str]:
    """Logical queue name → URL, for the local runtime or a deployed stack."""
    stack = getattr(args, "env_stack", None)
    if stack:
        from huiliu import aws

        found = aws.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
        return {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in found
            if r["ResourceType"] == "AWS::SQS::Queue"
        }
    from huiliu_infra.local.runtime import read_state

    return dict(read_state().get("queues") or {})


def discover(sqs: Any, urls: dict[str, str]) -> list[DeadLetterQueue]:
    attributes = {
        name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        for name, url in urls.items()
    }
    by_arn = {a.get("QueueArn"): name for name, a in attributes.items()}
    targets: dict[str, str] = {}
    for name, attrs in attributes.items():
        if attrs.get("RedrivePolicy"):
            target = by_arn.get(json.loads(attrs["RedrivePolicy"]).get("deadLetterTargetArn"))
            if target:
                targets[target] = name
    return [
        DeadLetterQueue(
            name=name,
            url=urls[name],
            arn=attributes[name].get("QueueArn", ""),
            depth=int(attributes[name].get("ApproximateNumberOfMessages", 0)),
            source=targets[name],
            source_url=urls[targets[name]],
        )
        for name in sorted(targets)
    ]


def pick(queues: list[DeadLetterQueue], wanted: str) -> DeadLetterQueue:
    exact = [q for q in queues if q.name.lower() == wanted.lower()]
    matches = exact or [q for q in queues if wanted.lower() in q.name.lower()]
    if len(matches) != 1:
        names = ", ".join(q.name for q in queues)
        raise SystemExit(f"no single dead-letter queue matches {wanted!r} (there are: {names})")
    return matches[0]


def _letter(message: dict[str, Any]) -> Letter:
    attrs = {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()}
    body = message.get("Body") or ""
    detail_type = tenant = event_id = None
    try:
        envelope = json.loads(body)
        detail = envelope.get("detail") or {}
        detail_type = envelope.get("detail-type")
        tenant = detail.get("tenant_id")
        event_id = detail.get("event_id") or detail.get("message_id")
    except (ValueError, AttributeError):
        pass
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    from datetime import UTC, datetime

    return Letter(
        message_id=message["MessageId"],
        receipt=message["ReceiptHandle"],
        body=body,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds") if sent else "",
        reason=attrs.get("failure_reason") or NO_REASON,
        stage=attrs.get("failed_stage"),
        failed_at=attrs.get("failed_at"),
        attempts=attrs.get("attempts"),
        detail_type=detail_type,
        tenant_id=tenant,
        event_id=event_id,
        attributes=message.get("MessageAttributes") or {},
    )


def receive(sqs: Any, url: str, limit: int, *, hold_seconds: int = 30) -> list[Letter]:
    """Up to ``limit`` messages, held invisible for ``hold_seconds`` (the caller releases or deletes)."""
    letters: dict[str, Letter] = {}
    empty_rounds = 0
    while len(letters) < limit and empty_rounds < 2:
        resp = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(letters)),
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = resp.get("Messages", [])
        empty_rounds = 0 if batch else empty_rounds + 1
        for message in batch:
            letters.setdefault(message["MessageId"], _letter(message))
    return list(letters.values())


def peek(sqs: Any, url: str, limit: int) -> list[Letter]:
    letters = receive(sqs, url, limit)
    for letter in letters:  # visible again at once: peeking consumes nothing
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=letter.receipt, VisibilityTimeout=0)
    return letters


def redrive(sqs: Any, queue: DeadLetterQueue, limit: int, ids: set[str] | None = None) -> list[str]:
    assert queue.source_url
    moved = []
    letters = receive(sqs, queue.url, limit if not ids else max(limit, 1000))
    for letter in letters:
        if ids and letter.message_id not in ids:
            sqs.change_message_visibility(
                QueueUrl=queue.url, ReceiptHandle=letter.receipt, VisibilityTimeout=0
            )
            continue
        attributes = {
            k: {"DataType": v.get("DataType", "String"), "StringValue": v.get("StringValue", "")}
            for k, v in letter.attributes.items()
            if k not in FAILURE_ATTRIBUTES and v.get("StringValue") is not None
        }
        kwargs: dict[str, Any] = {"QueueUrl": queue.source_url, "MessageBody": letter.body}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        sqs.send_message(**kwargs)
        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=letter.receipt)
        moved.append(letter.message_id)
    return moved


# ------------------------------------------------------------------ command
def register(sub: Any) -> None:
    parser = sub.add_parser("dlq", help="dead-letter queues: list, show (with failure reasons), redrive")
    dsub = parser.add_subparsers(dest="dlq_action", required=True)
    dsub.add_parser("list", help="every DLQ and its depth").set_defaults(func=cmd_dlq)
    show = dsub.add_parser("show", help="the messages of one DLQ with their failure reasons")
    show.add_argument("queue")
    show.add_argument("--max", type=int, default=20)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_dlq)
    again = dsub.add_parser("redrive", help="send a DLQ's messages back to their source queue")
    again.add_argument("queue")
    again.add_argument("--id", dest="ids", action="append", help="only this message id (repeatable)")
    again.add_argument("--max", type=int, default=100)
    again.set_defaults(func=cmd_dlq)


def cmd_dlq(args: argparse.Namespace) -> int:
    from huiliu import aws

    if not getattr(args, "env_stack", None) and not getattr(args, "local", False):
        from huiliu_infra.cli import use_local_env

        use_local_env()
        aws.reset_clients()
    sqs = aws.client("sqs")
    try:
        queues = discover(sqs, queue_urls(args))
        if args.dlq_action == "list":
            print(f"{'dead-letter queue':<24} {'for queue':<20} messages")
            for queue in queues:
                print(f"{queue.name:<24} {queue.source or '?':<20} {queue.depth}")
            return 0
        queue = pick(queues, args.queue)
        if args.dlq_action == "show":
            letters = peek(sqs, queue.url, args.max)
            if args.json:
                print(json.dumps([letter.summary() for letter in letters], indent=2, ensure_ascii=False))
                return 0
            print(f"{queue.name} (for {queue.source}): {queue.depth} message(s)")
            for letter in letters:
                what = f"{letter.detail_type or '?'}  tenant {letter.tenant_id or '?'}"
                print(f"- {letter.message_id}  sent {letter.sent_at}  {what}")
                when = f"attempts {letter.attempts or '?'}, failed {letter.failed_at or '?'}"
                print(f"    stage {letter.stage or '?'}, {when}")
                print(f"    reason: {letter.reason}")
            return 0
        moved = redrive(sqs, queue, args.max, set(args.ids) if args.ids else None)
        print(f"redrove {len(moved)} message(s) from {queue.name} to {queue.source}")
        return 0
    except SystemExit as exc:
        print(str(exc), file=sys.stderr)
        return 2
