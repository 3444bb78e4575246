"""The local runtime (DESIGN §6): template.yaml on an emulated AWS endpoint, handlers in process.

- AWS: an embedded moto server (default ``127.0.0.1:4566``), or the endpoint the environment names
  (``AWS_ENDPOINT_URL`` / ``HUILIU_AWS_ENDPOINT`` / LocalStack settings).
- HTTP: the template's HttpApi routes on ``127.0.0.1:3000`` as API Gateway v2 payloads, plus a
  control surface under ``/_huiliu/`` (state, tenant, advance the clock, drain).
- SQS: one poller per event source mapping — batch size, batching window, partial batch failures
  (ReportBatchItemFailures), visibility and maxReceiveCount → DLQ as the emulator implements it.
- Schedules: ticks of an :class:`OffsetClock` that tests, the demo or ``huiliu local advance 3d``
  move forward; a big jump fires each schedule once per ``step`` (default one hour), in order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huiliu import aws
from huiliu.clock import OffsetClock, SystemClock, parse_duration, set_default_clock

from huiliu_infra import state_file
from huiliu_infra.local.firehose import TARGET_PREFIX as FIREHOSE_TARGET
from huiliu_infra.local.firehose import FirehoseEmulator
from huiliu_infra.local.lambda_runtime import (
    Router,
    http_api_event,
    http_api_response,
    load_handler,
    make_context,
    unload_handlers,
)
from huiliu_infra.local.provision import ROOT, Deployment, MappingSpec, ScheduleSpec, provision

log = logging.getLogger("huiliu.local")
STATE_DIR = ROOT / ".huiliu"


# Lambda's SQS pollers long-poll for 20 s; the SDK here reads for 15 s (huiliu.aws), so 10 s. An idle
# queue then costs one request per 10 s instead of a request a second per poller.
POLL_WAIT_SECONDS = 10
# A record that failed is received again after this long (AWS: the queue's visibility timeout, minutes).
RETRY_DELAY_SECONDS = 0.5
# While a batch fills within its window, an empty queue is asked again this often.
FILL_POLL_SECONDS = 0.1
MAX_HTTP_BODY = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
# Seconds a connection may sit idle mid-request (a Content-Length larger than the body sent).
HTTP_READ_TIMEOUT = 10.0
_DIGITS = re.compile(r"^[0-9]{1,15}$")


def content_length(values: list[str] | None) -> int | None:
    """The request's body length from its Content-Length header(s); None when malformed: not a
    decimal number, negative, or several different values (RFC 9110 §8.6: answer 400)."""
    if not values:
        return 0
    found = {v.strip() for v in ",".join(values).split(",")}
    if len(found) != 1:
        return None
    (text,) = found
    return int(text) if _DIGITS.match(text) else None


DEMO_TENANT = "demo"


@dataclass
class Invocation:
    function: str
    ok: bool
    ms: float
    failures: int = 0
    error: str | None = None
    wait_ms: float = 0.0  # waiting for the one-handler-at-a-time slot before the handler ran


@dataclass
class Hop:
    """One batch an event source mapping delivered: where its records' time went, in seconds.

    ``queued``: in the queue before the poller received it (SentTimestamp → first receive, records on
    their first receive); ``window``: the poller filling the batch (MaximumBatchingWindowInSeconds);
    ``slot``: waiting for the handler slot; ``handler``: the handler itself."""

    queue: str
    function: str
    records: int
    queued: float
    window: float
    slot: float
    handler: float
    at: float = 0.0  # time.time() the batch was handed to the function
    failed: int = 0  # records that failed (back after the retry delay)
    receives: int = 1  # the highest ApproximateReceiveCount in the batch


HOP_PARTS = ("queued", "window", "slot", "handler")


@dataclass
class RuntimeStats:
    invocations: list[Invocation] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Invocation) -> None:
        with self.lock:
            self.invocations.append(item)
            del self.invocations[:-5000]

    def add_hop(self, hop: Hop) -> None:
        with self.lock:
            self.hops.append(hop)
            del self.hops[:-20000]

    def hop_summary(self) -> dict[str, dict[str, Any]]:
        """Per queue: batches, records, and p50 / p95 / max seconds of each part of a hop."""
        with self.lock:
            hops = list(self.hops)
        out: dict[str, dict[str, Any]] = {}
        for queue in sorted({h.queue for h in hops}):
            mine = [h for h in hops if h.queue == queue]
            row: dict[str, Any] = {"batches": len(mine), "records": sum(h.records for h in mine)}
            for part in HOP_PARTS:
                values = sorted(getattr(h, part) for h in mine)
                row[part] = {
                    "p50": values[len(values) // 2],
                    "p95": values[min(len(values) - 1, int(0.95 * len(values)))],
                    "max": values[-1],
                }
            out[queue] = row
        return out

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self.lock:
            for inv in self.invocations:
                row = out.setdefault(inv.function, {"invocations": 0, "errors": 0, "record_failures": 0})
                row["invocations"] += 1
                row["errors"] += 0 if inv.ok else 1
                row["record_failures"] += inv.failures
        return out


def _log_as(service: str | None) -> None:
    """Handlers share one process here, so one Powertools Logger: give its records the invoked
    function's service name (Lambda reads POWERTOOLS_SERVICE_NAME once per container). The default
    keys are what ``clear_state`` restores at each invocation."""
    if not service:
        return
    from huiliu.observability import logger

    logger._default_log_keys["service"] = service  # no public setter
    logger.append_keys(service=service)


class PortInUse(OSError):
    """A port the local runtime needs is taken (another `huiliu local` or `make demo` running?)."""


def check_ports(host: str, ports: list[int]) -> None:
    """Fail at once, with the message, when a port is taken (instead of a server thread that dies
    with "Address already in use" while start-up waits)."""
    import socket

    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PortInUse(
                    f"port {port} on {host} is already in use ({exc.strerror}); stop what holds it or "
                    "pick other ports: --port / --aws-port (HUILIU_HTTP_PORT / HUILIU_AWS_PORT)"
                ) from exc


def schedule_event(sched: ScheduleSpec, due: datetime, region: str) -> dict[str, Any]:
    """What EventBridge Scheduler hands the target: the schedule's Input with its context
    attributes filled in, or (no Input) an EventBridge-style scheduled event."""
    scheduled = due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if sched.input is not None:
        text = sched.input.replace("<aws.scheduler.scheduled-time>", scheduled)
        text = text.replace("<aws.scheduler.schedule-arn>", sched.logical)
        text = text.replace("<aws.scheduler.execution-id>", secrets.token_hex(8))
        return json.loads(text)
    return {
        "version": "0",
        "id": secrets.token_hex(8),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": scheduled,
        "region": region,
        "resources": [sched.logical],
        "detail": {},
    }


class LocalRuntime:
    def __init__(
        self,
        *,
        http_host: str = "127.0.0.1",
        http_port: int = 3000,
        aws_port: int = 4566,
        endpoint: str | None = None,
        retry_delay: float = RETRY_DELAY_SECONDS,
        poll_wait: int = POLL_WAIT_SECONDS,
        write_state: bool = True,
        quiet: bool = False,
    ) -> None:
        self.http_host = http_host
        self.http_port = http_port
        self.aws_port = aws_port
        self.endpoint = endpoint or _configured_endpoint()
        self.retry_delay = retry_delay
        self.poll_wait = poll_wait
        self.write_state = write_state
        self.quiet = quiet
        self.http_read_timeout = HTTP_READ_TIMEOUT
        self.clock = OffsetClock()
        self.stats = RuntimeStats()
        self.deployment: Deployment | None = None
        self.router: Router | None = None
        self.tenant: dict[str, Any] = {}
        self.notify_sink: Any = None  # huiliu.notify.fakes.FakeProviders (local/notify_sink.py)
        self._moto: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        # One invocation at a time: Powertools Logger keeps per-invocation keys (function name,
        # correlation id) in process-wide state, so concurrent handlers would mix their log context.
        self._invoke_lock = threading.Lock()
        self._next_fire: dict[str, datetime] = {}
        self._env_of: str | None = None  # the function whose environment settings were read with
        self._timing = threading.local()  # (slot wait, handler seconds) of this thread's last invocation
        self.firehose: FirehoseEmulator | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def api_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    def start(self) -> LocalRuntime:
        check_ports(self.http_host, [p for p in (self.http_port, 0 if self.endpoint else self.aws_port) if p])
        self._start_aws()
        region = os.environ.setdefault("AWS_REGION", "ap-east-1")
        os.environ.setdefault("AWS_DEFAULT_REGION", region)
        aws.reset_clients()
        self.deployment = provision(region=region, endpoint=self.endpoint)
        os.environ.update(self.deployment.shared_env())
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "huiliu-local")
        os.environ.setdefault("POWERTOOLS_METRICS_FUNCTION_NAME", "local")
        from huiliu.settings import get_settings

        get_settings.cache_clear()
        set_default_clock(self.clock)
        self.router = Router(self.deployment.routes)
        self._start_http()  # binds the port first: the tenant's connector URLs name it
        # Firehose is answered by this runtime (moto writes one object per call, no buffering).
        self.firehose = FirehoseEmulator(
            list(self.deployment.streams.values()), self.clock.now, lambda: aws.client("s3")
        )
        os.environ["AWS_ENDPOINT_URL_FIREHOSE"] = self.api_url
        self.tenant = self._provision_demo_tenant()
        from huiliu_infra.local import notify_sink

        self.notify_sink = notify_sink.start(self)  # fake WeChat / Aliyun / webhook receiver
        now = self.clock.now()
        for sched in self.deployment.schedules:
            self._next_fire[sched.logical] = now + timedelta(seconds=sched.seconds)
        for mapping in self.deployment.mappings:
            self._spawn(f"poll-{mapping.function}", self._poll_loop, mapping)
        self._spawn("scheduler", self._schedule_loop)
        if self.write_state:
            self.write_state_file()
        return self

    def stop(self) -> None:
        if self.firehose is not None:
            with contextlib.suppress(Exception):  # deliver what is buffered, as the stream would
                self.firehose.flush()
        self._stop.set()
        if self._http:
            self._http.shutdown()
            self._http.server_close()
        # Handlers in flight finish against the emulator before it goes.
        deadline = time.monotonic() + 10
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.01)
        pollers_by = time.monotonic() + 0.1
        for thread in self._threads:
            # A poller idle in a long poll ends when the poll answers (≤ poll_wait, a daemon thread
            # that then sees the stop); it is not waited for.
            if thread.name.startswith("poll-"):
                thread.join(timeout=max(0.0, pollers_by - time.monotonic()))
            else:
                thread.join(timeout=5)
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self.notify_sink is not None:
            self.notify_sink.stop()
            self.notify_sink = None
        set_default_clock(SystemClock())
        # Handler modules hold clients built for this endpoint: the next runtime imports afresh.
        unload_handlers()
        aws.reset_clients()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_aws(self) -> None:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        if self.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint
            return
        from moto.server import ThreadedMotoServer

        from huiliu_infra.local import moto_fast

        moto_fast.install()  # the emulator's needless CPU out (same answers): docs/pipeline.md
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_port = port
        self.endpoint = f"http://{host}:{port}"
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        # moto keeps its state in module globals shared by every server in this process: a new
        # runtime starts from an empty account, not from what an earlier one left behind.
        import urllib.request

        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - our own embedded server

    def _provision_demo_tenant(self) -> dict[str, Any]:
        from huiliu.settings import get_settings

        from huiliu_infra.cli_tenants import create_tenant

        settings = get_settings()
        return create_tenant(
            DEMO_TENANT,
            table=settings.tenants_table,
            secrets_prefix=settings.secrets_prefix,
            salt=settings.hash_salt,
            name="Demo shop",
            api_url=self.api_url,
            # a shared LocalStack keeps secrets between runs; the runtime's tables are its own
            replace_secret=True,
        )

    def write_state_file(self, path: Path | None = None) -> None:
        path = path or state_file()
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(self.describe(), indent=2, default=str))
        path.chmod(0o600)

    def describe(self) -> dict[str, Any]:
        assert self.deployment is not None
        return {
            "api_url": self.api_url,
            "aws_endpoint": self.endpoint,
            "region": self.deployment.region,
            "clock": self.clock.now().isoformat(),
            "clock_offset_seconds": self.clock.offset.total_seconds(),
            "admin_key": self.tenant.get("admin_key"),
            "tenant": self.tenant,
            "tables": self.deployment.tables,
            "queues": {k: q.url for k, q in self.deployment.queues.items()},
            "buckets": self.deployment.buckets,
            "bus": self.deployment.buses,
            "routes": [
                r.route_key
                + " → "
                + r.function
                + (f" ({r.authorizer}: refused locally)" if r.authorizer else "")
                for r in self.deployment.routes
            ],
            "schedules": {s.logical: s.expression for s in self.deployment.schedules},
            "functions": {k: f.code_dir for k, f in self.deployment.functions.items()},
            # What the functions see: lets `huiliu --local …` run library code against this runtime.
            "env": {
                **self.deployment.shared_env(),
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_FIREHOSE": self.api_url,
            },
        }

    # ------------------------------------------------------------------ invoking
    def invoke(self, function: str, event: Any) -> Any:
        assert self.deployment is not None
        if self._stop.is_set():
            raise RuntimeError(f"the local runtime is stopped: {function} not invoked")
        spec = self.deployment.functions[function]
        context = make_context(spec, self.deployment.region)
        with self._busy_lock:
            self._busy += 1
        asked = time.perf_counter()
        started = asked
        try:
            with self._invoke_lock, self._function_env(spec):
                started = time.perf_counter()
                context.started = time.monotonic()  # its timeout runs from here, not from the wait
                result = load_handler(spec)(event, context)
        except Exception as exc:
            ms, wait_ms = (time.perf_counter() - started) * 1000, (started - asked) * 1000
            self._timing.last = (started - asked, time.perf_counter() - started)
            self.stats.add(Invocation(function, False, ms, error=repr(exc), wait_ms=wait_ms))
            log.error("%s raised: %s\n%s", function, exc, traceback.format_exc())
            raise
        finally:
            with self._busy_lock:
                self._busy -= 1
        done = time.perf_counter()
        self._timing.last = (started - asked, done - started)
        failures = len(result.get("batchItemFailures", [])) if isinstance(result, dict) else 0
        wait_ms = (started - asked) * 1000
        ms = (done - started) * 1000
        self.stats.add(Invocation(function, True, ms, failures=failures, wait_ms=wait_ms))
        return result

    @contextlib.contextmanager
    def _function_env(self, spec: Any) -> Any:
        """Run a handler with its own environment from the template: the process's base variables
        (endpoint, region, credentials), its own variables and service name, none of another
        function's. Settings are re-read when the function changes."""
        from huiliu.settings import get_settings

        assert self.deployment is not None
        keys = {k for fn in self.deployment.functions.values() for k in fn.env}
        saved = {k: os.environ.get(k) for k in keys}
        for key in keys - set(spec.env):
            os.environ.pop(key, None)
        os.environ.update(spec.env)
        if self._env_of != spec.logical:
            get_settings.cache_clear()
            self._env_of = spec.logical
            _log_as(spec.env.get("POWERTOOLS_SERVICE_NAME"))
        try:
            yield
        finally:
            # Only the functions' own variables are swapped and put back: the base environment
            # (endpoint, credentials) that pollers and HTTP threads read meanwhile is never touched.
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # ------------------------------------------------------------------ HTTP
    def _start_http(self) -> None:
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "huiliu-local"
            timeout = runtime.http_read_timeout  # a stalled body read ends instead of hanging

            def log_message(self, fmt: str, *args: Any) -> None:
                if not runtime.quiet:
                    log.info("http %s", fmt % args)

            def _handle(self) -> None:
                runtime._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        self._http = ThreadingHTTPServer((self.http_host, self.http_port), Handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        self._spawn("http", self._http.serve_forever)

    def _reply(self, req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        req.send_response(status)
        lower = {k.lower() for k in headers}
        for key, value in headers.items():
            req.send_header(key, value)
        if "content-type" not in lower:
            req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)

    def _bad_request(self, req: BaseHTTPRequestHandler, code: str, message: str) -> None:
        """400 and close: after a malformed length the connection cannot be read any further."""
        with contextlib.suppress(OSError):
            self._json(req, 400, {"success": False, "code": code, "message": message})
        req.close_connection = True

    def _json(self, req: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        self._reply(
            req, status, {"Content-Type": "application/json"}, json.dumps(payload, default=str).encode()
        )

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        length = content_length(req.headers.get_all("Content-Length"))
        if length is None or (length and "chunked" in (req.headers.get("Transfer-Encoding") or "").lower()):
            self._bad_request(req, "bad_content_length", "Content-Length must be one non-negative integer")
            return
        if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
            self._json(req, 411, {"success": False, "code": "length_required", "message": "Length Required"})
            req.close_connection = True
            return
        if length > MAX_HTTP_BODY:
            self._json(
                req,
                413,
                {"success": False, "code": "payload_too_large", "message": "Request Entity Too Large"},
            )
            req.close_connection = True
            return
        try:
            body = req.rfile.read(length) if length else b""
        except TimeoutError:
            body = b""
        if len(body) < length:  # the client sent less than it announced
            self._bad_request(req, "incomplete_body", "the body is shorter than Content-Length")
            return
        if parts.path.startswith("/_huiliu/"):
            self._control(req, parts.path, body)
            return
        target = req.headers.get("X-Amz-Target") or ""
        if target.startswith(FIREHOSE_TARGET) and self.firehose is not None:
            self._firehose(req, target, body)
            return
        assert self.router is not None
        matched = self.router.match(req.command, parts.path)
        if matched is None:
            self._json(req, 404, {"success": False, "code": "not_found", "message": "Not Found"})
            return
        route, params = matched
        if route.authorizer:
            # API Gateway would check a SigV4 signature (AWS_IAM) here; the local runtime does not
            # emulate IAM, so it refuses rather than serve an operator route unauthenticated.
            self._json(
                req,
                403,
                {
                    "success": False,
                    "code": "iam_not_emulated",
                    "message": f"{route.route_key} needs {route.authorizer} (SigV4), which the local "
                    "runtime does not emulate: use `huiliu tenants …` against the local tables, or a "
                    "deployed stack",
                },
            )
            return
        event = http_api_event(
            route=route,
            params=params,
            method=req.command,
            path=parts.path,
            query=parts.query,
            headers=list(req.headers.items()),
            body=body,
            source_ip=req.client_address[0],
        )
        try:
            result = self.invoke(route.function, event)
        except Exception:  # API Gateway answers 500 when the integration fails
            self._json(req, 500, {"message": "Internal Server Error"})
            return
        status, headers, raw = http_api_response(result)
        self._reply(req, status, headers, raw)

    def _control(self, req: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
        except json.JSONDecodeError:
            self._json(req, 400, {"code": "invalid_json", "message": "body is not valid JSON"})
            return
        if path == "/_huiliu/state":
            self._json(req, 200, {**self.describe(), "stats": self.stats.summary()})
        elif path == "/_huiliu/sent":
            from huiliu_infra.local import notify_sink

            self._json(req, 200, notify_sink.sent(self))
        elif path == "/_huiliu/bus":
            self._json(req, 200, self.bus_events())
        elif path == "/_huiliu/tenant":
            self._json(req, 200, self.tenant)
        elif path == "/_huiliu/advance" and req.command == "POST":
            try:
                delta = parse_duration(str(data.get("by", "")))
                step = parse_duration(str(data["step"])) if data.get("step") else None
            except ValueError as exc:
                self._json(req, 400, {"code": "bad_duration", "message": str(exc)})
                return
            now = self.advance(delta, step=step)
            self._json(
                req, 200, {"now": now.isoformat(), "offset_seconds": self.clock.offset.total_seconds()}
            )
        elif path == "/_huiliu/drain" and req.command == "POST":
            self._json(req, 200, {"drained": self.drain(timeout=float(data.get("timeout", 30)))})
        else:
            self._json(req, 404, {"success": False, "code": "not_found", "message": "Not Found"})

    # ------------------------------------------------------------------ SQS pollers
    def _poll_loop(self, mapping: MappingSpec) -> None:
        assert self.deployment is not None
        queue = self.deployment.queues[mapping.queue]
        sqs = aws.client("sqs")
        retry_due: float | None = None  # when the records that failed are to be received again
        pending: list[str] = []  # their receipt handles, made visible again at retry_due

        def release() -> None:
            handles = list(pending)
            pending.clear()
            self._release(sqs, queue.url, handles)

        while not self._stop.is_set():
            try:
                messages, first_at = self._receive(
                    sqs, queue.url, mapping, retry_due, release if pending else None
                )
                if pending and retry_due is not None and time.monotonic() >= retry_due:
                    release()
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("poll %s failed: %s", mapping.queue, exc)
                    self._stop.wait(0.5)
                continue
            if not pending and retry_due is not None and time.monotonic() > retry_due:
                retry_due = None
            if not messages:
                continue
            try:
                failed = self._deliver(sqs, queue, mapping, messages, first_at)
            except Exception as exc:  # the messages come back after their visibility timeout
                if not self._stop.is_set():
                    log.error("delivering %s failed: %s\n%s", mapping.queue, exc, traceback.format_exc())
                continue
            if failed:
                pending.extend(failed)
                retry_due = time.monotonic() + self.retry_delay

    def _release(self, sqs: Any, url: str, handles: list[str]) -> None:
        """Failed records become visible again (VisibilityTimeout 0): the retry delay has passed."""
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            with contextlib.suppress(Exception):  # a message may already be gone (DLQ, deleted)
                sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for i, handle in enumerate(chunk)
                    ],
                )

    def _receive_some(self, sqs: Any, url: str, count: int, wait: int) -> list[dict[str, Any]]:
        resp = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, count),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))

    def _receive(
        self,
        sqs: Any,
        url: str,
        mapping: MappingSpec,
        retry_due: float | None = None,
        release: Any = None,
    ) -> tuple[list[dict[str, Any]], float]:
        """A batch as Lambda's poller makes one: a long poll that returns as soon as a message is in
        (and costs nothing while the queue is idle); then, if the batch is not full, up to the batching
        window (MaximumBatchingWindowInSeconds) to fill it — a full batch, or no window, goes at once.
        Returns the messages and when the first one was received (``time.time()``)."""
        messages: list[dict[str, Any]] = []
        # Records that failed come back after retry_delay (``release`` makes them visible then); until
        # they are due the queue is asked at short intervals rather than long-polled, so they are taken
        # at once (the emulator's long poll would notice them only at its next rescan, up to 1 s late).
        while retry_due is not None and not messages and not self._stop.is_set():
            if release is not None and time.monotonic() >= retry_due:
                release()
                release = None
            messages = self._receive_some(sqs, url, mapping.batch_size, 0)
            if messages or (release is None and time.monotonic() > retry_due + FILL_POLL_SECONDS):
                break
            self._stop.wait(FILL_POLL_SECONDS)
        if not messages:
            messages = self._receive_some(sqs, url, mapping.batch_size, self.poll_wait)
        if not messages:
            return [], 0.0
        first_at = time.time()
        deadline = time.monotonic() + mapping.window_seconds
        while len(messages) < mapping.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Whole seconds are long-polled (answered at the first arrival); a fraction is polled.
            wait = int(remaining)
            got = self._receive_some(sqs, url, mapping.batch_size - len(messages), wait)
            messages.extend(got)
            if not got and not wait:
                self._stop.wait(min(remaining, FILL_POLL_SECONDS))
        return messages, first_at

    def _deliver(
        self,
        sqs: Any,
        queue: Any,
        mapping: MappingSpec,
        messages: list[dict[str, Any]],
        first_at: float | None = None,
    ) -> list[str]:
        """Invoke the function with the batch; delete what succeeded; returns the receipt handles of the
        records that failed (the poller makes them visible again after ``retry_delay``)."""
        assert self.deployment is not None
        region = self.deployment.region
        handed = time.time()
        first_at = first_at or handed
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": region,
            }
            for m in messages
        ]
        failed: set[str]
        try:
            result = self.invoke(mapping.function, {"Records": records})
            failed = (
                {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                if mapping.report_failures and isinstance(result, dict)
                else set()
            )
        except Exception:
            failed = {r["messageId"] for r in records}
        self._record_hop(mapping, messages, first_at, handed, len(failed))
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        # Failed messages stay invisible until the poller releases them after retry_delay (the queue's
        # visibility timeout in AWS); the emulator counts receives and moves them to the DLQ after
        # maxReceiveCount.
        return [r["receiptHandle"] for r in records if r["messageId"] in failed]

    def _record_hop(
        self,
        mapping: MappingSpec,
        messages: list[dict[str, Any]],
        first_at: float,
        handed: float,
        failed: int,
    ) -> None:
        slot, handler = getattr(self._timing, "last", (0.0, 0.0))
        queued = [
            int(attrs["ApproximateFirstReceiveTimestamp"]) / 1000 - int(attrs["SentTimestamp"]) / 1000
            for attrs in (m.get("Attributes", {}) for m in messages)
            if attrs.get("ApproximateReceiveCount") == "1"
            and "SentTimestamp" in attrs
            and "ApproximateFirstReceiveTimestamp" in attrs
        ]
        self.stats.add_hop(
            Hop(
                queue=mapping.queue,
                function=mapping.function,
                records=len(messages),
                queued=max(0.0, sum(queued) / len(queued)) if queued else 0.0,
                window=max(0.0, handed - first_at),
                slot=slot,
                handler=handler,
                at=handed,
                failed=failed,
                receives=max(
                    int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for m in messages
                ),
            )
        )

    def _firehose(self, req: BaseHTTPRequestHandler, target: str, body: bytes) -> None:
        assert self.firehose is not None
        try:
            status, payload = self.firehose.handle(target, json.loads(body or b"{}"))
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"__type": "InvalidArgumentException", "message": str(exc)}
        raw = json.dumps(payload).encode()
        self._reply(req, status, {"Content-Type": "application/x-amz-json-1.1"}, raw)

    # ------------------------------------------------------------------ schedules and time
    def _schedule_loop(self) -> None:
        while not self._stop.wait(0.5):
            self.fire_due()
            if self.firehose is not None:
                with contextlib.suppress(Exception):
                    self.firehose.tick()

    def fire_due(self, upto: datetime | None = None) -> int:
        """Fire every schedule whose next time has come; returns the number of invocations."""
        assert self.deployment is not None
        fired = 0
        with self._tick_lock:
            now = upto or self.clock.now()
            for sched in self.deployment.schedules:
                due = self._next_fire[sched.logical]
                if due > now:
                    continue
                # A long jump fires once, at the latest due time (as Scheduler catching up would).
                periods = int((now - due).total_seconds() // sched.seconds)
                due = due + timedelta(seconds=periods * sched.seconds)
                event = schedule_event(sched, due, self.deployment.region)
                # A failing tick is logged by invoke; Scheduler's retries are AWS-side.
                with contextlib.suppress(Exception):
                    self.invoke(sched.function, event)
                fired += 1
                self._next_fire[sched.logical] = due + timedelta(seconds=sched.seconds)
        return fired

    def advance(self, delta: timedelta, *, step: timedelta | None = None, drain: bool = True) -> datetime:
        """Move time forward in steps (default 1 h), firing schedules and draining queues at each."""
        step = step or timedelta(hours=1)
        remaining = delta
        while remaining > timedelta(0):
            move = min(step, remaining)
            self.clock.advance(move)
            remaining -= move
            self.fire_due()
            if drain:
                self.drain(timeout=30)
        return self.clock.now()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every consumer queue is empty and no handler is running."""
        assert self.deployment is not None
        sqs = aws.client("sqs")
        consumer_queues = [self.deployment.queues[m.queue].url for m in self.deployment.mappings]
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            with self._busy_lock:
                busy = self._busy
            if busy:  # a handler is running: asking the queues now would only take its CPU
                quiet_rounds = 0
                time.sleep(0.05)
                continue
            pending = 0
            for url in consumer_queues:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                pending += int(attrs.get("ApproximateNumberOfMessages", 0))
                pending += int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
            with self._busy_lock:
                pending += self._busy
            quiet_rounds = quiet_rounds + 1 if pending == 0 else 0
            if quiet_rounds >= 2:
                # A delivery stream's buffer is work in flight too: deliver it (as its interval would).
                if self.firehose is not None:
                    self.firehose.flush()
                return True
            time.sleep(0.1)
        return False

    def bus_events(self, limit: int = 500) -> list[dict[str, Any]]:
        """Read (and remove) what the catch-all rule copied off the bus, oldest first."""
        assert self.deployment is not None
        sqs = aws.client("sqs")
        out: list[dict[str, Any]] = []
        for url in self.deployment.taps.values():
            while len(out) < limit:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                    "Messages", []
                )
                if not got:
                    break
                for message in got:
                    out.append(json.loads(message["Body"]))
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
                )
        out.sort(key=lambda e: e.get("time", ""))
        return out

    def queue_depths(self) -> dict[str, int]:
        assert self.deployment is not None
        sqs = aws.client("sqs")
        out = {}
        for logical, queue in self.deployment.queues.items():
            attrs = sqs.get_queue_attributes(
                QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            out[logical] = int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
        return out


def _configured_endpoint() -> str | None:
    """An external AWS endpoint named by the environment (LocalStack or another moto)."""
    for key in ("HUILIU_AWS_ENDPOINT", "AWS_ENDPOINT_URL", "LOCALSTACK_ENDPOINT"):
        if os.environ.get(key):
            return os.environ[key]
    return None


def read_state(path: Path | None = None) -> dict[str, Any]:
    path = path or state_file()
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: start the local runtime first (make local)")
    return json.loads(path.read_text())
