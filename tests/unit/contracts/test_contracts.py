"""Bus contracts: one typed model per detail type, stable event ids, schemas and samples in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huiliu.clock import ManualClock
from huiliu.contracts import (
    CONTRACTS,
    MAX_DETAIL_BYTES,
    ProfileChanged,
    ProfileSnapshot,
    UnknownDetailType,
    contract_for,
    json_schemas,
    parse_detail,
)
from huiliu.identity.repository import MemoryIdentityRepository
from huiliu.identity.rules import MAX_IDENTIFIERS_PER_EVENT
from huiliu.identity.service import IdentityService
from huiliu.models import CanonicalEvent, DetailType

from tests.unit.contracts.samples import all_samples
from tests.unit.identity.identity_helpers import T0, make_event

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "docs" / "contracts"


def test_every_detail_type_has_a_contract() -> None:
    for detail_type in DetailType:
        assert contract_for(detail_type.value) is not None
    assert contract_for("event.ingested") is CanonicalEvent
    with pytest.raises(UnknownDetailType):
        contract_for("profile.exploded")


def test_checked_in_schemas_match_the_models() -> None:
    """`python -m huiliu.contracts docs/contracts` regenerates them when a contract changes."""
    expected = json_schemas()
    on_disk = {p.name.removesuffix(".schema.json"): json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    assert set(on_disk) == set(expected)
    for detail_type, schema in expected.items():
        assert on_disk[detail_type] == json.loads(json.dumps(schema)), f"{detail_type} schema drifted"


def test_checked_in_samples_parse_and_cover_every_contract() -> None:
    """`python -m tests.unit.contracts.samples` regenerates them (from the real identity service)."""
    stages = ("identity", "segments", "journeys", "notify", "feedback")
    samples = {
        p.relative_to(ROOT / "events").as_posix(): p
        for stage in stages
        for p in (ROOT / "events" / stage).glob("*.json")
        if p.name.removesuffix(".json") in set(CONTRACTS) | {"event.ingested"}
    }
    covered = set()
    for path in samples.values():
        body = json.loads(path.read_text())
        event = parse_detail(body["detail-type"], body["detail"])
        assert event.event_id == body["detail"]["event_id"]  # type: ignore[attr-defined]
        covered.add(body["detail-type"])
    assert covered >= set(CONTRACTS)
    generated = all_samples()
    for rel, body in generated.items():
        assert rel in samples, f"missing sample events/{rel}"
        on_disk = json.loads(samples[rel].read_text())
        # ids (merge ids, profile ids) differ run to run; the shape must not
        assert sorted(on_disk["detail"]) == sorted(body["detail"]), f"events/{rel} drifted"


def _service() -> IdentityService:
    return IdentityService(MemoryIdentityRepository(salt="s"), clock=ManualClock(T0), salt="s")


def test_redelivered_event_republishes_the_same_event_ids_and_a_live_version() -> None:
    service = _service()
    first = make_event(("email", "a@example.com"), name="Signed Up", message_id="m-1")
    out1 = service.process(first)
    service.process(
        make_event(("email", "a@example.com"), name="Order Completed", message_id="m-2", minutes=1)
    )
    again = service.process(first)  # SQS redelivers m-1 after m-2 was processed
    assert again.status == "duplicate"
    assert [e.detail["event_id"] for e in again.events] == [e.detail["event_id"] for e in out1.events]
    changed = ProfileChanged.model_validate(again.events[0].detail)
    assert changed.version == changed.profile.version == 2  # the live snapshot, with its version


def test_profile_changed_carries_what_downstream_decides_on() -> None:
    out = _service().process(
        make_event(
            ("email", "a@example.com"),
            ("wechat_openid", "o-1"),
            name="Order Completed",
            traits={"city": "Hangzhou", "consent": {"email": True}, "tags": ["vip"]},
            properties={"order_id": "O1", "revenue": 10, "products": [{"product_id": "A"}]},
        )
    )
    changed = ProfileChanged.model_validate(out.events[0].detail)
    snap = changed.profile
    assert snap.identifier("email") == "a@example.com"
    assert snap.traits["city"] == "Hangzhou"
    assert snap.tags == ["vip"]
    assert snap.consents("email")
    assert not snap.consents("sms")
    assert snap.consents("sms", "transactional")
    assert snap.computed["order_count"] == 1
    assert snap.computed["products_bought"] == ["A"]
    assert changed.event is not None
    assert changed.event.name == "Order Completed"
    assert changed.event.properties["order_id"] == "O1"


def test_snapshot_at_every_limit_fits_one_bus_entry() -> None:
    """A profile with the most identifiers, event names and products identity keeps, and many large
    traits, still travels as one EventBridge entry."""
    service = _service()
    ids = [("email", f"user{i}@example.com") for i in range(MAX_IDENTIFIERS_PER_EVENT)]
    traits = {f"trait_{i}": "值" * 200 for i in range(100)}
    out = None
    for n in range(210):
        out = service.process(
            make_event(
                *ids,
                name=f"Event {n}",
                traits=traits if n == 0 else {},
                properties={"order_id": f"O{n}", "revenue": 1, "products": [{"product_id": f"P{n}"}]},
                minutes=n,
            )
        )
    assert out is not None
    changed = ProfileChanged.model_validate(out.events[0].detail)
    assert len(changed.profile.computed["events"]) == 200
    assert changed.detail_bytes() < MAX_DETAIL_BYTES


def test_stale_snapshot_is_not_newer() -> None:
    snap = ProfileSnapshot(profile_id="p1", version=3)
    assert snap.is_newer_than(2)
    assert snap.is_newer_than(None)
    assert not snap.is_newer_than(3)
    assert not snap.is_newer_than(4)
