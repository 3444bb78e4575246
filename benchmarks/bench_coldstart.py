"""Cold start per function: import the handler module, build the clients it uses and, for the HTTP
functions (admin, ops), serve a first typical request (``bench_coldstart_requests``), in a fresh
interpreter, as a ratio to the function's floor measured in the same run: ``import boto3`` plus the
clients the function's IAM policies allow (what any handler of that function must pay). The ratio
to the one-client floor (``import boto3`` plus a DynamoDB client), which tables before 2026-11-27
used, is shown beside it.

Each sample is its own subprocess (a cold Lambda has an empty module cache). Every function
sample is paired with floor samples taken just before it; the reported ratio is the median of
those paired ratios (a busy moment of the machine slows both sides of a pair). Lambda's environment is
imitated (``LAMBDA_TASK_ROOT`` set) so Powertools behaves as deployed, with X-Ray SDK tracing off as
the template's default (``BENCH_XRAY_SDK=1`` measures it on). The clients are those the function's
IAM policies allow (read from the template), built through ``huiliu.aws``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_coldstart_requests import FIRST_REQUESTS, CannedAws
from benchmarks.bench_coldstart_requests import env as canned_env

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3

FLOOR_CODE = """
import time
t0 = time.{clock}()
import boto3
for service in {services!r}:
    boto3.client(service, region_name="ap-east-1")
print(time.{clock}() - t0)
"""

FUNCTION = """
import importlib.util, json, sys, time
t0 = time.{clock}()
spec = importlib.util.spec_from_file_location("handler_under_test", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["handler_under_test"] = module
spec.loader.exec_module(module)
t1 = time.{clock}()
from huiliu import aws
for service in {services!r}:
    aws.client(service)
t2 = time.{clock}()
event = {event!r}
if event is not None:
    class Context:
        function_name = "bench"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:ap-east-1:123456789012:function:bench"
        aws_request_id = "bench-1"
    reply = module.handler(json.loads(event), Context())
    if reply.get("statusCode") != 200:
        raise SystemExit("first request: " + str(reply.get("statusCode")) + " " + str(reply.get("body")))
print(t1 - t0, t2 - t0, time.{clock}() - t0)
"""

_ACTION_SERVICES = {
    "dynamodb": "dynamodb",
    "events": "events",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "ses": "sesv2",
    "sns": "sns",  # the hot stream's topic (PublishBatch), SMS
    "sqs": "sqs",  # ingest -> identity, continuations, dead letters
}


def _resources() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "infra"))
    from huiliu_infra import cfn
    from huiliu_infra.local.provision import TEMPLATE

    return dict(cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")["Resources"])


def literal_env(logical: str) -> dict[str, str]:
    """The function's environment variables the template sets to plain strings (its service name,
    PYDANTIC_DISABLE_PLUGINS …): the sample runs with them, as the deployed function does."""
    variables = _resources()[logical]["Properties"].get("Environment", {}).get("Variables", {})
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def functions() -> dict[str, tuple[Path, list[str]]]:
    """Each function's handler file and the AWS services its IAM policies allow (from the template)."""
    from huiliu_infra import cfn

    resources = _resources()
    out: dict[str, tuple[Path, list[str]]] = {}
    for logical, res in resources.items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = res["Properties"]
        module = props["Handler"].rsplit(".", 1)[0]
        path = ROOT / cfn.code_path(props["Code"]) / f"{module}.py"
        role = resources[props["Role"]["Fn::GetAtt"][0]]["Properties"]
        services: list[str] = []
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                for action in actions:
                    service = _ACTION_SERVICES.get(str(action).split(":")[0])
                    if service and service not in services:
                        services.append(service)
        out[logical] = (path, services)
    return out


# CPU time of the sample's process by default: a cold start is CPU-bound (imports, model
# building), and the machine running the bench is often shared, so wall time mostly measures the
# neighbours. BENCH_CLOCK=wall measures wall time (process_time leaves out waiting on the network).
CLOCK = "perf_counter" if os.environ.get("BENCH_CLOCK") == "wall" else "process_time"
ONE_CLIENT = ["dynamodb"]


def floor_code(services: list[str]) -> str:
    """The floor of a function: ``import boto3`` and the clients its policies allow, nothing else."""
    return FLOOR_CODE.format(services=services, clock=CLOCK)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
        env.pop(key)
    env.update(
        AWS_REGION="ap-east-1",
        AWS_DEFAULT_REGION="ap-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - fake credentials; nothing is called
        AWS_LAMBDA_FUNCTION_NAME="bench",
        LAMBDA_TASK_ROOT="/var/task",
        # As deployed by default (XRaySdkTracing=false); BENCH_XRAY_SDK=1 measures with the SDK on.
        POWERTOOLS_TRACE_DISABLED="false" if os.environ.get("BENCH_XRAY_SDK") == "1" else "true",
        POWERTOOLS_SERVICE_NAME="bench",
        PYTHONDONTWRITEBYTECODE="0",
    )
    return env


def _sample(code: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds to import, to import and build the clients, to also serve the first request) in a
    fresh interpreter (the floor and functions without a first request: the last two are equal)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    values = [float(v) for v in result.stdout.strip().splitlines()[-1].split()]
    return (values[0], values[min(1, len(values) - 1)], values[-1])


