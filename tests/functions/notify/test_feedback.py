"""Feedback: one-click unsubscribe leaves only transactional mail; bounces and complaints suppress
the address; SES events come back in as canonical events for identity."""

from __future__ import annotations

import email
import re
from typing import Any

import pytest
from huiliu.contracts import ConsentEntry, NotificationSent, NotificationSuppressed
from huiliu.notify.channels.email import tag_value
from huiliu.notify.feedback import FeedbackService
from huiliu_infra.local.lambda_runtime import http_api_event
from huiliu_infra.local.provision import RouteSpec

from tests.functions.notify.notify_helpers import TENANT, Stage, request
from tests.lambda_support import LambdaContext

_CTX = LambdaContext(function_name="feedback", memory_limit_in_mb=128, aws_request_id="r1")


def _http(module: Any, method: str, url: str, body: bytes = b"") -> dict[str, Any]:
    path, _, query = url.partition("?")
    path = path.removeprefix("https://api.example")
    route = RouteSpec(method, "/v1/unsubscribe/{tenant}", "FeedbackFunction")
    event = http_api_event(
        route=route,
        params={"tenant": path.rsplit("/", 1)[-1]},
        method=method,
        path=path,
        query=query,
        headers=[("content-type", "application/x-www-form-urlencoded")],
        body=body,
        source_ip="127.0.0.1",
    )
    return module.handler(event, _CTX)


def _unsubscribe_link(stage: Stage, address: str) -> str:
    raw = [m.raw_data for m in stage.ses_sent() if address in m.destinations][-1]
    header = email.message_from_string(raw)["List-Unsubscribe"]
    found = re.match(r"<(.+)>", header)
    assert found
    return found.group(1)


def test_an_unsubscribed_address_gets_only_transactional_mail(stage: Stage, feedback_app: Any) -> None:
    module, publisher = feedback_app
    service = stage.service()
    service.handle(stage.profile(email="unsub@example.com"))
    assert isinstance(service.handle(request("m1"))[0], NotificationSent)
    link = _unsubscribe_link(stage, "unsub@example.com")

    page = _http(module, "GET", link)  # a scanner following the link changes nothing
    assert page["statusCode"] == 200
    assert "<form" in page["body"]
    assert publisher.events == []
    done = _http(module, "POST", link, b"List-Unsubscribe=One-Click")
    assert done["statusCode"] == 200

    marketing = stage.service().handle(request("m2"))
    receipt = stage.service().handle(request("t1", template_id="receipt", purpose="transactional"))
    assert [type(e) for e in marketing] == [NotificationSuppressed]
    assert marketing[0].reason == "no_consent:email"
    assert [type(e) for e in receipt] == [NotificationSent]
    # identity hears it as withdrawn consent (an identify from an internal source)
    (ingested,) = publisher.of_type("event.ingested")
    assert ingested.source == "huiliu.feedback"
    assert ingested.detail["context"]["consent"] == {"email": False}
    assert ingested.detail["identifiers"] == [{"type": "email", "value": "unsub@example.com"}]

    # A snapshot from before the unsubscribe (consent still granted, older time) does not undo it …
    stage.service().handle(stage.profile(email="unsub@example.com", version=2))
    assert isinstance(stage.service().handle(request("m3"))[0], NotificationSuppressed)
    # … a newer grant does (the person subscribed again).
    regrant = stage.profile(email="unsub@example.com", version=3)
    regrant.profile.consent["email"] = ConsentEntry(granted=True, at="2099-01-01T00:00:00+00:00")
    stage.service().handle(regrant)
    assert isinstance(stage.service().handle(request("m4"))[0], NotificationSent)


def test_a_forged_or_foreign_tenant_link_is_refused(stage: Stage, feedback_app: Any) -> None:
    module, publisher = feedback_app
    service = stage.service()
    service.handle(stage.profile(email="forge@example.com"))
    service.handle(request("f1"))
    link = _unsubscribe_link(stage, "forge@example.com")
    assert _http(module, "POST", link[:-3] + "AAA")["statusCode"] == 400
    assert _http(module, "POST", link.replace("/acme?", "/other?"))["statusCode"] == 400
    assert publisher.events == []


def _ses_event(kind: str, address: str, **detail: Any) -> dict[str, Any]:
    tags = {
        "huiliu_tenant": [tag_value(TENANT)],
        "huiliu_profile": [tag_value("p1")],
        "huiliu_key": [tag_value("k")],
    }
    return {
        "source": "aws.ses",
        "detail-type": f"Email {kind}",
        "time": "2026-03-02T02:05:00Z",
        "detail": {
            "eventType": kind,
            "mail": {"messageId": "ses-1", "destination": [address], "tags": tags},
            **detail,
        },
    }


def test_a_permanent_bounce_suppresses_everything_to_the_address_and_comes_back_as_an_event(
    stage: Stage,
) -> None:
    feedback = FeedbackService(stage.repo(), stage.clock.now)
    service = stage.service()
    service.handle(stage.profile(email="gone@example.com"))
    bounce = {
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "gone@example.com"}],
        }
    }
    out = feedback.handle_ses(_ses_event("Bounce", "gone@example.com", **bounce))
    assert [e.detail["event"] for e in out] == ["Email Bounced"]
    assert out[0].detail["properties"]["bounce_type"] == "Permanent"

    receipt = stage.service().handle(request("b1", template_id="receipt", purpose="transactional"))
    assert [type(e) for e in receipt] == [NotificationSuppressed]
    assert receipt[0].reason == "suppressed"


def test_a_transient_bounce_does_not_suppress(stage: Stage) -> None:
    feedback = FeedbackService(stage.repo(), stage.clock.now)
    stage.service().handle(stage.profile(email="full@example.com"))
    feedback.handle_ses(
        _ses_event(
            "Bounce",
            "full@example.com",
            bounce={"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "full@example.com"}]},
        )
    )
    assert isinstance(stage.service().handle(request("tb1"))[0], NotificationSent)


@pytest.mark.parametrize(
    ("kind", "name", "extra"),
    [
        ("Delivery", "Email Delivered", {}),
        ("Open", "Email Opened", {}),
        ("Click", "Email Link Clicked", {"click": {"link": "https://shop.example/x"}}),
    ],
)
def test_deliveries_opens_and_clicks_come_back_as_canonical_events(
    stage: Stage, kind: str, name: str, extra: dict[str, Any]
) -> None:
    out = FeedbackService(stage.repo(), stage.clock.now).handle_ses(
        _ses_event(kind, "li@example.com", **extra)
    )
    (event,) = out
    assert (event.source, event.detail_type, event.detail["event"]) == (
        "huiliu.feedback",
        "event.ingested",
        name,
    )
    again = FeedbackService(stage.repo(), stage.clock.now).handle_ses(
        _ses_event(kind, "li@example.com", **extra)
    )
    assert again[0].detail["message_id"] == event.detail["message_id"]  # identity dedupes a redelivery


def test_mail_not_sent_by_huiliu_is_ignored(stage: Stage) -> None:
    event = _ses_event("Delivery", "x@example.com")
    event["detail"]["mail"]["tags"] = {}
    assert FeedbackService(stage.repo(), stage.clock.now).handle_ses(event) == []
