"""`make demo` keeps working: every sample webhook it sends is accepted by the local runtime."""

from __future__ import annotations

from typing import Any

import pytest
from huiliu_infra import sources
from huiliu_infra.demo import sample_requests

pytestmark = pytest.mark.integration


def test_every_demo_request_is_accepted_and_nothing_lands_in_a_dlq(local_runtime: Any) -> None:
    # Given the demo's signed sample requests for the demo tenant
    requests = sample_requests(local_runtime.tenant["connectors"])

    # When they are sent
    answers = {request.label: sources.send(request) for request in requests}

    # Then each gets its source's success reply, and the pipeline ends with empty DLQs
    assert {label: status for label, (status, _) in answers.items()} == dict.fromkeys(answers, 200)
    assert local_runtime.drain(timeout=60)
    depths = local_runtime.queue_depths()
    assert {k: v for k, v in depths.items() if k.endswith("DLQ") and v} == {}
