"""Fake providers on localhost: the WeChat API, Alibaba Cloud SMS and a webhook sink.

Used by tests (fault injection: ``fail_next``) and by the local runtime, where it is the sink that
shows every WeChat message and webhook "sent" (``huiliu demo`` prints them). Nothing here runs in
Lambda. The fakes check what the real providers check: the Aliyun signature, the WeChat token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from huiliu.notify.channels.sms import aliyun_signature


@dataclass
class Recorded:
    kind: str  # wechat-template | wechat-subscribe | aliyun-sms | webhook
    to: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "to": self.to, "body": self.body, "headers": self.headers, "at": self.at}


@dataclass
class Failure:
    prefix: str
    remaining: int
    status: int = 200
    reply: Any = None
    accept: bool = False  # record the message as sent, then fail (a provider that took it but timed out)
    delay: float = 0.0


class FakeProviders:
    """One threaded HTTP server: ``/wechat/...``, ``/aliyun/``, ``/webhook/<name>``, ``/_sent``."""

    def __init__(self, *, aliyun_secrets: dict[str, str] | None = None, token_ttl: int = 7200) -> None:
        self.aliyun_secrets = aliyun_secrets or {}
        self.token_ttl = token_ttl
        self.sent: list[Recorded] = []
        self.token_calls = 0
        self.tokens: dict[str, tuple[str, float]] = {}  # app id → (current token, expires at)
        self.client_msg_ids: set[str] = set()
        self.failures: list[Failure] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.on_record: Callable[[Recorded], None] | None = None

    # ------------------------------------------------------------------ control
    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeProviders:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="fake-providers", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def fail_next(self, prefix: str, times: int = 1, **kwargs: Any) -> None:
        with self.lock:
            self.failures.append(Failure(prefix, times, **kwargs))

    def expire_tokens(self) -> None:
        """Every issued token is now expired (WeChat answers 42001 until a new one is fetched)."""
        with self.lock:
            self.tokens = {k: (v, 0.0) for k, (v, _) in self.tokens.items()}

    def of_kind(self, kind: str) -> list[Recorded]:
        return [r for r in self.sent if r.kind == kind]

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.failures.clear()
            self.client_msg_ids.clear()
            self.token_calls = 0

    # ------------------------------------------------------------------ serving
    def _failure(self, path: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if path.startswith(failure.prefix) and failure.remaining > 0:
                    failure.remaining -= 1
                    return failure
        return None

    def _record(self, item: Recorded) -> None:
        with self.lock:
            self.sent.append(item)
        if self.on_record:
            self.on_record(item)

    def _reply(self, req: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(raw)))
        req.end_headers()
        req.wfile.write(raw)

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        path = parts.path
        if path == "/_sent":
            self._reply(req, 200, [r.as_dict() for r in self.sent])
            return
        failure = self._failure(path)
        if failure and not failure.accept:
            if failure.delay:
                time.sleep(failure.delay)
            self._reply(req, failure.status, failure.reply if failure.reply is not None else {"errcode": -1})
            return
        if path.startswith("/wechat/"):
            status, payload = self._wechat(path.removeprefix("/wechat"), query, raw)
        elif path.startswith("/aliyun"):
            status, payload = self._aliyun(query)
        elif path.startswith("/webhook/"):
            body = json.loads(raw or b"null")
            headers = {k.lower(): v for k, v in req.headers.items() if k.lower().startswith("webhook-")}
            self._record(Recorded("webhook", path.removeprefix("/webhook/"), body, headers))
            status, payload = 200, {"ok": True}
        else:
            status, payload = 404, {"error": "not found"}
        if failure and failure.accept:  # it was taken; the caller only sees an error
            if failure.delay:
                time.sleep(failure.delay)
            status, payload = failure.status, failure.reply
        self._reply(req, status, payload)

    def _wechat(self, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path == "/cgi-bin/token":
            with self.lock:
                self.token_calls += 1
                token = f"tok-{query.get('appid')}-{self.token_calls}"
                self.tokens[query.get("appid", "")] = (token, time.time() + self.token_ttl)
            return 200, {"access_token": token, "expires_in": self.token_ttl}
        token = query.get("access_token", "")
        with self.lock:
            current = dict(self.tokens.values())
        if token not in current:
            return 200, {"errcode": 40001, "errmsg": "invalid credential"}
        if current[token] < time.time():
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        body = json.loads(raw or b"{}")
        if path == "/cgi-bin/message/template/send":
            msg_id = body.get("client_msg_id")
            with self.lock:
                if msg_id and msg_id in self.client_msg_ids:  # WeChat dedupes on client_msg_id
                    return 200, {"errcode": 0, "errmsg": "ok", "msgid": 0, "deduplicated": True}
                if msg_id:
                    self.client_msg_ids.add(msg_id)
            self._record(Recorded("wechat-template", body.get("touser", ""), body))
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": len(self.sent)}
        if path == "/cgi-bin/message/subscribe/bizsend":
            self._record(Recorded("wechat-subscribe", body.get("touser", ""), body))
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 404, {"errcode": 404, "errmsg": "unknown api"}

    def _aliyun(self, query: dict[str, str]) -> tuple[int, Any]:
        params = dict(query)
        signature = params.pop("Signature", "")
        secret = self.aliyun_secrets.get(params.get("AccessKeyId", ""))
        if secret is None or aliyun_signature(params, secret) != signature:
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
        self._record(Recorded("aliyun-sms", params.get("PhoneNumbers", ""), params))
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"biz-{len(self.sent)}", "RequestId": "r"}
