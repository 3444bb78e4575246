"""The three classic journeys, shipped as examples (``make demo`` applies them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
# Templates and segments the examples reference (the demo creates them).
TEMPLATES = ("coupon-sms", "winback-email", "recommend-b")
SEGMENTS = ("dormant_90_days",)


def example_documents() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(HERE.glob("*.json"))]
