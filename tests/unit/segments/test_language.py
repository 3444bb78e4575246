"""The segment language: what it accepts, what it refuses, and where it says the problem is."""

from __future__ import annotations

import pytest
from huiliu.segments.language import (
    SegmentLanguageError,
    check_definitions,
    load_documents,
    parse_condition,
    parse_definition,
    parse_duration,
)


def definition(condition: object, sid: str = "s") -> dict[str, object]:
    return {"id": sid, "name": sid.upper(), "condition": condition}


def problems_of(data: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(SegmentLanguageError) as info:
        parse_definition(data)
    return info.value.problems


def test_a_full_definition_parses_every_kind_of_condition() -> None:
    parsed = parse_definition(
        definition(
            {
                "all": [
                    {"trait": "city", "in": ["上海", "北京"]},
                    {"computed": "revenue_total", "gte": 5000},
                    {"tag": "vip"},
                    {"consent": "wechat"},
                    {"identifier": "wechat_openid"},
                    {"event": "Order Completed", "within": "P30D", "count": {"gte": 2}},
                    {"event": "Order Completed", "between": ["2026-11-01", "2026-11-12"]},
                    {"event": "Order Completed", "within": "P30D", "sum": {"property": "revenue", "gt": 100}},
                    {"event": "Order Completed", "last": {"older_than": "P90D"}},
                    {"not": {"event": "Refund", "never": True}},
                    {"any": [{"lifecycle": ["new", "active"]}, {"rfm": "champions"}]},
                    {"rfm_score": "m", "gte": 4},
                    {"segment": "other"},
                ]
            }
        )
    )
    assert parsed.canonical()["condition"]["all"][0] == {"trait": "city", "in": ["上海", "北京"]}


def test_an_unknown_field_is_refused_with_its_path() -> None:
    problems = problems_of(
        definition({"all": [{"trait": "a", "eq": 1}, {"trait": "b", "gte": 2, "colour": 1}]})
    )
    assert problems == [("condition.all[1].colour", "unknown field")]


def test_an_unknown_node_kind_is_refused_with_its_path() -> None:
    [(path, reason)] = problems_of(definition({"any": [{"not": {"bogus": 1}}]}))
    assert path == "condition.any[0].not"
    assert "exactly one of" in reason


def test_a_leaf_needs_exactly_one_operator() -> None:
    [(path, reason)] = problems_of(definition({"all": [{"trait": "a", "gt": 1, "lt": 3}]}))
    assert path == "condition.all[0]"
    assert "got gt, lt" in reason


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"event": "E", "within": "P1Y"}, "months and years"),
        ({"event": "E", "within": "P500D", "count": {"gte": 2}}, "cannot be evaluated"),
        ({"event": "E", "within": "P0D"}, "longer than zero"),
        ({"event": "E", "sum": {"property": "revenue", "gte": 1}}, "needs a window"),
        ({"event": "E", "within": "P30D", "count": {"gte": 1000}}, "cannot be evaluated"),
        ({"event": "E", "between": ["2026-11-12", "2026-11-01"]}, "end must be after"),
        ({"event": "E", "within": "P7D", "last": {"within": "P1D"}}, "not a window"),
        ({"event": "E", "never": True, "count": {"gte": 1}}, "at most one of"),
        ({"lifecycle": "sleeping"}, "unknown lifecycle stage"),
    ],
)
def test_windows_that_cannot_be_evaluated_are_refused(condition: dict[str, object], reason: str) -> None:
    [(path, message)] = problems_of(definition(condition))
    assert path.startswith("condition")
    assert reason in message


def test_a_segment_cycle_is_refused_naming_the_cycle() -> None:
    defs = {
        "a": parse_definition(definition({"segment": "b"}, "a")),
        "b": parse_definition(definition({"all": [{"tag": "x"}, {"segment": "a"}]}, "b")),
    }
    with pytest.raises(SegmentLanguageError, match="a -> b -> a"):
        check_definitions(defs)


def test_segments_are_ordered_after_the_segments_they_use() -> None:
    defs = {
        "top": parse_definition(definition({"segment": "mid"}, "top")),
        "mid": parse_definition(definition({"segment": "base"}, "mid")),
        "base": parse_definition(definition({"tag": "x"}, "base")),
    }
    assert check_definitions(defs) == ["base", "mid", "top"]


def test_a_reference_to_a_missing_segment_is_refused() -> None:
    with pytest.raises(SegmentLanguageError, match="does not exist"):
        check_definitions({"a": parse_definition(definition({"segment": "ghost"}, "a"))})


def test_yaml_with_several_documents_and_json_lists_load() -> None:
    yaml_text = "id: a\nname: A\ncondition: {tag: x}\n---\nid: b\nname: B\ncondition: {tag: y}\n"
    assert [d["id"] for d in load_documents(yaml_text)] == ["a", "b"]
    assert [d["id"] for d in load_documents('[{"id": "c"}]')] == ["c"]


def test_durations_are_iso_8601_days_hours_weeks() -> None:
    assert parse_duration("P30D").days == 30
    assert parse_duration("PT12H").total_seconds() == 43200
    assert parse_duration("P1W2D").days == 9
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_duration("30 days")


def test_a_bare_condition_parses_for_journey_branches() -> None:
    node = parse_condition({"trait": "plan", "eq": "pro"})
    assert node.trait == "plan"
