"""Signed one-click unsubscribe links (RFC 8058): ``{api}/v1/unsubscribe/{tenant}?t=<token>``.

The token is ``base64url(payload).base64url(HMAC-SHA256)`` under a key derived from the stack's
salt; it names the tenant, profile, channel and address, and never expires (an old mail's link
must still work). GET shows a confirmation page (mail scanners prefetch links); POST unsubscribes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class UnsubscribeClaim:
    tenant_id: str
    profile_id: str
    channel: str
    address: str


def signing_key(salt: str) -> bytes:
    return hmac.new(salt.encode(), b"huiliu-unsubscribe-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, claim: UnsubscribeClaim) -> str:
    payload = json.dumps(
        {"t": claim.tenant_id, "p": claim.profile_id, "c": claim.channel, "a": claim.address},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


def read_token(key: bytes, token: str) -> UnsubscribeClaim | None:
    """The claim of a genuine token, None for anything else."""
    try:
        body, sig = token.split(".", 1)
        payload = _unb64(body)
        expected = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        data = json.loads(payload)
        return UnsubscribeClaim(str(data["t"]), str(data["p"]), str(data["c"]), str(data["a"]))
    except (ValueError, KeyError, TypeError):
        return None


def unsubscribe_url(base_url: str, key: bytes, claim: UnsubscribeClaim) -> str:
    return f"{base_url.rstrip('/')}/v1/unsubscribe/{claim.tenant_id}?t={make_token(key, claim)}"
