"""What Lambda hands a handler, for tests: a context, SQS records, a function's module.

One copy for every test that calls a handler (they each kept their own ``_Ctx``, ``_record`` and
``spec_from_file_location`` block before).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
REGION = "ap-east-1"


@dataclass
class LambdaContext:
    function_name: str = "ingest"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "req-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"


def load_function(name: str) -> ModuleType:
    """``functions/<name>/app.py``, imported once per process (every function has an app.py)."""
    module_name = f"huiliu_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module = load_function_fresh(name, module_name)
    sys.modules[module_name] = module
    return module


def load_function_fresh(name: str, module_name: str | None = None) -> ModuleType:
    """``functions/<name>/app.py`` imported anew: a new container (its handler gets a fresh slot)."""
    spec = importlib.util.spec_from_file_location(
        module_name or f"huiliu_function_{name}_fresh", ROOT / "functions" / name / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_record(
    body: str | dict[str, Any],
    message_id: str = "m-1",
    *,
    queue: str = "q",
    attempt: int | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An SQS record as the event source mapping delivers it (``body`` a string, or JSON-encoded)."""
    system = dict(attributes or {})
    if attempt is not None:
        system["ApproximateReceiveCount"] = str(attempt)
    return {
        "messageId": message_id,
        "receiptHandle": "rh",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": system,
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
        "awsRegion": REGION,
    }
