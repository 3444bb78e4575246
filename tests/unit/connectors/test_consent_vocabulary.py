"""Where each source's opt-in / opt-out lands: marketing consent per channel (docs/contracts.md)."""

from __future__ import annotations

import pytest
from huiliu.clock import ManualClock
from huiliu.connectors.shopify import marketing_consent
from huiliu.contracts import ProfileChanged
from huiliu.identity.repository import MemoryIdentityRepository
from huiliu.identity.service import IdentityService

from tests.unit.identity.identity_helpers import T0, make_event


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        ({"email_marketing_consent": {"state": "subscribed"}}, {"email": True}),
        ({"email_marketing_consent": {"state": "unsubscribed"}, "accepts_marketing": True}, {"email": False}),
        ({"sms_marketing_consent": {"state": "subscribed"}}, {"sms": True}),
        ({"sms_marketing_consent": {"state": "pending"}}, {"sms": False}),
        ({"accepts_marketing": True}, {"email": True}),
        ({"accepts_marketing": False}, {"email": False}),
        ({"accepts_marketing": "yes"}, {}),
        ({}, {}),
    ],
)
def test_shopify_consent_fields(customer: dict, expected: dict) -> None:
    assert marketing_consent(customer) == expected


def test_opt_out_after_opt_in_wins_by_event_time_not_arrival() -> None:
    service = IdentityService(MemoryIdentityRepository(salt="s"), clock=ManualClock(T0), salt="s")
    ident = ("wechat_openid", "o-1")
    service.process(make_event(ident, name="Unsubscribed", traits={"consent": {"wechat": False}}, minutes=10))
    late = service.process(
        make_event(ident, name="Subscribed", traits={"consent": {"wechat": True}}, minutes=1)
    )
    snap = ProfileChanged.model_validate(late.events[0].detail).profile
    assert not snap.consents("wechat")
    assert snap.consents("wechat", "transactional")
