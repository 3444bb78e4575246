"""Arrival order does not matter: any permutation of a stream (with duplicates and late events)
ends in the same grouping and the same trait values as in-order processing, where no limit is hit.
And limits / blocked values never merge two people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.clock import ManualClock
from huiliu.identity.repository import MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import CanonicalEvent, DetailType, Identifier
from huiliu.tenants import TenantSettings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

TENANT = "acme"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _person_ids(n: int) -> list[tuple[str, str]]:
    # Within every limit: one user_id, two emails, two phones, one openid per person.
    return [
        ("user_id", f"u{n}"),
        ("email", f"p{n}@x.cn"),
        ("email", f"P{n}.alt@X.cn"),
        ("phone", f"+86 138 0000 {n:04d}"),
        ("phone", f"1390000{n:04d}"),
        ("wechat_openid", f"o{n}"),
        ("anonymous_id", f"a{n}"),  # the person's own browser
    ]


def _journey(person: int) -> list[list[tuple[str, str]]]:
    """Anonymous browsing, email sign-up, then log-in with the user_id, on the person's browser."""
    anon = ("anonymous_id", f"a{person}")
    return [[anon], [anon, ("email", f"p{person}@x.cn")], [("user_id", f"u{person}"), anon]]


@st.composite
def streams(draw: Any) -> list[CanonicalEvent]:
    people = draw(st.integers(min_value=1, max_value=4))
    count = draw(st.integers(min_value=1, max_value=14))
    plans: list[list[tuple[str, str]]] = []
    for person in draw(st.lists(st.integers(min_value=0, max_value=people - 1), max_size=2, unique=True)):
        plans += _journey(person)
    for _ in range(count):
        person = draw(st.integers(min_value=0, max_value=people - 1))
        own = _person_ids(person)
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            own = [*own, ("anonymous_id", "family-ipad")]  # a shared device: may hit user_id's limit
        plans.append(draw(st.lists(st.sampled_from(own), min_size=1, max_size=3, unique=True)))
    events = []
    for k, ids in enumerate(plans):
        traits = draw(
            st.dictionaries(
                st.sampled_from(["city", "level", "interests"]), st.sampled_from(["a", "b", "c"]), max_size=2
            )
        )
        if "interests" in traits:
            traits["interests"] = [traits["interests"]]
        events.append(
            CanonicalEvent(
                tenant_id=TENANT,
                message_id=f"m{k}",
                type="identify",
                timestamp=T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=50))),
                received_at=T0,
                source={"connector": "segment"},
                identifiers=[Identifier(type=t, value=v) for t, v in ids],
                traits=traits,
            )
        )
    return events


def _run(events: list[CanonicalEvent]) -> tuple[dict[frozenset[str], dict[str, Any]], list[str]]:
    """(grouping -> traits, reasons of the identity.conflict events) after processing ``events``."""
    repo = MemoryIdentityRepository(salt="s")
    clock = ManualClock(T0)
    service = IdentityService(
        repo,
        settings_for=lambda t: TenantSettings(tenant_id=t),
        clock=clock,
        salt="s",
        backoff=lambda a: None,
    )
    conflicts: list[str] = []
    for event in events:
        clock.advance(timedelta(seconds=1))
        outcome = service.process(event)
        conflicts += [
            e.detail["reason"] for e in outcome.events if e.detail_type == DetailType.IDENTITY_CONFLICT
        ]
    return _groups(repo), conflicts


def _groups(repo: MemoryIdentityRepository) -> dict[frozenset[str], dict[str, Any]]:
    profiles = {i["profile_id"]: i for (_pk, sk), i in repo.items.items() if sk == "PROFILE"}

    def live(pid: str) -> str:
        while profiles[pid].get("merged_into"):
            pid = profiles[pid]["merged_into"]
        return pid

    members: dict[str, set[str]] = {}
    for (_pk, sk), item in repo.items.items():
        if sk.startswith("TL#") and "out" in item:  # an applied event's timeline item: its marker
            members.setdefault(live(item["profile_id"]), set()).add(item["message_id"])
    return {frozenset(msgs): profiles[pid]["traits"] for pid, msgs in members.items()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(stream=streams(), data=st.data())
def test_given_any_arrival_order_with_duplicates_then_grouping_and_traits_match_in_order_processing(
    stream: list[CanonicalEvent], data: Any
) -> None:
    in_order = sorted(stream, key=lambda e: (e.timestamp, e.message_id))
    shuffled = data.draw(st.permutations(stream))
    duplicates = data.draw(st.lists(st.sampled_from(stream), max_size=4))
    arrival = list(shuffled)
    for dup in duplicates:
        arrival.insert(data.draw(st.integers(min_value=0, max_value=len(arrival))), dup)

    shuffled_groups, shuffled_conflicts = _run(arrival)
    ordered_groups, ordered_conflicts = _run(in_order)
    # Every conflict is a limit (or the size guard) being hit; only those runs are not compared.
    # A person's own anonymous id never conflicts: sign-up -> log-in journeys are always compared.
    assert all(
        r.startswith(("limit:", "weak_link:", "guard:")) for r in shuffled_conflicts + ordered_conflicts
    )
    assume(not shuffled_conflicts and not ordered_conflicts)
    assert shuffled_groups == ordered_groups


@st.composite
def conflicting_streams(draw: Any) -> list[CanonicalEvent]:
    events = []
    for k in range(draw(st.integers(min_value=2, max_value=12))):
        person = draw(st.integers(min_value=0, max_value=3))
        ids = [("member_id", f"M{person}")]
        ids += draw(
            st.lists(
                st.sampled_from(
                    [
                        ("email", "family@x.cn"),
                        ("phone", "13900000000"),
                        ("email", "null"),
                        ("phone", f"1380000{person:04d}"),
                    ]
                ),
                max_size=2,
                unique=True,
            )
        )
        events.append(
            CanonicalEvent(
                tenant_id=TENANT,
                message_id=f"c{k}",
                type="identify",
                timestamp=T0 + timedelta(minutes=k),
                received_at=T0,
                source={"connector": "segment"},
                identifiers=[Identifier(type=t, value=v) for t, v in ids],
            )
        )
    return events


@settings(max_examples=100, deadline=None)
@given(stream=conflicting_streams())
def test_given_shared_and_blocked_values_then_no_profile_ever_holds_two_people(
    stream: list[CanonicalEvent],
) -> None:
    repo = MemoryIdentityRepository(salt="s")
    settings_ = TenantSettings(tenant_id=TENANT, blocked_values=["13900000000"])
    service = IdentityService(repo, settings_for=lambda t: settings_, clock=ManualClock(T0), salt="s")

    for event in stream:
        service.process(event)

    for (_pk, sk), item in repo.items.items():
        if sk == "PROFILE" and not item.get("merged_into"):
            members = {i["value"] for i in item["identifiers"] if i["type"] == "member_id"}
            assert len(members) <= 1
            assert "+8613900000000" not in {i["value"] for i in item["identifiers"]}
