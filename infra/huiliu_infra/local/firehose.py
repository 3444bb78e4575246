"""A local Amazon Data Firehose (Direct PUT → S3), modelled from template.yaml's delivery streams.

moto's Firehose writes one S3 object per PutRecord call, ignores ``!{timestamp:…}`` prefixes and
compression, and uses the wall clock; the raw archive depends on exactly those behaviours (one
object per buffer, the timestamp prefix, GZIP, the runtime's movable clock). So the local runtime
answers the Firehose API itself (``AWS_ENDPOINT_URL_FIREHOSE`` points at its HTTP port; JSON 1.1
protocol, ``X-Amz-Target: Firehose_20150804.<Operation>``) and delivers to the emulated S3:

* records are buffered per stream in arrival order, with the runtime clock's arrival time;
* a buffer is delivered when it reaches ``BufferingHints.SizeInMBs`` or its oldest record is
  ``BufferingHints.IntervalInSeconds`` old (checked on every scheduler tick), and on ``flush()``
  (the runtime's ``drain`` — a buffer is work in flight — and ``stop``);
* the object key is the ``Prefix`` with ``!{timestamp:<Java date pattern>}`` evaluated at the oldest
  record's arrival time (UTC), then ``{stream}-1-{yyyy-MM-dd-HH-mm-ss}-{uuid}`` (+ ``.gz`` for
  ``CompressionFormat: GZIP``), the body the records' bytes concatenated (gzip-compressed).
"""

from __future__ import annotations

import base64
import gzip
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TARGET_PREFIX = "Firehose_20150804."
_TIMESTAMP = re.compile(r"!\{timestamp:([^}]+)\}")
_JAVA = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))
MAX_RECORD_BYTES = 1000 * 1024
MAX_BATCH_RECORDS = 500


@dataclass
class StreamSpec:
    logical: str
    name: str
    bucket: str
    prefix: str
    interval_seconds: int = 300
    size_bytes: int = 5 * 1024 * 1024
    gzip: bool = False


@dataclass
class _Buffer:
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    oldest: datetime | None = None


def render_prefix(prefix: str, at: datetime) -> str:
    def java(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for token, directive in _JAVA:
            pattern = pattern.replace(token, directive)
        return at.strftime(pattern)

    return _TIMESTAMP.sub(java, prefix)


def object_key(spec: StreamSpec, at: datetime) -> str:
    name = f"{spec.name}-1-{at:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
    return render_prefix(spec.prefix, at) + name + (".gz" if spec.gzip else "")


class FirehoseEmulator:
    def __init__(
        self, streams: list[StreamSpec], clock: Callable[[], datetime], s3: Callable[[], Any]
    ) -> None:
        self.streams = {s.name: s for s in streams}
        self.clock = clock
        self.s3 = s3
        self._buffers: dict[str, _Buffer] = {s.name: _Buffer() for s in streams}
        self._lock = threading.Lock()
        self.delivered: list[str] = []

    # -- the API ------------------------------------------------------------------------------------
    def handle(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        operation = target[len(TARGET_PREFIX) :]
        name = body.get("DeliveryStreamName", "")
        if name not in self.streams:
            return 400, {
                "__type": "ResourceNotFoundException",
                "message": f"Firehose {name} not found.",
            }
        if operation == "PutRecord":
            ids = self.put(name, [body.get("Record", {})])
            return 200, {"RecordId": ids[0], "Encrypted": False}
        if operation == "PutRecordBatch":
            records = body.get("Records", [])
            if not 1 <= len(records) <= MAX_BATCH_RECORDS:
                return 400, {"__type": "ValidationException", "message": "1 to 500 records per batch"}
            ids = self.put(name, records)
            return 200, {
                "FailedPutCount": 0,
                "Encrypted": False,
                "RequestResponses": [{"RecordId": i} for i in ids],
            }
        if operation == "DescribeDeliveryStream":
            return 200, {
                "DeliveryStreamDescription": {"DeliveryStreamName": name, "DeliveryStreamStatus": "ACTIVE"}
            }
        return 400, {"__type": "InvalidArgumentException", "message": f"{operation} is not emulated"}

    def put(self, name: str, records: list[dict[str, Any]]) -> list[str]:
        spec = self.streams[name]
        now = self.clock()
        ids = []
        with self._lock:
            buffer = self._buffers[name]
            for record in records:
                data = base64.b64decode(record.get("Data", ""))
                if len(data) > MAX_RECORD_BYTES:
                    raise ValueError("record larger than 1,000 KiB")
                if buffer.oldest is None:
                    buffer.oldest = now
                buffer.records.append(data)
                buffer.size += len(data)
                ids.append(uuid.uuid4().hex)
                if buffer.size >= spec.size_bytes:
                    self._deliver(spec, buffer)
                    buffer = self._buffers[name]
        return ids

    # -- delivery -----------------------------------------------------------------------------------
    def tick(self) -> int:
        """Deliver every buffer whose oldest record is at least the buffering interval old."""
        now = self.clock()
        delivered = 0
        with self._lock:
            for name, buffer in self._buffers.items():
                spec = self.streams[name]
                if (
                    buffer.oldest is not None
                    and (now - buffer.oldest).total_seconds() >= spec.interval_seconds
                ):
                    self._deliver(spec, buffer)
                    delivered += 1
        return delivered

    def flush(self) -> int:
        """Deliver every non-empty buffer now."""
        with self._lock:
            full = [n for n, b in self._buffers.items() if b.records]
            for name in full:
                self._deliver(self.streams[name], self._buffers[name])
        return len(full)

    def pending(self) -> int:
        with self._lock:
            return sum(len(b.records) for b in self._buffers.values())

    def _deliver(self, spec: StreamSpec, buffer: _Buffer) -> None:
        assert buffer.oldest is not None
        body = b"".join(buffer.records)
        key = object_key(spec, buffer.oldest)
        self.s3().put_object(Bucket=spec.bucket, Key=key, Body=gzip.compress(body) if spec.gzip else body)
        self.delivered.append(key)
        self._buffers[spec.name] = _Buffer()


def stream_specs(resources: dict[str, Any], resolver: Any, stack: str) -> list[StreamSpec]:
    """Delivery streams (Direct PUT → extended S3) of the translated template."""
    specs = []
    for logical, res in resources.items():
        if res.get("Type") != "AWS::KinesisFirehose::DeliveryStream":
            continue
        props = resolver.resolve(res.get("Properties", {}))
        dest = props.get("ExtendedS3DestinationConfiguration") or props.get("S3DestinationConfiguration")
        if not dest:
            raise ValueError(f"{logical}: the local runtime models Firehose → S3 destinations only")
        hints = dest.get("BufferingHints", {})
        specs.append(
            StreamSpec(
                logical=logical,
                name=props.get("DeliveryStreamName") or f"{stack}-{logical}"[:64],
                bucket=str(dest["BucketARN"]).rsplit(":", 1)[-1],
                prefix=dest.get("Prefix", ""),
                interval_seconds=int(hints.get("IntervalInSeconds", 300)),
                size_bytes=int(hints.get("SizeInMBs", 5)) * 1024 * 1024,
                gzip=dest.get("CompressionFormat", "UNCOMPRESSED") == "GZIP",
            )
        )
    return specs
