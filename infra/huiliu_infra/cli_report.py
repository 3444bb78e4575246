"""``huiliu report [--json] [--html FILE]``: the tenant's numbers from ``GET /admin/reports``.

Prints tables (funnels per journey and channel with rates, segment sizes, customers per month with
the repurchase rate, ingestion per connector); ``--html FILE`` writes one self-contained page —
inline SVG charts and CSS, no scripts, fonts or images from anywhere — that opens offline.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

from huiliu_infra.admin_client import AdminApi, CliError, add_target

FUNNEL = ("requested", "sent", "delivered", "opened", "clicked", "converted")
SIDE = ("suppressed", "failed", "bounced", "complained")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def tables(report: dict[str, Any]) -> str:
    out = [f"Report for tenant {report['tenant_id']}", ""]
    out.append("Journey funnels (count, and its rate of the step before: delivered/sent, opened/delivered …)")
    head = f"  {'journey':<22} {'channel':<8}" + "".join(f"{s:>14}" for s in FUNNEL)
    head += "".join(f"{s:>11}" for s in SIDE)
    out.append(head)
    for row in report["funnels"]:
        counts, rates = row["counts"], row["rates"]
        cells = [f"{counts['requested']:>14}"]
        cells += [
            f"{counts[s]:>7} {_pct(rates.get(f'{s}_per_{before}')):>6}" for before, s in pairwise(FUNNEL)
        ]
        cells += [f"{counts.get(s, 0):>11}" for s in SIDE]
        out.append(f"  {row['journey_id'][:22]:<22} {row['channel']:<8}" + "".join(cells))
    if not report["funnels"]:
        out.append("  (no messages yet)")
    out += ["", "Segments", f"  {'segment':<28} {'size':>7} {'entered':>8} {'exited':>7}  last days"]
    for seg in report["segments"]:
        last = ", ".join(f"{d[5:]}:{n}" for d, n in seg["series"][-5:])
        out.append(
            f"  {seg['segment_id'][:28]:<28} {seg['size']:>7} {seg['entered']:>8} {seg['exited']:>7}  {last}"
        )
    if not report["segments"]:
        out.append("  (no segment transitions yet)")
    out += ["", "Customers per month"]
    out.append(
        f"  {'month':<8} {'orders':>7} {'revenue':>11} {'buyers':>7} {'new':>5} {'return':>7}"
        f" {'repurchase':>11}"
    )
    for m in report["customers"]:
        out.append(
            f"  {m['month']:<8} {m['orders']:>7} {m['revenue']:>11.2f} {m['customers']:>7}"
            f" {m['new_customers']:>5} {m['returning_customers']:>7} {_pct(m['repurchase_rate']):>11}"
        )
    if not report["customers"]:
        out.append("  (no orders yet)")
    out += ["", "Ingestion", f"  {'day':<11} {'connector':<12} {'events':>8} {'refused':>8}  why refused"]
    for r in report["ingestion"]:
        why = ", ".join(f"{k} {v}" for k, v in (r.get("rejected_by_reason") or {}).items())
        out.append(
            f"  {r['day']:<11} {r['connector']:<12} {r['ingested']:>8} {r.get('rejected') or 0:>8}  {why}"
        )
    if not report["ingestion"]:
        out.append("  (nothing ingested yet)")
    return "\n".join(out)


# ------------------------------------------------------------------ HTML (inline SVG)
def _bars(items: list[tuple[str, float]], *, width: int = 560, unit: str = "") -> str:
    if not items:
        return "<p class='empty'>no data yet</p>"
    top = max(v for _, v in items) or 1
    row = 26
    parts = [f"<svg width='{width}' height='{row * len(items) + 4}' role='img'>"]
    for i, (label, value) in enumerate(items):
        bar = int((width - 220) * value / top)
        y = i * row
        parts.append(f"<text x='0' y='{y + 17}'>{html.escape(label)}</text>")
        parts.append(f"<rect x='140' y='{y + 4}' width='{max(bar, 1)}' height='18' rx='3'/>")
        parts.append(f"<text x='{146 + bar}' y='{y + 17}'>{value:g}{unit}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _line(points: list[tuple[str, float]], *, width: int = 560, height: int = 140) -> str:
    if not points:
        return "<p class='empty'>no data yet</p>"
    top = max(v for _, v in points) or 1
    step = (width - 60) / max(len(points) - 1, 1)
    coords = [(40 + i * step, height - 20 - (height - 40) * v / top) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [f"<svg width='{width}' height='{height}' role='img'>"]
    parts.append(f"<polyline fill='none' stroke-width='2' points='{path}'/>")
    for (label, value), (x, y) in zip(points, coords, strict=True):
        parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3'/>")
        parts.append(f"<text x='{x - 14:.1f}' y='{height - 4}'>{html.escape(label[5:])}</text>")
        parts.append(f"<text x='{x - 6:.1f}' y='{y - 6:.1f}'>{value:g}</text>")
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
margin:2rem;color:#1f2933}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e4e7eb}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #eef0f2;text-align:right}
td:first-child,th:first-child{text-align:left}svg text{font-size:12px;fill:#3e4c59}svg rect{fill:#2f80ed}
svg polyline{stroke:#27ae60}svg circle{fill:#27ae60}.empty{color:#9aa5b1}.note{color:#616e7c;font-size:.85rem}
"""


