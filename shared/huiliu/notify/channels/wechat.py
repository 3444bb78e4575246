"""WeChat official account: template messages (service notices, transactional only) and
subscribe messages (``subscribe/bizsend``), with one access token shared by every invocation.

Token: WeChat allows few ``/cgi-bin/token`` calls a day and a new token invalidates the old one
after five minutes, so every Lambda must share one. It lives in DynamoDB (:class:`TokenStore`,
MessagesTable) with an in-memory copy per container; it is refreshed before expiry (``margin``)
and when WeChat answers 40001/40014/42001 — by exactly one caller, which takes a short lease with a
conditional write, while the others wait for the new token (``invalidate`` only marks the token
stale if it is still the one that failed, so many concurrent failures cause one refresh).

wechatpy's client refreshes per process on these codes; it has no shared lease, so the token logic
is here and the two HTTP calls it needs are plain JSON over stdlib (no extra layer dependency).

Outcomes: 43004 (not following) and 43101 (subscription not granted) are permanent failures;
45009/45047/45011 (quota / frequency) are ``quota`` outcomes (deferred, then failed after a few
tries), -1 (system busy) is transient. Per-account throughput: a token bucket per app id in each
container, times the event source's maximum concurrency.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from huiliu.notify.channels.base import ErrorKind, OutboundMessage, ProviderError, SendResult, http_json

TOKEN_INVALID = {40001, 40014, 42001}
PERMANENT = {43004: "user_not_subscribed", 43101: "user_refused_subscription", 40003: "invalid_openid"}
QUOTA = {45009, 45047, 45011, 45106}


@dataclass
class Token:
    value: str
    expires_at: float  # epoch seconds


class TokenStore(Protocol):
    """Where the shared token lives (DynamoDB in production, memory in unit tests)."""

    def read(self, app_id: str) -> Token | None: ...
    def try_lease(self, app_id: str, now: float, seconds: float, stale_before: float) -> bool:
        """Take the refresh lease, unless another caller holds it or the stored token is fresh
        (expires after ``stale_before``: someone refreshed it since we looked)."""
        ...

    def save(self, app_id: str, token: Token) -> None: ...
    def mark_stale(self, app_id: str, value: str) -> None: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.leases: dict[str, float] = {}
        self._lock = threading.Lock()

    def read(self, app_id: str) -> Token | None:
        return self.tokens.get(app_id)

    def try_lease(self, app_id: str, now: float, seconds: float, stale_before: float) -> bool:
        with self._lock:
            if self.leases.get(app_id, 0) > now:
                return False
            held = self.tokens.get(app_id)
            if held and held.expires_at > stale_before:
                return False
            self.leases[app_id] = now + seconds
            return True

    def save(self, app_id: str, token: Token) -> None:
        with self._lock:
            self.tokens[app_id] = token
            self.leases.pop(app_id, None)

    def mark_stale(self, app_id: str, value: str) -> None:
        with self._lock:
            held = self.tokens.get(app_id)
            if held and held.value == value:
                held.expires_at = 0


class WeChatApi:
    """The three WeChat endpoints used, against a configurable base URL (fakes in tests)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def fetch_token(self, app_id: str, secret: str) -> tuple[str, int]:
        query = urlencode({"grant_type": "client_credential", "appid": app_id, "secret": secret})
        status, reply = http_json("GET", f"{self.base_url}/cgi-bin/token?{query}", timeout=self.timeout)
        if status != 200 or not isinstance(reply, dict) or "access_token" not in reply:
            errcode = reply.get("errcode") if isinstance(reply, dict) else status
            kind: ErrorKind = "transient" if errcode in (-1, 45009) or status >= 500 else "permanent"
            raise ProviderError(kind, f"token_{errcode}", str(reply)[:200])
        return str(reply["access_token"]), int(reply.get("expires_in", 7200))

    def post(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        status, reply = http_json(
            "POST", f"{self.base_url}{path}?access_token={token}", body=body, timeout=self.timeout
        )
        if status >= 500:
            raise ProviderError("ambiguous", f"http_{status}", str(reply)[:200])
        if not isinstance(reply, dict):
            raise ProviderError("ambiguous", f"http_{status}", str(reply)[:200])
        return reply


class WeChatTokens:
    """The shared access token: memory → DynamoDB → one leased refresh."""

    def __init__(
        self,
        store: TokenStore,
        fetch: Callable[[str, str], tuple[str, int]],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 300.0,
        lease_seconds: float = 10.0,
        wait_rounds: int = 100,
        wait_step: float = 0.05,
    ) -> None:
        self.store = store
        self.fetch = fetch
        self.clock = clock
        self.sleep = sleep
        self.margin = margin
        self.lease_seconds = lease_seconds
        self.wait_rounds = wait_rounds
        self.wait_step = wait_step
        self._memory: dict[str, Token] = {}
        self._lock = threading.Lock()
        self.refreshes = 0

    def _fresh(self, token: Token | None) -> bool:
        return token is not None and token.expires_at - self.margin > self.clock()

    def get(self, app_id: str, secret: str) -> str:
        held = self._memory.get(app_id)
        if self._fresh(held):
            assert held is not None
            return held.value
        with self._lock:  # one refresh per container; the lease makes it one across containers
            for _ in range(self.wait_rounds):
                stored = self.store.read(app_id)
                if self._fresh(stored):
                    assert stored is not None
                    self._memory[app_id] = stored
                    return stored.value
                if self.store.try_lease(app_id, self.clock(), self.lease_seconds, self.clock() + self.margin):
                    value, expires_in = self.fetch(app_id, secret)
                    token = Token(value, self.clock() + expires_in)
                    self.store.save(app_id, token)
                    self._memory[app_id] = token
                    self.refreshes += 1
                    return value
                self.sleep(self.wait_step)  # another container is refreshing: read its token
        raise ProviderError("transient", "token_busy", f"no fresh token for {app_id}")

    def invalidate(self, app_id: str, value: str) -> None:
        """WeChat rejected ``value``: forget it (only if it is still the current one)."""
        held = self._memory.get(app_id)
        if held and held.value == value:
            self._memory.pop(app_id, None)
        self.store.mark_stale(app_id, value)


class TokenBucket:
    """``rate`` sends per second per app id with bursts of ``burst``; ``take`` says how long to wait."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token; 0 when granted, else the seconds until one is available (none taken)."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class WeChatSender:
    provider = "wechat"

    def __init__(
        self,
        api: WeChatApi,
        tokens: WeChatTokens,
        credentials_for: Callable[[str], tuple[str, str]],
        *,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 1.0,
    ) -> None:
        self.api = api
        self.tokens = tokens
        self.credentials_for = credentials_for
        self.bucket = bucket
        self.sleep = sleep
        self.max_wait = max_wait

    def idempotent(self, message: OutboundMessage) -> bool:
        return message.kind != "subscribe"  # template/send dedupes on client_msg_id

    def body(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        data = {k: {"value": v} for k, v in message.fields.items()}
        if message.kind == "subscribe":
            body: dict[str, Any] = {"touser": message.to, "template_id": message.template_code, "data": data}
            if message.url:
                body["page"] = message.url
            return "/cgi-bin/message/subscribe/bizsend", body
        body = {
            "touser": message.to,
            "template_id": message.template_code,
            "data": data,
            "client_msg_id": hashlib.sha256(
                f"{message.tenant_id}\x1f{message.idempotency_key}".encode()
            ).hexdigest()[:32],
        }
        if message.url:
            body["url"] = message.url
        mini = message.extra.get("miniprogram")
        if mini:
            body["miniprogram"] = mini
        return "/cgi-bin/message/template/send", body

    def _throttle(self, app_id: str) -> None:
        if self.bucket is None:
            return
        wait = self.bucket.take(app_id)
        if wait <= 0:
            return
        if wait > self.max_wait:
            raise ProviderError("transient", "rate_limited", f"{app_id} over its send rate", retry_after=wait)
        self.sleep(wait)
        if self.bucket.take(app_id) > 0:
            raise ProviderError("transient", "rate_limited", f"{app_id} over its send rate", retry_after=wait)

    def send(self, message: OutboundMessage) -> SendResult:
        if message.kind != "subscribe" and message.purpose == "marketing":
            raise ProviderError(
                "permanent", "marketing_in_template_message", "template messages are service notices"
            )
        app_id, secret = self.credentials_for(message.tenant_id)
        self._throttle(app_id)
        path, body = self.body(message)
        for attempt in range(2):
            token = self.tokens.get(app_id, secret)
            reply = self.api.post(path, token, body)
            errcode = int(reply.get("errcode", 0) or 0)
            if errcode == 0:
                return SendResult(self.provider, str(reply.get("msgid", "")))
            if errcode in TOKEN_INVALID:
                self.tokens.invalidate(app_id, token)
                if attempt == 0:
                    continue
                raise ProviderError("transient", f"wechat_{errcode}", "token rejected twice")
            if errcode in PERMANENT:
                raise ProviderError("permanent", PERMANENT[errcode], reply.get("errmsg", ""))
            if errcode in QUOTA:
                raise ProviderError("quota", f"wechat_{errcode}", reply.get("errmsg", ""))
            if errcode == -1:
                raise ProviderError("transient", "wechat_busy", reply.get("errmsg", ""))
            raise ProviderError("permanent", f"wechat_{errcode}", reply.get("errmsg", ""))
        raise ProviderError("transient", "wechat_token", "unreachable")


def now_epoch(now: Callable[[], datetime]) -> Callable[[], float]:
    return lambda: now().timestamp()
