"""Journey definitions: the examples parse; bad ones are refused with a path and a reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.journeys.definition import Catalog, DefinitionError, parse_definition
from huiliu.journeys.examples import example_documents


def _doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "j1",
        "trigger": {"event": "Signed Up"},
        "steps": [
            {"id": "w", "type": "wait", "duration": "1d"},
            {"id": "s", "type": "send", "channel": "sms", "template": "t1"},
        ],
    }
    base.update(over)
    return base


def _problems(doc: dict[str, Any], catalog: Catalog | None = None) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as err:
        parse_definition(doc, catalog)
    return err.value.problems


def test_the_three_classic_examples_parse_against_their_catalog() -> None:
    catalog = Catalog(segments={"dormant_90_days"}, templates={"coupon-sms", "winback-email", "recommend-b"})
    journeys = [parse_definition(doc, catalog) for doc in example_documents()]
    assert {j.id for j in journeys} == {"signup-coupon", "winback", "cross-sell-b"}


def test_an_unknown_step_reference_is_refused_with_its_path() -> None:
    doc = _doc(steps=[{"id": "w", "type": "wait", "duration": "1d", "next": "nowhere"}])
    assert ("steps[0].next", "unknown step 'nowhere'") in _problems(doc)


def test_a_cycle_without_a_wait_is_refused() -> None:
    doc = _doc(
        steps=[
            {"id": "a", "type": "branch", "did_event": "x", "then": "b", "else": "end"},
            {"id": "b", "type": "tag", "add": ["t"], "next": "a"},
        ]
    )
    problems = _problems(doc)
    assert problems[0][0] == "steps[0]"
    assert "cycle without a wait: a -> b -> a" in problems[0][1]


def test_a_cycle_through_a_wait_is_allowed() -> None:
    doc = _doc(
        steps=[
            {"id": "w", "type": "wait", "duration": "7d"},
            {"id": "b", "type": "branch", "did_event": "Order Completed", "then": "end", "else": "w"},
        ]
    )
    assert parse_definition(doc).steps[1].id == "b"


def test_a_wait_longer_than_the_tenant_maximum_is_refused() -> None:
    doc = _doc(steps=[{"id": "w", "type": "wait", "duration": "40d"}])
    problems = _problems(doc, Catalog(max_wait=timedelta(days=30)))
    assert problems == [("steps[0]", "wait of 40d is longer than the tenant maximum 30d")]


def test_unknown_segments_and_templates_are_refused_with_paths() -> None:
    doc = _doc(
        trigger={"segment_entered": "ghost"},
        exit=[{"segment_exited": "ghost2"}],
    )
    problems = _problems(doc, Catalog(segments={"real"}, templates={"other"}))
    assert ("trigger.segment_entered", "unknown segment 'ghost'") in problems
    assert ("exit[0].segment_exited", "unknown segment 'ghost2'") in problems
    assert ("steps[1].template", "unknown template 't1'") in problems


def test_field_errors_carry_the_step_path() -> None:
    doc = _doc(steps=[{"id": "s", "type": "send", "channel": "fax", "template": "t"}])
    problems = _problems(doc)
    assert problems[0][0] == "steps[0].channel"


def test_a_wait_for_an_event_needs_a_timeout() -> None:
    doc = _doc(steps=[{"id": "w", "type": "wait", "event": {"event": "Shipped"}}])
    assert any("needs a timeout" in reason for _, reason in _problems(doc))


def test_trigger_needs_exactly_one_kind_and_split_adds_to_100() -> None:
    problems = _problems(
        _doc(
            trigger={"event": "x", "profile_created": True},
            steps=[
                {
                    "id": "s",
                    "type": "split",
                    "paths": [{"percent": 50, "next": "end"}, {"percent": 40, "next": "end"}],
                }
            ],
        )
    )
    paths = [p for p, _ in problems]
    assert "trigger" in paths
    assert "steps[0]" in paths


def test_once_per_period_requires_a_period_and_per_order_needs_an_event_trigger() -> None:
    assert any(p == "entry" for p, _ in _problems(_doc(entry={"policy": "once_per_period"})))
    doc = _doc(trigger={"profile_created": True}, instance={"key": "order_id"})
    assert ("instance", "per-order instances need an event trigger (the key is its property)") in _problems(
        doc
    )


def test_a_bad_branch_condition_is_refused_at_apply() -> None:
    doc = _doc(steps=[{"id": "b", "type": "branch", "condition": {"bogus": 1}}])
    from huiliu.journeys.conditions import compile_condition

    problems = _problems(doc, Catalog(compile_condition=compile_condition))
    assert problems[0][0] == "steps[0].condition"
