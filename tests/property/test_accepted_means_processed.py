"""Accepted means processed (issue 8): every connector, driven end to end on the local runtime with
generated payloads, answers a 4xx naming the reason, or accepts — and then identity processes every
accepted event. Never a 5xx, never a dead letter.

Payloads mix what broke before: JSON nested up to 40 levels, integers beyond 38 digits, floats
beyond DynamoDB's range, lone UTF-16 surrogates, Chinese text (3 bytes per character in UTF-8),
strings up to 40 KB, sums that overflow. Each request is signed the way its source signs
(``huiliu_infra.sources``), so the payloads reach the parsers.

Examples per connector: ``HUILIU_E2E_EXAMPLES`` (default 8 in ``make test``; ``make bench`` or
``HUILIU_E2E_EXAMPLES=200 .venv/bin/python -m pytest tests/property/test_accepted_means_processed.py``
for a heavier run).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest
from huiliu.connectors.common import digest_id
from huiliu.identity.repository import processed_keys
from huiliu_infra import sources
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import identity_markers

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("HUILIU_E2E_EXAMPLES", "8"))
E2E = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

nasty_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.text(alphabet="汉字测试😀", min_size=1, max_size=20),
    st.builds(lambda n: "汉" * n, st.integers(0, 14_000)),  # up to 42 KB of UTF-8
    st.builds(lambda n: "x" * n, st.integers(0, 40_000)),
)
nasty_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([10**38 - 1, 10**38, -(10**39), 2**63, 1e300, -1e300, 1e-200, 1.7e308, 9.9e125]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), nasty_numbers, nasty_text)


def _deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


values = st.one_of(
    scalars,
    st.builds(_deep, st.integers(1, 40), scalars),
    st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ),
)
payloads = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=5)


class Ledger:
    """What was sent and how it was answered; ``expected`` are the (connector, message id) pairs
    identity must have processed (accepted requests whose event carries an identifier)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, int, str]] = []
        self.expected: list[tuple[str, str]] = []

    def send(self, request: sources.SignedRequest, expect: tuple[str, str] | None = None) -> int:
        status, body = sources.send(request)
        self.answers.append((request.label, status, body[:200]))
        if status < 300 and expect:
            self.expected.append(expect)
        assert status < 500, f"{request.label}: {status} {body[:300]}"
        if status >= 400:  # a 4xx names its reason
            reason = json.loads(body).get("code") if body.startswith("{") else None
            assert reason, f"{request.label}: {status} without a reason code: {body[:200]}"
        return status


def _run_connector_examples(runtime: Any, ledger: Ledger) -> None:
    conf = runtime.tenant["connectors"]

    @E2E
    @given(props=payloads, traits=payloads, call=st.sampled_from(["track", "identify", "batch"]))
    def segment(props: dict[str, Any], traits: dict[str, Any], call: str) -> None:
        user = f"u-{uuid.uuid4().hex[:10]}"
        message = {"userId": user, "event": "Fuzzed", "properties": props, "traits": traits}
        message["messageId"] = uuid.uuid4().hex
        expect = ("segment", message["messageId"])
        if call == "batch":
            body = {"batch": [{**message, "type": "track"}], "context": {"fuzz": props}}
            ledger.send(sources.segment(conf["segment"], "batch", body), expect)
        else:
            ledger.send(sources.segment(conf["segment"], call, message), expect)

    @E2E
    @given(extra=payloads, price=st.one_of(nasty_text, nasty_numbers.map(str)), generic=st.booleans())
    def shopify(extra: dict[str, Any], price: str, generic: bool) -> None:
        order = {
            "id": uuid.uuid4().int % 10**12,
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "total_price": price,
            "currency": "CNY",
            "line_items": [{"product_id": 1, "title": "茶", "price": price, "quantity": 1}],
            "note_attributes": extra,
        }
        topic = "products/update" if generic else "orders/create"  # a generic topic has no identifiers
        request = sources.shopify(conf["shopify"], topic, {**order, "customer": {"email": order["email"]}})
        message_id = "shp-" + digest_id(topic, hashlib.sha256(request.body).hexdigest())
        ledger.send(request, None if generic else ("shopify", message_id))

    @E2E
    @given(msg=payloads)
    def youzan(msg: dict[str, Any]) -> None:
        push = {
            "type": "FUZZ_EVENT",
            "id": uuid.uuid4().hex[:12],
            "msg_id": uuid.uuid4().hex,
            "kdt_id": 1,
            "status": "X",
            "msg": quote(json.dumps({**msg, "buyer_info": {"buyer_phone": "13800138000"}})),
        }
        ledger.send(sources.youzan(conf["youzan"], push))  # an unknown type: no identifiers

    @E2E
    @given(props=payloads)
    def signed_json(props: dict[str, Any]) -> None:
        body = {
            "type": "event",
            "message_id": uuid.uuid4().hex,
            "event": "Fuzzed",
            "person": {"email": f"{uuid.uuid4().hex[:8]}@example.com"},
            "properties": props,
        }
        ledger.send(sources.signed_json(conf["signed-json"], body), ("signed-json", body["message_id"]))

    @E2E
    @given(content=nasty_text)
    def wechat(content: str) -> None:
        openid = f"o{uuid.uuid4().hex[:20]}"
        msg_id = str(uuid.uuid4().int % 10**18)
        safe = content.encode("utf-8", "replace").decode("utf-8")  # XML text is characters, not surrogates
        xml = (
            f"<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{1_700_000_000}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{escape(safe)}</Content><MsgId>{msg_id}</MsgId></xml>"
        )
        ledger.send(sources.wechat(conf["wechat"], xml), ("wechat", msg_id))

    for run in (segment, shopify, youzan, signed_json, wechat):
        run()


def test_every_accepted_event_is_processed_and_nothing_else_is_a_5xx(local_runtime: Any) -> None:
    ledger = Ledger()

    _run_connector_examples(local_runtime, ledger)

    accepted = [a for a in ledger.answers if a[1] < 300]
    rejected = [a for a in ledger.answers if a[1] >= 400]
    assert accepted, "no generated request was accepted: the generators test nothing"
    assert local_runtime.drain(timeout=180)
    depths = local_runtime.queue_depths()
    assert {k: v for k, v in depths.items() if k.endswith("DLQ") and v} == {}, ledger.answers[-20:]
    assert ledger.expected
    processed = processed_keys(identity_markers(local_runtime))  # identity's processed markers
    for connector, message_id in ledger.expected:
        assert ("demo", connector, message_id) in processed, f"{connector} {message_id} not processed"
    identity = local_runtime.stats.summary()["IdentityFunction"]
    assert identity["errors"] == identity["record_failures"] == 0  # not even a retried failure
    print(f"accepted {len(accepted)}, rejected {len(rejected)}: {sorted({a[2][:60] for a in rejected})[:12]}")
