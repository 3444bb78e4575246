"""The pipeline benchmark at tiny sizes (issue 14), so its harness cannot rot: the merchant mix through
the signed webhooks, the shipped segments and journeys active, the clock moved, faults injected —
nothing lost, nothing sent twice, every poisoned message dead-lettered with its reason, and the cost
meter and latency probes produce numbers. The full run is ``make bench`` (``benchmarks/bench_pipeline.py``).
"""

from __future__ import annotations

import pytest

from benchmarks import bench_pipeline
from benchmarks.faults import FaultRates

pytestmark = pytest.mark.integration


def test_pipeline_under_faults_loses_nothing_and_sends_nothing_twice() -> None:
    rates = FaultRates(crash=0.1, redeliver=0.2, throttle=0.05, throttle_escape=0.01, provider=0.3, poison=1)
    result = bench_pipeline.run_once(bench_pipeline.SMOKE, faults=rates, meter_cost=True)
    checks = result.checks
    print(result.phases, result.injected)

    assert result.accepted
    assert result.sent["5xx/dropped"] == 0
    assert checks["accepted_expected"] >= result.accepted - bench_pipeline.SMOKE.batch_events - 5
    assert checks["lost"] == 0, checks["lost_examples"]
    assert checks["duplicate_provider_sends"] == 0, (checks["provider_records"], checks["send_log"])
    assert checks["duplicate_sent_events"] == 0
    assert checks["provider_records"] == checks["send_log_sent_by_channel"]
    assert checks["provider_records"].get("email", 0) > 0
    poison = (checks["poison_planted"], checks["poison_in_dlq"], checks["poison_with_reason"])
    assert poison == (3, 3, 3), (poison, checks["dead_letter_reasons"])
    assert checks["other_dead_letters"] == 0, checks["dead_letter_reasons"]
    # a probe whose first send failed (injected) is retried after notify's backoff, past the window
    assert len(result.latencies) + result.probes_unsent == bench_pipeline.SMOKE.probes
    assert sum(result.injected.values()) > 0
    # the meter saw every stage of the path, and the tables render
    rows, paths = bench_pipeline.cost_summary(result)
    stages = {row[0] for row in rows}
    assert {"ingest", "identity", "segments", "journeys", "notify"} <= stages, stages
    assert paths == ["single", "time"]
    assert "p99" in bench_pipeline.table([result])