def function_code(path: Path, services: list[str], event: dict[str, Any] | None) -> str:
    """The sample of one function: import its handler, build its clients, serve its first request."""
    return FUNCTION.format(
        path=str(path), services=services, event=None if event is None else json.dumps(event), clock=CLOCK
    )


def cases(
    only: list[str] | None = None,
) -> dict[str, tuple[str, Path, list[str], dict[str, Any] | None, str]]:
    """What is measured: (function, handler file, clients, first request, its label) per row; an HTTP
    function has one row per first request in FIRST_REQUESTS, each a cold container of its own."""
    out: dict[str, tuple[str, Path, list[str], dict[str, Any] | None, str]] = {}
    for name, (path, services) in functions().items():
        if only and name not in only:
            continue
        for event, label in FIRST_REQUESTS.get(name) or [(None, "")]:
            out[f"{name} {label}".strip()] = (name, path, services, event, label)
    return out


def run(samples: int = 7, only: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per function (per first request): its cold start as a ratio to its floor (``import
    boto3`` and the clients its policies allow) and, for comparison with earlier tables, to the
    one-client floor."""
    rows_to_measure = cases(only)
    with CannedAws() as aws:
        floor_env = _env()
        envs = {
            key: {**floor_env, **literal_env(case[0]), **canned_env(aws)}
            for key, case in rows_to_measure.items()
        }
        codes = {
            key: function_code(path, services, event)
            for key, (_, path, services, event, _) in rows_to_measure.items()
        }
        floors = {key: floor_code(case[2]) for key, case in rows_to_measure.items()}
        one_client = floor_code(ONE_CLIENT)
        # Warm the OS page cache and .pyc files once, so every sample compares like with like.
        _sample(one_client, floor_env)
        for key in rows_to_measure:
            _sample(floors[key], floor_env)
            _sample(codes[key], envs[key])
        # Each round measures the floors and the function back to back: the ratios are taken per
        # round (paired, so a slow moment of the machine slows all sides) and their medians reported.
        times: dict[str, list[tuple[float, float, float]]] = {key: [] for key in rows_to_measure}
        own: dict[str, list[float]] = {key: [] for key in rows_to_measure}
        one: dict[str, list[float]] = {key: [] for key in rows_to_measure}
        for _ in range(samples):
            for key, (_name, _path, services, _event, _label) in rows_to_measure.items():
                one[key].append(_sample(one_client, floor_env)[-1])
                own_floor = one[key][-1] if services == ONE_CLIENT else _sample(floors[key], floor_env)[-1]
                own[key].append(own_floor)
                times[key].append(_sample(codes[key], envs[key]))
    floor = statistics.median(t for samples_ in one.values() for t in samples_)
    rows = [
        {
            "function": "floor: import boto3 + 1 client",
            "import_ms": None,
            "clients_ms": round(floor * 1000, 1),
            "total_ms": round(floor * 1000, 1),
            "floor_ms": round(floor * 1000, 1),
            "ratio": 1.0,
            "ratio_one_client": 1.0,
            "clients": ",".join(ONE_CLIENT),
            "first_request": "",
            "ok": True,
        }
    ]
    for key, (name, _path, services, _event, label) in rows_to_measure.items():
        total = [t[-1] for t in times[key]]
        ratio = statistics.median(fn / fl for fn, fl in zip(total, own[key], strict=True))
        rows.append(
            {
                "function": name,
                "import_ms": round(statistics.median(t[0] for t in times[key]) * 1000, 1),
                "clients_ms": round(statistics.median(t[1] for t in times[key]) * 1000, 1),
                "total_ms": round(statistics.median(total) * 1000, 1),
                "floor_ms": round(statistics.median(own[key]) * 1000, 1),
                "ratio": round(ratio, 2),
                "ratio_one_client": round(
                    statistics.median(fn / fl for fn, fl in zip(total, one[key], strict=True)), 2
                ),
                "clients": ",".join(services),
                "first_request": label,
                "ok": ratio <= TARGET_RATIO,
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'function':<28} {'import':>7} {'+clients':>8} {'+1st req':>8} {'floor':>6} {'x floor':>7} "
        f"{'target':>6}      {'x 1-client':>10}  clients / first request"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        verdict = "ok" if row["ok"] else "OVER"
        imported = "" if row["import_ms"] is None else f"{row['import_ms']:.1f}"
        request = f"{row['total_ms']:.1f}" if row["first_request"] else ""
        what = row["clients"] + (f" / {row['first_request']}" if row["first_request"] else "")
        lines.append(
            f"{row['function']:<28} {imported:>7} {row['clients_ms']:>8.1f} {request:>8} "
            f"{row['floor_ms']:>6.1f} {row['ratio']:>7.2f} {'≤' + str(TARGET_RATIO):>6} {verdict:>4} "
            f"{row['ratio_one_client']:>10.2f}  {what}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    result = run(samples, only=sys.argv[2:] or None)
    print(
        "Cold start: handler import, + client construction, + the first request (HTTP functions); "
        f"median of {samples} fresh interpreters"
    )
    print(table(result))
    print(json.dumps({"coldstart": result}), file=sys.stderr)
