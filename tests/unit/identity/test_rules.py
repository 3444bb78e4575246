"""Identifier rules: normalisation, priority order, overrides, limits."""

from __future__ import annotations

import pytest
from huiliu.identifiers import normalize
from huiliu.identity.rules import IdentityRules, TraitStrategy
from huiliu.models import Identifier


@pytest.mark.parametrize(
    "raw", ["+86 138-0013-8000", "13800138000", "008613800138000", "+86 (138) 0013 8000"]
)
def test_given_a_cn_phone_written_any_common_way_then_it_normalises_to_one_e164_number(raw: str) -> None:
    assert normalize("phone", raw, "CN") == "+8613800138000"


def test_given_mixed_identifiers_then_they_are_ordered_by_priority_with_stable_ids_first() -> None:
    rules = IdentityRules.from_settings()
    ids = [Identifier(type=t, value="v1") for t in ("anonymous_id", "wechat_openid", "user_id", "member_id")]
    ids += [Identifier(type="email", value="a@b.cn"), Identifier(type="phone", value="13800138000")]

    usable, _ = rules.clean(ids)

    assert [i.type for i in usable] == [
        "user_id",
        "member_id",
        "phone",
        "email",
        "wechat_openid",
        "anonymous_id",
    ]


def test_given_tenant_overrides_then_limits_priorities_guard_and_trait_strategies_change() -> None:
    rules = IdentityRules.from_settings(
        {
            "email": {"limit": 1, "priority": 0},
            "loyalty_no": {"limit": 1},
            "_guard": {"max_identifiers": 10},
            "_traits": {"points": "sum"},
        }
    )

    assert rules.rule("email").priority == 0
    assert (
        rules.within_limits(
            [Identifier(type="email", value="a@b.cn"), Identifier(type="email", value="c@d.cn")]
        )
        == "email"
    )
    assert rules.rule("loyalty_no").limit == 1
    assert rules.guard.max_identifiers == 10
    assert rules.strategy("points") is TraitStrategy.SUM
    assert rules.strategy("city") is TraitStrategy.LATEST


def test_given_an_unparseable_phone_then_it_is_dropped_not_matched() -> None:
    usable, dropped = IdentityRules.from_settings().clean([Identifier(type="phone", value="12")])

    assert usable == []
    assert dropped == [Identifier(type="phone", value="12")]


@pytest.mark.parametrize("value", ["nan@163.com", "na@x.cn", "NaN@qq.com"])
def test_given_na_or_nan_as_an_email_local_part_then_the_email_is_usable(value: str) -> None:
    usable, dropped = IdentityRules.from_settings().clean([Identifier(type="email", value=value)])

    assert [i.value for i in usable] == [value.lower()]
    assert dropped == []


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("user_id", "na"),
        ("member_id", "nan"),
        ("email", "na"),
        ("email", "null@x.cn"),
        ("email", "0000@x.cn"),
    ],
)
def test_given_na_nan_as_whole_values_or_placeholder_emails_then_they_are_blocked(
    kind: str, value: str
) -> None:
    assert IdentityRules.from_settings().is_blocked(Identifier(type=kind, value=value))
