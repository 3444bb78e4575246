"""SES feedback → typed ``notification.delivered|opened|clicked|bounced|complained`` contracts, keyed
by the send's idempotency key, once per send and kind → the reports funnel per journey and channel.

SES events are the samples in ``events/ses/`` (SES's EventBridge event format, as documented), their
tags pointed at a send this test really made through notify (moto's SES)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from huiliu.bus import MemoryPublisher
from huiliu.contracts import (
    NotificationBounced,
    NotificationClicked,
    NotificationOpened,
    NotificationSent,
    parse_detail,
)
from huiliu.notify.channels.email import tag_value
from huiliu.notify.feedback import FeedbackService
from huiliu.notify.unsubscribe import signing_key
from huiliu.reports.document import build
from huiliu.reports.repository import ReportsRepository
from huiliu.reports.stage import ReportsStage
from huiliu_infra.local.provision import ROOT

from tests.functions.notify.notify_helpers import SALT, TENANT, Stage, client, create_table, request
from tests.lambda_support import LambdaContext, sqs_record

SAMPLES = ROOT / "events" / "ses"


_CTX = LambdaContext(function_name="feedback", memory_limit_in_mb=128, aws_request_id="r1")


def ses_sample(kind: str, *, tenant: str, profile: str, key: str, to: str, n: int = 0) -> dict[str, Any]:
    """The recorded SES event of ``kind`` pointed at one send (tags and recipient); ``n`` makes it a
    distinct SES event (another open of the same mail)."""
    event = copy.deepcopy(json.loads((SAMPLES / f"{kind.lower()}.json").read_text()))
    mail = event["detail"]["mail"]
    mail["destination"] = [to]
    mail["tags"].update(
        huiliu_tenant=[tag_value(tenant)], huiliu_profile=[tag_value(profile)], huiliu_key=[tag_value(key)]
    )
    detail = event["detail"]
    if "bounce" in detail:
        detail["bounce"]["bouncedRecipients"][0]["emailAddress"] = to
    if "complaint" in detail:
        detail["complaint"]["complainedRecipients"] = [{"emailAddress": to}]
    if "delivery" in detail:
        detail["delivery"]["recipients"] = [to]
    event["id"] = f"{event['id'][:-4]}{n:04d}"
    return event


@pytest.fixture
def reports(stage: Stage) -> ReportsStage:
    name = f"reports-{uuid.uuid4().hex[:6]}"
    create_table(stage.endpoint, name)
    return ReportsStage(ReportsRepository(name, client=client(stage.endpoint, "dynamodb")), now=lambda: 1)


def _sqs(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [sqs_record(e, f"m{i}", queue="FeedbackQueue", attempt=1) for i, e in enumerate(events)]
    }


def _bus(event: Any) -> str:
    return json.dumps({"detail-type": event.detail_type, "source": event.source, "detail": event.detail})


def test_recorded_samples_are_ses_eventbridge_events_for_every_kind() -> None:
    for kind, detail_type in {
        "Delivery": "Email Delivered",
        "Open": "Email Opened",
        "Click": "Email Clicked",
        "Bounce": "Email Bounced",
        "Complaint": "Email Complaint Received",
    }.items():
        sample = json.loads((SAMPLES / f"{kind.lower()}.json").read_text())
        assert (sample["source"], sample["detail-type"], sample["detail"]["eventType"]) == (
            "aws.ses",
            detail_type,
            kind,
        )
        assert set(sample["detail"]["mail"]) >= {"messageId", "destination", "tags", "timestamp"}


def test_feedback_becomes_one_typed_contract_per_send_and_kind_and_the_funnel_shows_real_rates(
    stage: Stage, feedback_app: tuple[Any, MemoryPublisher], reports: ReportsStage
) -> None:
    module, publisher = feedback_app
    service = stage.service()
    people = [f"fan{i}@example.com" for i in range(4)]
    sends = []
    for i, address in enumerate(people):
        profile = f"pf{i}"
        service.handle(stage.profile(profile_id=profile, email=address))
        req = request(f"j-winback@1#enr-{i}#s-mail", profile_id=profile).model_copy(
            update={"journey_id": "winback", "enrollment_id": f"enr-{i}", "step_id": "s-mail"}
        )
        (sent,) = stage.service().handle(req)
        assert isinstance(sent, NotificationSent)
        sends.append((profile, req.idempotency_key, address))
    assert len([m for m in stage.ses_sent() if set(m.destinations) & set(people)]) == 4

    def ses(kind: str, i: int, n: int = 0) -> dict[str, Any]:
        profile, key, to = sends[i]
        return ses_sample(kind, tenant=TENANT, profile=profile, key=key, to=to, n=n)

    # all 4 delivered; 3 opened (one of them twice, on two devices); 1 clicked; SES repeats a delivery
    batch = [ses("Delivery", i) for i in range(4)] + [ses("Open", i) for i in range(3)]
    batch += [ses("Open", 0, n=1), ses("Click", 0), ses("Delivery", 1, n=7)]
    result = module.handler(_sqs(*batch), _CTX)
    assert result == {"batchItemFailures": []}

    typed = [e for e in publisher.events if e.detail_type.startswith("notification.")]
    contracts = [parse_detail(e.detail_type, e.detail) for e in typed]
    assert sorted(type(c).__name__ for c in contracts) == sorted(
        ["NotificationDelivered"] * 4 + ["NotificationOpened"] * 3 + ["NotificationClicked"]
    )
    click = next(c for c in contracts if isinstance(c, NotificationClicked))
    assert (click.idempotency_key, click.journey_id, click.step_id, click.channel) == (
        sends[0][1],
        "winback",
        "s-mail",
        "email",
    )
    assert click.link == "https://shop.example/welcome?c=WELCOME10"
    assert all(e.source == "huiliu.feedback" for e in typed)
    # the canonical track events for identity still flow, one per SES event
    assert len(publisher.of_type("event.ingested")) == len(batch)

    # our own redelivery of the same SES event (the publish failed) republishes the same ids
    again = MemoryPublisher()
    module.configure(
        service=FeedbackService(stage.repo(), stage.clock.now), publisher=again, key=signing_key(SALT)
    )
    module.handler(_sqs(ses("Open", 1)), _CTX)
    (repeat,) = [e for e in again.events if e.detail_type == "notification.opened"]
    first = next(
        c for c in contracts if isinstance(c, NotificationOpened) and c.idempotency_key == sends[1][1]
    )
    assert repeat.detail["event_id"] == first.event_id

    requested = [
        json.dumps(
            {
                "detail-type": "notification.requested",
                "source": "huiliu.journeys",
                "detail": {"tenant_id": TENANT, "journey_id": "winback", "channel": "email",
                           "event_id": f"r{i}"},
            }
        )
        for i in range(4)
    ]  # fmt: skip
    sent_events = [
        json.dumps(
            {
                "detail-type": "notification.sent",
                "source": "huiliu.notify",
                "detail": {"tenant_id": TENANT, "journey_id": "winback", "channel": "email",
                           "event_id": f"s{i}"},
            }
        )
        for i in range(4)
    ]  # fmt: skip
    reports.handle(requested + sent_events + [_bus(e) for e in typed])
    (funnel,) = [f for f in build(TENANT, reports.repo.items(TENANT)).funnels if f.journey_id == "winback"]
    assert funnel.channel == "email"
    assert {k: funnel.counts[k] for k in ("requested", "sent", "delivered", "opened", "clicked")} == {
        "requested": 4,
        "sent": 4,
        "delivered": 4,
        "opened": 3,
        "clicked": 1,
    }
    assert funnel.rates["delivered_per_sent"] == 1.0
    assert funnel.rates["opened_per_delivered"] == 0.75
    assert funnel.rates["clicked_per_opened"] == round(1 / 3, 4)


def test_a_bounce_is_counted_once_and_mail_not_in_the_send_log_adds_nothing(
    stage: Stage, feedback_app: tuple[Any, MemoryPublisher]
) -> None:
    module, publisher = feedback_app
    stage.service().handle(stage.profile(profile_id="pb", email="bounce@example.com"))
    req = request("k-bounce", profile_id="pb")
    stage.service().handle(req)
    bounce = ses_sample("Bounce", tenant=TENANT, profile="pb", key="k-bounce", to="bounce@example.com")
    unknown = ses_sample("Delivery", tenant=TENANT, profile="pb", key="k-never-sent", to="bounce@example.com")
    module.handler(_sqs(bounce, bounce, unknown), _CTX)
    typed = [e for e in publisher.events if e.detail_type.startswith("notification.")]
    # the same SES event twice (as a redelivery would) republishes the same event id: reports dedupe it
    assert {e.detail["event_id"] for e in typed} == {typed[0].detail["event_id"]}
    bounced = typed[0]
    contract = parse_detail(bounced.detail_type, bounced.detail)
    assert isinstance(contract, NotificationBounced)
    assert (contract.bounce_type, contract.idempotency_key, contract.journey_id) == (
        "Permanent",
        "k-bounce",
        "j1",
    )
    assert not publisher.of_type("notification.delivered")
