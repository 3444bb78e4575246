"""The stored form of a profile: compact (billed per started KB on every event), read back exactly."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from huiliu.clock import ManualClock
from huiliu.identity.profile import Profile
from huiliu.identity.repository import MemoryIdentityRepository, profile_pk
from huiliu.identity.service import IdentityService
from huiliu.models import Identifier

from benchmarks.meter import item_size
from tests.unit.identity.identity_helpers import T0, TENANT, make_event

_SER = TypeSerializer()


def _dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    return value


def stored_size(item: dict[str, Any]) -> int:
    """Bytes by DynamoDB's item size rules (the meter's)."""
    return item_size({k: _SER.serialize(_dynamo(v)) for k, v in item.items() if v is not None})


def _profile() -> Profile:
    p = Profile(profile_id="p1", tenant_id=TENANT, created_at="2026-03-01T08:00:00.000000+00:00")
    p.identifiers = [Identifier(type="email", value="a@x.cn")]
    p.traits = {"name": "Li", "city": "HZ", "points": 3, "interests": ["tea"]}
    p.trait_meta = {
        "name": ["2026-03-01T08:00:00.000000+00:00", "m-1"],
        "city": ["2026-03-01T08:00:00.000000+00:00", "m-1"],
        "points": ["2026-03-02T08:00:00.000000+00:00", "m-2"],
        "interests": ["", ""],
    }
    p.tags = ["vip"]
    p.consent = {"email": {"granted": True, "at": "2026-03-01T08:00:00.000000+00:00"}}
    p.computed = {
        "event_count": 3,
        "last_seen": "2026-03-02T08:00:00.000000+00:00",
        "events": {
            "Viewed": {"count": 2, "last_at": "2026-03-02T08:00:00.123456+00:00"},
            "odd": {"count": 1, "last_at": "2026-03-02 08:00"},  # not an iso() time: kept as text
        },
        "products_bought": ["sku-1"],
    }
    p.recent, p.recent_since, p.version = ["abc"], "2026-03-01T08:00:00.000000+00:00", 3
    p.merge_log = ["p1:m1", "p9:m2"]
    return p


def test_given_a_profile_when_stored_compactly_then_it_reads_back_equal() -> None:
    profile = _profile()

    item = profile.to_item()

    assert "trait_meta" not in item
    assert "events" not in item["computed"]
    back = Profile.from_dict(item)
    assert back == profile
    assert back.computed["events"]["odd"]["last_at"] == "2026-03-02 08:00"


def test_given_an_item_written_in_the_old_form_when_read_then_the_same_profile() -> None:
    profile = _profile()

    assert Profile.from_dict(profile.to_dict()) == profile


def test_given_a_known_user_when_stored_then_the_profile_item_fits_one_write_unit() -> None:
    """The meter's *segment track, known user*: an identify with four traits, then track events.
    Before the compact form the item was 1.1 KB (2 write units on every event)."""
    repo = MemoryIdentityRepository()
    service = IdentityService(repo, clock=ManualClock(T0), backoff=lambda a: None)
    user = ("user_id", "cost-3f9a1c2b-12")
    email = f"{user[1]}@example.com"
    traits = {"email": email, "name": "Customer 12", "city": "Hangzhou", "plan": "gold"}
    service.process(
        make_event(user, ("email", email), kind="identify", traits=traits, message_id=uuid.uuid4().hex)
    )
    for n in range(40):
        service.process(
            make_event(
                user,
                name="Product Viewed",
                at=T0 + timedelta(seconds=n + 1),
                message_id=uuid.uuid4().hex,
                properties={"product_id": "p-1", "price": 19.9},
            )
        )
    (key,) = [k for k in repo.items if k[1] == "PROFILE"]
    item = repo.items[key]
    assert key[0] == profile_pk(TENANT, item["profile_id"])

    assert stored_size(item) <= 1024
    assert stored_size(Profile.from_dict(item).to_dict() | {"pk": key[0], "sk": key[1]}) > 1024
