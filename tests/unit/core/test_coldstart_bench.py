"""The cold-start bench measures what a cold HTTP container really does: its first request must be
served (200) through the real handler, against the bench's canned DynamoDB."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import bench_coldstart as bench
from benchmarks.bench_coldstart_requests import FIRST_REQUESTS, CannedAws
from benchmarks.bench_coldstart_requests import env as canned_env

CASES = [(name, label) for name, requests in FIRST_REQUESTS.items() for _, label in requests]


@pytest.mark.parametrize(("function", "label"), CASES)
def test_each_first_request_is_served_in_a_fresh_interpreter(function: str, label: str) -> None:
    case = bench.cases([function])[f"{function} {label}"]
    _name, path, services, event, _label = case
    with CannedAws() as aws:
        env = {**bench._env(), **bench.literal_env(function), **canned_env(aws)}
        imported, with_clients, total = bench._sample(bench.function_code(path, services, event), env)
        calls = list(aws.calls)

    assert 0 < imported <= with_clients <= total
    assert calls[0] in ("GetItem", "Query")  # the key lookup (admin) or the route's read (ops)


def test_a_first_request_that_fails_fails_the_sample() -> None:
    name, requests = next(iter(FIRST_REQUESTS.items()))
    path, services = bench.functions()[name]
    event = json.loads(json.dumps(requests[0][0]))
    event["headers"]["authorization"] = "Bearer hl_not_the_bench_key"  # 401: not a cold path
    with CannedAws() as aws, pytest.raises(RuntimeError, match="first request: 401"):
        bench._sample(bench.function_code(path, services, event), {**bench._env(), **canned_env(aws)})


def test_the_floor_builds_the_functions_own_clients() -> None:
    code = bench.floor_code(["dynamodb", "sqs"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(result.stdout.split()[-1]) > 0
    assert "for service in ['dynamodb', 'sqs']" in code
