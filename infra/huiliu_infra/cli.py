"""``huiliu`` — the one command-line entry point (the Make targets call it).

huiliu local [--port 3000] [--aws-port 4566]   run the local runtime in the foreground
huiliu local tenant [--json]                    the demo tenant's connector settings and URLs
huiliu local advance 3d [--step 1h]            move the local runtime's clock forward
huiliu local state                              what runs where, and invocation counts
huiliu demo                                     start, send the sample webhooks, show results
huiliu profiles get|unmerge|erase|export …      the profile 360 view and PIPL/GDPR tools
huiliu segments apply|list|show|members|why …   segment definitions, audiences, why
huiliu replay …                                  re-ingest archived raw requests
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

from huiliu_infra import default_api

DEFAULT_API = default_api()


def _control(path: str, payload: dict[str, Any] | None = None, api: str = DEFAULT_API) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - the local runtime's own URL
        f"{api}/_huiliu/{path}",
        data=data,
        method="POST" if payload is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"local runtime answered {exc.code}: {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise SystemExit(
            f"local runtime not reachable at {api} ({exc.reason}); start it with `make local`"
        ) from exc


def cmd_local(args: argparse.Namespace) -> int:
    action = getattr(args, "local_action", None)
    if action == "tenant":
        tenant = _control("tenant", api=args.api)
        if args.json:
            print(json.dumps(tenant, indent=2))
        else:
            print(f"tenant {tenant['tenant_id']}  admin key {tenant['admin_key']}")
            for name, conf in tenant["connectors"].items():
                print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in conf.items()))
        return 0
    if action == "advance":
        payload = {"by": args.duration}
        if args.step:
            payload["step"] = args.step
        result = _control("advance", payload, api=args.api)
        print(f"clock now {result['now']} (offset {result['offset_seconds']:.0f}s)")
        return 0
    if action == "state":
        print(json.dumps(_control("state", api=args.api), indent=2))
        return 0
    from huiliu_infra.local.banner import print_banner
    from huiliu_infra.local.runtime import LocalRuntime
    from huiliu_infra.local.support import UnsupportedTemplateFeature

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    runtime = LocalRuntime(http_port=args.port, aws_port=args.aws_port, quiet=not args.verbose)
    try:
        runtime.start()
    except (OSError, UnsupportedTemplateFeature) as exc:
        print(f"huiliu local: {exc}", file=sys.stderr)
        runtime.stop()
        return 2
    print_banner(runtime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the clean stop
    print("\nstopping…", flush=True)
    runtime.stop()
    print("stopped cleanly.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from huiliu_infra.demo import run_demo

    return run_demo(http_port=args.port, aws_port=args.aws_port, keep_running=args.keep_running)


def use_local_env() -> None:
    """Point library commands (replay …) at the running local runtime (.huiliu/local.json)."""
    from huiliu_infra.local.runtime import read_state

    state = read_state()
    os.environ.update(state["env"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_REGION", state["region"])


def use_stack_env(stack: str) -> None:
    """Point library commands at a deployed stack: the ingest function's own environment."""
    from huiliu import aws

    resource = aws.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId="IngestFunction"
    )
    name = resource["StackResourceDetail"]["PhysicalResourceId"]
    config = aws.client("lambda").get_function_configuration(FunctionName=name)
    os.environ.update(config.get("Environment", {}).get("Variables", {}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huiliu", description="Huiliu (汇流) command line")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--local", action="store_true", help="library commands (replay) act on the running local runtime"
    )
    where.add_argument(
        "--stack", dest="env_stack", help="library commands (replay) act on this deployed stack"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="the local runtime (moto server or LocalStack, handlers in process)")
    local.add_argument("--port", type=int, default=int(os.environ.get("HUILIU_HTTP_PORT", 3000)))
    local.add_argument("--aws-port", type=int, default=int(os.environ.get("HUILIU_AWS_PORT", 4566)))
    local.add_argument("--api", default=DEFAULT_API, help="a running local runtime's URL")
    local.add_argument("-v", "--verbose", action="store_true")
    local_sub = local.add_subparsers(dest="local_action")
    tenant = local_sub.add_parser("tenant", help="the demo tenant's connector settings")
    tenant.add_argument("--json", action="store_true")
    advance = local_sub.add_parser("advance", help="move the clock forward, e.g. 3d, 12h, 90m")
    advance.add_argument("duration")
    advance.add_argument("--step", help="fire schedules at most once per step (default 1h)")
    local_sub.add_parser("state", help="resources, routes and invocation counts")
    local.set_defaults(func=cmd_local)

    demo = sub.add_parser("demo", help="run the local runtime and send the sample webhooks through it")
    demo.add_argument("--port", type=int, default=int(os.environ.get("HUILIU_HTTP_PORT", 3000)))
    demo.add_argument("--aws-port", type=int, default=int(os.environ.get("HUILIU_AWS_PORT", 4566)))
    demo.add_argument("--keep-running", action="store_true", help="leave the runtime up afterwards")
    demo.set_defaults(func=cmd_demo)

    from huiliu_infra import (
        cli_apply,
        cli_dlq,
        cli_journeys,
        cli_profiles,
        cli_replay,
        cli_report,
        cli_segments,
        cli_ses,
        cli_templates,
        cli_tenants,
    )

    for module in (
        cli_profiles,
        cli_replay,
        cli_segments,
        cli_tenants,
        cli_journeys,
        cli_apply,
        cli_dlq,
        cli_templates,
        cli_report,
        cli_ses,
    ):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.local:
        use_local_env()
    elif args.env_stack:
        use_stack_env(args.env_stack)
    if args.local or args.env_stack:
        # Library code logs as it does in Lambda; here stdout is the command's answer, so logs go
        # to stderr and no CloudWatch metrics (EMF) are printed.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("HUILIU_CLI_LOG_LEVEL", "WARNING")
        from huiliu import aws
        from huiliu.observability import logger
        from huiliu.settings import get_settings

        logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])
        logger.registered_handler.setStream(sys.stderr)
        aws.reset_clients()
        get_settings.cache_clear()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
