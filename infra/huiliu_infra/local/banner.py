"""What `huiliu local` and `make demo` print when the local runtime is up."""

from __future__ import annotations

from typing import Any


def print_banner(runtime: Any, out: Any = print) -> None:
    info = runtime.describe()
    tenant = info["tenant"]
    segment = tenant["connectors"]["segment"]
    lines = [
        "Huiliu local runtime is up.",
        f"  HTTP API        {info['api_url']}   (API Gateway v2 payloads; control under /_huiliu/)",
        f"  AWS endpoint    {info['aws_endpoint']}   (export AWS_ENDPOINT_URL={info['aws_endpoint']})",
        f"  Event bus       {', '.join(info['bus'].values())}",
        f"  Tables          {', '.join(info['tables'].values())}",
        f"  Raw bucket      {', '.join(info['buckets'].values())}",
        f"  Schedules       {', '.join(f'{k} {v}' for k, v in info['schedules'].items())}",
        "  Routes",
        *[f"    {r}" for r in info["routes"]],
        f"  Tenant          {tenant['tenant_id']}   admin key {tenant['admin_key']}",
        f"  Segment         write key {segment['write_key']}   url {segment['url']}",
        *[
            f"  {name:<15} {conf['url']}"
            for name, conf in tenant["connectors"].items()
            if name != "segment" and "url" in conf
        ],
        "  Connector secrets: `huiliu local tenant --json`; move time: `huiliu local advance 3d`.",
        "  Ctrl-C stops.",
    ]
    out("\n".join(lines))
