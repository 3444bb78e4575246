"""Message templates: jinja2 in a sandbox, one body per locale, refused at save time when they
reference a variable the sample does not have (never discovered at send time).

Rendering context (the same names at save time, from ``sample``, and at send time):

- ``traits``   the person's traits from the profile snapshot (``traits.first_name``)
- ``profile``  ``{"id", "email", "phone", "locale", "timezone"}``
- ``event``    properties of the event that triggered the journey step (``event.order_id``)
- ``vars``     journey variables and the request's own variables (``vars.coupon``; also by their
  own name, ``coupon``, unless the name is one of these five)
- ``unsubscribe_url``  the signed one-click link (email only; empty elsewhere)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from huiliu.contracts import Channel, Purpose

LOCALES = ("zh-CN", "en")
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class InvalidTemplate(ValueError):
    """A template that cannot be saved (bad syntax, or a variable its sample lacks)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class Content(BaseModel):
    """One locale's text. Which fields a channel uses: email subject/text/html; sms text;
    wechat ``fields`` (template data keywords) and ``url``; webhook ``fields`` (the JSON payload)."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None
    url: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class WeChatTarget(BaseModel):
    kind: Literal["template", "subscribe"] = "template"
    template_id: str  # the official account's template (or subscribe-notice template) id
    miniprogram_appid: str | None = None
    miniprogram_page: str | None = None


class SmsTarget(BaseModel):
    """China providers send only pre-approved templates: the provider's code and sign name."""

    template_code: str | None = None
    sign_name: str | None = None


class Template(BaseModel):
    template_id: str = Field(pattern=TEMPLATE_ID_PATTERN, validation_alias=AliasChoices("template_id", "id"))
    channel: Channel
    # What the template may be used for. WeChat template messages are service notices: WeChat
    # forbids marketing in them, so a wechat/template template is transactional-only.
    purpose: Purpose = Purpose.MARKETING
    default_locale: str = "zh-CN"
    locales: dict[str, Content]
    sample: dict[str, Any] = Field(default_factory=dict)
    wechat: WeChatTarget | None = None
    sms: SmsTarget | None = None
    webhook_url: str | None = None
    version: int = 0
    updated_at: str | None = None

    @field_validator("locales")
    @classmethod
    def _some_locale(cls, value: dict[str, Content]) -> dict[str, Content]:
        if not value:
            raise ValueError("a template needs at least one locale")
        return value

    @model_validator(mode="after")
    def _channel_rules(self) -> Template:
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale!r} has no content")
        if self.channel == Channel.WECHAT:
            if self.wechat is None:
                raise ValueError("a wechat template names its WeChat template: wechat.template_id")
            if self.wechat.kind == "template" and self.purpose == Purpose.MARKETING:
                raise ValueError(
                    "WeChat template messages are service notices: marketing is not allowed in them "
                    "(use purpose: transactional, or a subscribe message)"
                )
        for locale, content in self.locales.items():
            if self.channel == Channel.EMAIL and not (content.subject and (content.text or content.html)):
                raise ValueError(f"{locale}: an email needs a subject and a text or html body")
            if self.channel == Channel.SMS and not content.text and not (self.sms and self.sms.template_code):
                raise ValueError(f"{locale}: an SMS needs text (or sms.template_code for a China provider)")
        return self

    def allows(self, purpose: str) -> bool:
        """A transactional-only template refuses marketing requests."""
        return not (self.purpose == Purpose.TRANSACTIONAL and purpose == Purpose.MARKETING)

    def pick_locale(self, *wanted: str | None) -> str:
        """First exact match, then same language (``zh`` for ``zh-TW``), then the default."""
        for want in wanted:
            if want and want in self.locales:
                return want
        for want in wanted:
            if want:
                lang = want.split("-")[0].split("_")[0].lower()
                for have in self.locales:
                    if have.split("-")[0].lower() == lang:
                        return have
        return self.default_locale


class Rendered(BaseModel):
    locale: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    url: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape, auto_reload=False)


@lru_cache(maxsize=4096)
def _compile(source: str, autoescape: bool) -> Any:
    return _env(autoescape).from_string(source)


def _render_one(source: str | None, context: dict[str, Any], *, html: bool = False) -> str | None:
    if source is None:
        return None
    return str(_compile(source, html).render(context))


def render(template: Template, context: dict[str, Any], locale: str) -> Rendered:
    """Render one locale (raises jinja2's TemplateError, UndefinedError included)."""
    content = template.locales[locale]
    return Rendered(
        locale=locale,
        subject=_render_one(content.subject, context),
        text=_render_one(content.text, context),
        html=_render_one(content.html, context, html=True),
        url=_render_one(content.url, context),
        fields={k: _render_one(v, context) or "" for k, v in content.fields.items()},
    )


def sample_context(sample: dict[str, Any]) -> dict[str, Any]:
    given = sample.get("vars")
    variables: dict[str, Any] = given if isinstance(given, dict) else {}
    base: dict[str, Any] = {
        **variables,
        "traits": {},
        "profile": {},
        "event": {},
        "vars": {},
        "unsubscribe_url": "",
    }
    base.update(sample)
    return base


def validate(template: Template) -> list[str]:
    """Render every locale against the sample; the errors, one per locale that fails."""
    errors = []
    context = sample_context(template.sample)
    for locale in template.locales:
        try:
            render(template, context, locale)
        except TemplateError as exc:
            errors.append(f"{locale}: {exc.message or exc!s}")
    return errors


def check(template: Template) -> Template:
    """``template`` if it renders in every locale against its sample, else InvalidTemplate."""
    errors = validate(template)
    if errors:
        raise InvalidTemplate(errors)
    return template