def page(report: dict[str, Any]) -> str:
    esc = html.escape
    body = [f"<h1>Huiliu report — {esc(report['tenant_id'])}</h1>"]
    body.append("<h2>Journey funnels</h2>")
    for row in report["funnels"]:
        c, r = row["counts"], row["rates"]
        body.append(f"<h3>{esc(row['journey_id'])} · {esc(row['channel'])}</h3>")
        body.append(_bars([(s, c[s]) for s in FUNNEL]))
        body.append(
            "<p class='note'>"
            + " · ".join(
                f"{s}: {_pct(r.get(f'{s}_per_{before}'))} of {before}" for before, s in pairwise(FUNNEL)
            )
            + "<br>"
            + " · ".join(f"{s}: {c.get(s, 0)}" for s in SIDE)
            + "</p>"
        )
    if not report["funnels"]:
        body.append("<p class='empty'>no messages yet</p>")
    body.append("<h2>Segment sizes over time</h2>")
    for seg in report["segments"]:
        body.append(f"<h3>{esc(seg['segment_id'])} — {seg['size']} now</h3>")
        body.append(_line([(d, n) for d, n in seg["series"]]))
    if not report["segments"]:
        body.append("<p class='empty'>no segment transitions yet</p>")
    body.append("<h2>Customers per month</h2>")
    months = report["customers"]
    body.append(
        _bars(
            [(m["month"], m["repurchase_rate"] * 100) for m in months if m["repurchase_rate"] is not None],
            unit="%",
        )
    )
    body.append(
        "<table><tr><th>month</th><th>orders</th><th>revenue</th><th>buyers</th><th>new</th><th>returning</th>"
        "<th>repurchase rate</th></tr>"
    )
    for m in months:
        body.append(
            f"<tr><td>{esc(m['month'])}</td><td>{m['orders']}</td><td>{m['revenue']:.2f}</td><td>{m['customers']}</td>"
            f"<td>{m['new_customers']}</td><td>{m['returning_customers']}</td><td>{_pct(m['repurchase_rate'])}</td></tr>"
        )
    body.append(
        "</table><p class='note'>Repurchase rate: the share of last month's buyers who bought again.</p>"
    )
    body.append("<h2>Ingestion per connector</h2>")
    totals: dict[str, int] = {}
    refused: dict[str, int] = {}
    for r in report["ingestion"]:
        totals[r["connector"]] = totals.get(r["connector"], 0) + r["ingested"]
        for reason, n in (r.get("rejected_by_reason") or {}).items():
            refused[f"{r['connector']}: {reason}"] = refused.get(f"{r['connector']}: {reason}", 0) + n
    body.append(_bars(sorted(totals.items())))
    body.append("<h3>Refused requests (4xx), and refused CSV import rows, per connector and reason</h3>")
    body.append(_bars(sorted(refused.items())))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Huiliu report — {esc(report['tenant_id'])}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def register(sub: Any) -> None:
    parser = sub.add_parser("report", help="the tenant's numbers: funnels, segments, customers, ingestion")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.add_argument(
        "--html", metavar="FILE", help="write one self-contained HTML page (inline SVG charts)"
    )
    add_target(parser)
    parser.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        report = AdminApi.from_args(args).ok("GET", "/reports")
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.html:
        Path(args.html).write_text(page(report), encoding="utf-8")
        print(f"report written to {Path(args.html).resolve()}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif not args.html:
        print(tables(report))
    return 0


def demo_report(api_url: str, key: str, path: Path) -> str:
    """The demo's step: fetch the report, write the HTML page, return the tables (make demo prints them)."""
    report = AdminApi(api_url, key).ok("GET", "/reports")
    path.write_text(page(report), encoding="utf-8")
    return tables(report)
