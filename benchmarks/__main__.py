"""Run every benchmark and print its table: ``python -m benchmarks [--quick] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

BENCHMARKS = (
    "coldstart",
    "ingest",
    "identity",
    "segments",
    "journeys",
    "notify",
    "cost",
    "admin",
    "pipeline",
)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    headers = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_fmt(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the benchmarks)")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args(argv)
    for name in args.only:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        if name == "coldstart":
            rows = module.run(samples=3 if args.quick else 9)
        elif name in ("identity", "segments", "journeys", "notify", "cost", "admin", "pipeline"):
            rows = module.run(quick=args.quick)
        else:
            rows = module.run(**({"repeat": 50, "batches": 3} if args.quick else {}))
        print(f"\n== {name} ({time.perf_counter() - started:.0f}s) ==")
        print(module.table(rows) if hasattr(module, "table") else _table(rows))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
