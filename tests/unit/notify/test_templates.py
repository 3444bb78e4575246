"""Templates: sandboxed, strict, per locale, refused at save time when the sample lacks a variable."""

from __future__ import annotations

from typing import Any

import pytest
from huiliu.notify.templates import InvalidTemplate, Template, check, render, sample_context
from pydantic import ValidationError


def _email(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "template_id": "t1",
        "channel": "email",
        "locales": {
            "zh-CN": {"subject": "你好 {{ traits.name }}", "text": text},
            "en": {"subject": "Hi {{ traits.name }}", "text": text},
        },
        "sample": {"traits": {"name": "Li"}, "vars": {"coupon": "X"}},
        **extra,
    }


def test_a_template_naming_a_variable_its_sample_lacks_is_refused_when_saved() -> None:
    template = Template.model_validate(_email("code {{ vars.coupon }} expires {{ vars.expires_at }}"))
    with pytest.raises(InvalidTemplate) as caught:
        check(template)
    assert len(caught.value.errors) == 2  # both locales
    assert "expires_at" in str(caught.value)


def test_a_template_with_bad_syntax_is_refused() -> None:
    with pytest.raises(InvalidTemplate):
        check(Template.model_validate(_email("{% if %}")))


def test_the_sandbox_refuses_reaching_into_python_internals() -> None:
    template = Template.model_validate(_email("{{ traits.__class__.__mro__ }}"))
    with pytest.raises(InvalidTemplate):
        check(template)


def test_html_is_escaped_text_is_not() -> None:
    body = _email("{{ traits.name }}")
    body["locales"]["en"]["html"] = "<p>{{ traits.name }}</p>"
    template = check(Template.model_validate(body))
    out = render(template, sample_context({"traits": {"name": "<b>Li</b>"}, "vars": {}}), "en")
    assert out.html == "<p>&lt;b&gt;Li&lt;/b&gt;</p>"
    assert out.text == "<b>Li</b>"


@pytest.mark.parametrize(
    ("wanted", "picked"),
    [(("en",), "en"), (("en-GB",), "en"), (("zh-TW",), "zh-CN"), ((None, "fr"), "zh-CN"), ((), "zh-CN")],
)
def test_locale_falls_back_by_language_then_to_the_default(
    wanted: tuple[str | None, ...], picked: str
) -> None:
    template = Template.model_validate(_email("x"))
    assert template.pick_locale(*wanted) == picked


def test_a_wechat_template_message_cannot_be_marketing() -> None:
    body = {
        "template_id": "w",
        "channel": "wechat",
        "purpose": "marketing",
        "wechat": {"kind": "template", "template_id": "TPL"},
        "locales": {"zh-CN": {"fields": {"k": "v"}}},
    }
    with pytest.raises(ValidationError, match="service notices"):
        Template.model_validate(body)
    body["wechat"] = {"kind": "subscribe", "template_id": "TPL"}
    assert Template.model_validate(body).allows("marketing")


def test_a_transactional_template_refuses_marketing_requests() -> None:
    template = Template.model_validate({**_email("x"), "purpose": "transactional"})
    assert template.allows("transactional")
    assert not template.allows("marketing")


def test_journey_variables_are_reachable_by_their_own_name_too() -> None:
    template = check(
        Template.model_validate(
            {
                "template_id": "c",
                "channel": "sms",
                "locales": {"zh-CN": {"text": "券 {{ coupon }} / {{ vars.coupon }}"}},
                "sample": {"vars": {"coupon": "W10"}},
            }
        )
    )
    assert render(template, sample_context(template.sample), "zh-CN").text == "券 W10 / W10"


def test_the_demo_templates_all_render_against_their_samples() -> None:
    import yaml
    from huiliu_infra.local.provision import ROOT

    docs = yaml.safe_load((ROOT / "events/notify/templates.yaml").read_text(encoding="utf-8"))
    assert {check(Template.model_validate(d)).template_id for d in docs} >= {"welcome", "coupon-sms.email"}
