"""SES event publishing, emulated for the local runtime: what a configuration set with an EventBridge
destination does in AWS.

moto's SES v2 records a sent mail but drops its configuration set and tags and publishes no
events. Here, every ``SendEmail`` that names a configuration set is remembered with its tags, and
the events SES would publish go onto the default bus of the SES region (``source: aws.ses``, SES's
EventBridge event format — see ``events/ses/``). When that is not the stack's region (the default:
SES in ap-southeast-1, the stack in ap-east-1), the local runtime deploys ``infra/ses-forwarder.yaml``
there as an operator would, and moto forwards the events to the stack's default bus, where the
template's ``SesFeedbackRule`` takes them to feedback:

- **Delivery** for every such mail, as soon as it is sent — except to SES's mailbox simulator
  addresses, which behave as in SES: ``bounce@simulator.amazonses.com`` → a permanent **Bounce**,
  ``complaint@simulator.amazonses.com`` → Delivery then **Complaint**.
- **Open** and **Click** only when someone reads the mail: nobody does locally, so
  :func:`engage` plays a recipient (the demo calls it, saying so) — it is never automatic.

Events are put into moto's EventBridge backend directly (SES's own publishing is not an API call
Huiliu makes or pays for, so the cost meter does not see it).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
SIMULATOR = {
    "bounce@simulator.amazonses.com": ("Bounce",),
    "complaint@simulator.amazonses.com": ("Delivery", "Complaint"),
}
DETAIL_TYPES = {
    "Delivery": "Email Delivered",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
}


@dataclass
class SentMail:
    message_id: str
    sender: str
    to: list[str]
    configuration_set: str
    tags: dict[str, list[str]]
    sent_at: datetime
    events: list[str] = field(default_factory=list)  # kinds published so far


class SesEventPublisher:
    def __init__(self, region: str, ses_region: str, now: Any = None) -> None:
        self.region = region  # where the stack's default-bus rule lives
        self.ses_region = ses_region
        self.now = now or (lambda: datetime.now(UTC))
        self.sent: dict[str, SentMail] = {}
        self.lock = threading.Lock()

    # -- what SES does on SendEmail ---------------------------------------------------------------
    def on_send(self, params: dict[str, Any], message_id: str) -> None:
        config_set = params.get("ConfigurationSetName")
        if not config_set:
            return  # SES publishes events only for mail sent with a configuration set
        destination = params.get("Destination") or {}
        to = [a for k in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(k) or []]
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [config_set],
            "ses:from-domain": [str(params.get("FromEmailAddress", "")).rsplit("@", 1)[-1]],
        }
        for tag in params.get("EmailTags") or []:
            tags[str(tag["Name"])] = [str(tag["Value"])]
        mail = SentMail(message_id, str(params.get("FromEmailAddress", "")), to, config_set, tags, self.now())
        with self.lock:
            self.sent[message_id] = mail
        kinds = next((SIMULATOR[a] for a in to if a in SIMULATOR), ("Delivery",))
        for kind in kinds:
            self.publish(mail, kind)

    # -- a recipient reading the mail ---------------------------------------------------------------
    def engage(self, message_id: str, kind: str, link: str = "https://shop.example/") -> bool:
        """The recipient opens the mail (``Open``) or clicks a link in it (``Click``)."""
        mail = self.sent.get(message_id)
        if mail is None or kind not in ("Open", "Click") or "Bounce" in mail.events:
            return False
        self.publish(mail, kind, link=link)
        return True

    def publish(self, mail: SentMail, kind: str, *, link: str | None = None) -> dict[str, Any]:
        from moto.events.models import events_backends

        when = self.now()
        stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        detail: dict[str, Any] = {"eventType": kind, "mail": self._mail(mail)}
        recipient = mail.to[0] if mail.to else ""
        if kind == "Delivery":
            detail["delivery"] = {
                "timestamp": stamp,
                "processingTimeMillis": 120,
                "recipients": mail.to,
                "smtpResponse": "250 2.0.0 OK (local SES emulation)",
                "reportingMTA": "local.amazonses.emulated",
            }
        elif kind == "Bounce":
            detail["bounce"] = {
                "feedbackId": uuid.uuid4().hex,
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": recipient, "action": "failed", "status": "5.1.1",
                     "diagnosticCode": "smtp; 550 5.1.1 user unknown (mailbox simulator)"}
                ],
                "timestamp": stamp,
            }  # fmt: skip
        elif kind == "Complaint":
            detail["complaint"] = {
                "feedbackId": uuid.uuid4().hex,
                "complainedRecipients": [{"emailAddress": recipient}],
                "timestamp": stamp,
                "complaintFeedbackType": "abuse",
            }
        elif kind == "Open":
            detail["open"] = {
                "ipAddress": "127.0.0.1",
                "timestamp": stamp,
                "userAgent": "huiliu-local-reader",
            }
        elif kind == "Click":
            detail["click"] = {
                "ipAddress": "127.0.0.1",
                "timestamp": stamp,
                "userAgent": "huiliu-local-reader",
                "link": link,
                "linkTags": {},
            }
        entry = {
            "Source": "aws.ses",
            "DetailType": DETAIL_TYPES[kind],
            "Detail": json.dumps(detail),
            "Resources": [
                f"arn:aws:ses:{self.ses_region}:{ACCOUNT}:configuration-set/{mail.configuration_set}"
            ],
            "Time": when.timestamp(),  # moto's backend takes epoch seconds; SQS gets EventBridge's ISO time
        }
        # SES publishes on the default bus of the region that sent the mail; when that is not the
        # stack's region, the forwarder (infra/ses-forwarder.yaml, deployed by notify_sink) brings
        # the events to the stack's default bus, as in AWS
        events_backends[ACCOUNT][self.ses_region].put_events([entry])
        mail.events.append(kind)
        return detail

    def _mail(self, mail: SentMail) -> dict[str, Any]:
        return {
            "timestamp": mail.sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": mail.sender,
            "sendingAccountId": ACCOUNT,
            "messageId": mail.message_id,
            "destination": mail.to,
            "headersTruncated": False,
            "tags": mail.tags,
        }


_active: dict[str, SesEventPublisher] = {}
_installed: dict[str, Any] = {}


def install(publisher: SesEventPublisher) -> SesEventPublisher:
    """Make the embedded moto's SES v2 ``SendEmail`` tell ``publisher`` (one active per process)."""
    from moto.sesv2.responses import SESV2Response

    _active["publisher"] = publisher
    if "send_email" not in _installed:
        original = SESV2Response.send_email
        _installed["send_email"] = original

        def send_email(self: Any) -> str:
            answer = original(self)
            current = _active.get("publisher")
            if current is not None:
                try:
                    current.on_send(json.loads(self.body), json.loads(answer)["MessageId"])
                except Exception:  # the emulation must never break a send
                    import logging

                    logging.getLogger("huiliu.local").exception("SES event emulation failed")
            return answer

        SESV2Response.send_email = send_email  # type: ignore[method-assign]
    return publisher


def uninstall() -> None:
    _active.pop("publisher", None)


def active() -> SesEventPublisher | None:
    return _active.get("publisher")


def engage(kind: str, message_ids: list[str], link: str = "https://shop.example/") -> int:
    """Recipients open or click these mails (the demo's readers); returns how many events went out."""
    publisher = active()
    if publisher is None:
        return 0
    return sum(publisher.engage(m, kind, link) for m in message_ids)
