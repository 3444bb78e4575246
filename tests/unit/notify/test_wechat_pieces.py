"""WeChat pieces without a network: the token bucket and the shared-token lease (memory store)."""

from __future__ import annotations

import pytest
from huiliu.notify.channels.base import OutboundMessage, ProviderError
from huiliu.notify.channels.wechat import MemoryTokenStore, Token, TokenBucket, WeChatSender, WeChatTokens


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_token_bucket_grants_a_burst_then_the_rate() -> None:
    clock = _Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take("wx") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("wx") == pytest.approx(0.1)
    clock.t += 0.1
    assert bucket.take("wx") == 0.0
    assert bucket.take("other-app") == 0.0  # per app id


def test_over_the_rate_a_send_is_a_transient_error_with_retry_after() -> None:
    clock = _Clock()
    sender = WeChatSender(
        api=None,  # type: ignore[arg-type]
        tokens=None,  # type: ignore[arg-type]
        credentials_for=lambda tenant: ("wx", "secret"),
        bucket=TokenBucket(rate=0.1, burst=1, clock=clock),
        sleep=lambda s: None,
        max_wait=1.0,
    )
    sender.bucket.take("wx")  # type: ignore[union-attr]
    message = OutboundMessage("t", "k", "p", "wechat", "transactional", "o1", kind="template")
    with pytest.raises(ProviderError) as caught:
        sender.send(message)
    assert caught.value.kind == "transient"
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == pytest.approx(10.0)


def test_a_token_is_fetched_once_and_refreshed_before_it_expires() -> None:
    clock = _Clock()
    calls: list[str] = []

    def fetch(app_id: str, secret: str) -> tuple[str, int]:
        calls.append(app_id)
        return f"tok-{len(calls)}", 7200

    tokens = WeChatTokens(MemoryTokenStore(), fetch, clock=clock, sleep=lambda s: None)
    assert tokens.get("wx", "s") == "tok-1"
    clock.t += 6000
    assert tokens.get("wx", "s") == "tok-1"
    clock.t += 1000  # within 5 minutes of expiry: refreshed ahead of time
    assert tokens.get("wx", "s") == "tok-2"
    assert calls == ["wx", "wx"]


def test_a_stale_invalidation_does_not_throw_away_a_fresh_token() -> None:
    store = MemoryTokenStore()
    store.save("wx", Token("new", 10_000.0))
    tokens = WeChatTokens(store, lambda a, s: ("never", 7200), clock=_Clock(), sleep=lambda s: None)
    tokens.invalidate("wx", "old")  # a late 40001 for a token already replaced
    assert tokens.get("wx", "s") == "new"
