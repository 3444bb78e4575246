"""The local runtime's SQS pollers behave as Lambda's event source mappings do for latency: a long
poll answered at the first message, a batch that goes as soon as it is full, a batching window that
only waits to fill a batch, and a record that failed asked for again as soon as it is due."""

from __future__ import annotations

from typing import Any

from huiliu_infra.local.provision import MappingSpec
from huiliu_infra.local.runtime import POLL_WAIT_SECONDS, LocalRuntime


class FakeSqs:
    """Answers receive_message from a script of batches (a list of message counts), recording waits."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.waits: list[int] = []
        self.asked: list[int] = []
        self.seq = 0

    def receive_message(self, **kw: Any) -> dict[str, Any]:
        self.waits.append(kw["WaitTimeSeconds"])
        self.asked.append(kw["MaxNumberOfMessages"])
        count = min(self.script.pop(0) if self.script else 0, kw["MaxNumberOfMessages"])
        messages = []
        for _ in range(count):
            self.seq += 1
            messages.append({"MessageId": str(self.seq), "ReceiptHandle": f"r{self.seq}", "Body": "{}"})
        return {"Messages": messages}


def _mapping(batch: int, window: int) -> MappingSpec:
    return MappingSpec("M", "Fn", "Q", batch_size=batch, window_seconds=window, report_failures=True)


def _runtime() -> LocalRuntime:
    return LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True)


def test_an_idle_queue_is_long_polled_and_a_full_batch_goes_at_once() -> None:
    sqs = FakeSqs([10])
    messages, first_at = _runtime()._receive(sqs, "url", _mapping(batch=10, window=5))
    assert len(messages) == 10
    assert first_at > 0
    # one long poll, no waiting for the 5 s window: the batch was full
    assert sqs.waits == [POLL_WAIT_SECONDS]


def test_the_window_waits_only_to_fill_the_batch() -> None:
    sqs = FakeSqs([3, 7, 5])
    messages, _ = _runtime()._receive(sqs, "url", _mapping(batch=10, window=5))
    assert len(messages) == 10  # filled on the second receive, then handed over at once
    assert sqs.asked == [10, 7]
    # the rest of the window is long-polled in whole seconds (answered at the first arrival)
    assert sqs.waits[0] == POLL_WAIT_SECONDS
    assert 0 < sqs.waits[1] <= 5


def test_without_a_window_a_partial_batch_goes_at_once() -> None:
    sqs = FakeSqs([2, 5])
    messages, _ = _runtime()._receive(sqs, "url", _mapping(batch=10, window=0))
    assert len(messages) == 2
    assert len(sqs.waits) == 1


def test_an_empty_long_poll_returns_nothing() -> None:
    sqs = FakeSqs([])
    assert _runtime()._receive(sqs, "url", _mapping(batch=10, window=1)) == ([], 0.0)


def test_records_due_for_a_retry_are_asked_for_without_a_long_poll() -> None:
    import time

    sqs = FakeSqs([1])
    messages, _ = _runtime()._receive(sqs, "url", _mapping(batch=1, window=0), retry_due=time.monotonic())
    assert len(messages) == 1
    # a short poll: the emulator's long poll would see a message visible again only at its next rescan
    assert sqs.waits == [0]


def test_failed_records_are_made_visible_again_when_due() -> None:
    import time

    sqs = FakeSqs([1])
    released: list[float] = []
    due = time.monotonic()
    messages, _ = _runtime()._receive(
        sqs, "url", _mapping(batch=1, window=0), retry_due=due, release=lambda: released.append(due)
    )
    assert released == [due]  # released before the queue was asked again
    assert len(messages) == 1
    assert sqs.waits == [0]
