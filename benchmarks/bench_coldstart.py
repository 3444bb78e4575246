"""Cold start per function: import the handler module and build the clients it uses, in a fresh
interpreter, as a ratio to the floor (``import boto3`` plus one client) measured in the same run.

Each sample is its own subprocess (a cold Lambda has an empty module cache). Every function
sample is paired with a floor sample taken just before it; the reported ratio is the median of
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

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3

FLOOR = """
import time
t0 = time.perf_counter()
import boto3
boto3.client("dynamodb", region_name="ap-east-1")
print(time.perf_counter() - t0)
"""

FUNCTION = """
import importlib.util, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_under_test", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["handler_under_test"] = module
spec.loader.exec_module(module)
t1 = time.perf_counter()
from huiliu import aws
for service in {services!r}:
    aws.client(service)
print(t1 - t0, time.perf_counter() - t0)
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


def functions() -> dict[str, tuple[Path, list[str]]]:
    """Each function's handler file and the AWS services its IAM policies allow (from the template)."""
    sys.path.insert(0, str(ROOT / "infra"))
    from huiliu_infra import cfn
    from huiliu_infra.local.provision import TEMPLATE

    translated = cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")
    resources = translated["Resources"]
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


def _sample(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(seconds to import, seconds to import and build the clients) in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    values = [float(v) for v in result.stdout.strip().splitlines()[-1].split()]
    return (values[0], values[-1])


def run(samples: int = 7) -> list[dict[str, Any]]:
    env = _env()
    fns = functions()
    times: dict[str, list[tuple[float, float]]] = {"floor": [], **{name: [] for name in fns}}
    # Warm the OS page cache and .pyc files once, so every sample compares like with like.
    _sample(FLOOR, env)
    for path, services in fns.values():
        _sample(FUNCTION.format(path=str(path), services=services), env)
    floor_per_function: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(samples):
        for name, (path, services) in fns.items():
            floor_per_function[name].append(_sample(FLOOR, env))
            times[name].append(_sample(FUNCTION.format(path=str(path), services=services), env))
    times["floor"] = [t for samples_ in floor_per_function.values() for t in samples_]
    floor = statistics.median(t[1] for t in times["floor"])
    rows = [
        {
            "function": "floor: import boto3 + 1 client",
            "import_ms": None,
            "total_ms": round(floor * 1000, 1),
            "ratio": 1.0,
            "clients": "dynamodb",
            "ok": True,
        }
    ]
    for name, (_path, services) in fns.items():
        # Each round measures the floor and every function back to back: the ratio is taken per
        # round (paired, so a slow moment of the machine slows both) and its median reported.
        paired = [fn[1] / fl[1] for fn, fl in zip(times[name], floor_per_function[name], strict=True)]
        ratio = statistics.median(paired)
        rows.append(
            {
                "function": name,
                "import_ms": round(statistics.median(t[0] for t in times[name]) * 1000, 1),
                "total_ms": round(statistics.median(t[1] for t in times[name]) * 1000, 1),
                "ratio": round(ratio, 2),
                "clients": ",".join(services),
                "ok": ratio <= TARGET_RATIO,
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'function':<32} {'import ms':>9} {'+clients ms':>11} {'x floor':>8} {'target':>7}       clients"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        verdict = "ok" if row["ok"] else "OVER"
        imported = "" if row["import_ms"] is None else f"{row['import_ms']:.1f}"
        lines.append(
            f"{row['function']:<32} {imported:>9} {row['total_ms']:>11.1f} {row['ratio']:>8.2f} "
            f"{'≤' + str(TARGET_RATIO):>7} {verdict:>4}  {row['clients']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    result = run(samples)
    print(f"Cold start: handler import, then + client construction; median of {samples} fresh interpreters")
    print(table(result))
    print(json.dumps({"coldstart": result}), file=sys.stderr)
