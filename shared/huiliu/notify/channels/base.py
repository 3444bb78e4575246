"""The channel interface: one ``send(message) -> SendResult`` per provider, errors classified.

A provider error is one of three kinds, and the kind decides what the send log does:

- ``transient`` — the provider certainly did not accept the message (throttled, 429, connection
  refused, token expired): the claim is released and the message retried with backoff;
- ``permanent`` — it never will (invalid address, user not subscribed, template rejected): the
  send is recorded as failed;
- ``ambiguous`` — the provider may have accepted it (timeout after the request went out, 5xx):
  retried only when the provider dedupes on our key (``Sender.idempotent``: webhooks' ``webhook-id``,
  WeChat's ``client_msg_id``), else recorded as failed(unknown_outcome) — one send per key means at
  most once when a provider cannot tell us.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorKind = Literal["transient", "permanent", "ambiguous", "quota"]


@dataclass
class OutboundMessage:
    tenant_id: str
    idempotency_key: str
    profile_id: str
    channel: str
    purpose: str
    to: str  # email address, E.164 phone, WeChat openid, or webhook URL
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    url: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    template_code: str | None = None  # provider-side template (WeChat template id, Aliyun code)
    sign_name: str | None = None
    kind: str | None = None  # wechat: template | subscribe
    unsubscribe_url: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_id: str


class ProviderError(Exception):
    def __init__(self, kind: ErrorKind, code: str, message: str = "", *, retry_after: float | None = None):
        super().__init__(f"{kind} {code}: {message}")
        self.kind = kind
        self.code = code
        self.retry_after = retry_after


class Sender(Protocol):
    provider: str

    def idempotent(self, message: OutboundMessage) -> bool:
        """True when the provider dedupes a resend of this message (so a crash or an ambiguous
        error may be retried without a second delivery)."""
        ...

    def send(self, message: OutboundMessage) -> SendResult: ...


def http_json(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One HTTP call (stdlib, no extra layer dependency); JSON in and out where there is JSON.

    Connection refused / DNS → transient; timeouts after the request was sent → ambiguous.
    """
    data = (
        raw
        if raw is not None
        else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
    )
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) URLs we configure
    for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except TimeoutError as exc:
        raise ProviderError("ambiguous", "timeout", str(exc)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise ProviderError("ambiguous", "timeout", str(exc)) from exc
        raise ProviderError("transient", "connect", str(exc.reason)) from exc
    except ConnectionError as exc:  # reset mid-response: it may have been accepted
        raise ProviderError("ambiguous", "connection_reset", str(exc)) from exc
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode("utf-8", "replace")


def classify_http(status: int, provider: str, body: Any) -> None:
    """Raise for a non-2xx status: 429/408 transient, other 4xx permanent, 5xx ambiguous."""
    if 200 <= status < 300:
        return
    text = json.dumps(body)[:200] if not isinstance(body, str) else body[:200]
    if status in (408, 425, 429):
        raise ProviderError("transient", f"http_{status}", f"{provider}: {text}")
    if status >= 500:
        raise ProviderError("ambiguous", f"http_{status}", f"{provider}: {text}")
    raise ProviderError("permanent", f"http_{status}", f"{provider}: {text}")
