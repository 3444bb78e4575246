"""Email through SES v2 ``SendEmail`` with Raw content, so the one-click unsubscribe headers
(RFC 8058: ``List-Unsubscribe`` + ``List-Unsubscribe-Post``) are on every marketing mail, with a
configuration set (delivery/bounce/complaint/open/click events → EventBridge → feedback) and tags
that let feedback find the send again (tenant, profile, idempotency key).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from huiliu.notify.channels.base import OutboundMessage, ProviderError, SendResult

TRANSIENT_CODES = {
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
    "SendingPausedException",
}
AMBIGUOUS_CODES = {"InternalFailure", "ServiceUnavailable", "InternalServerError"}


def tag_value(text: str) -> str:
    """SES tag values allow ``[A-Za-z0-9_\\-.@]``: anything else travels base64url-encoded."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def untag_value(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


# RFC 5322 allows 998 characters a line: a long unsubscribe URL stays one unencoded token.
MIME_POLICY = policy.SMTP.clone(max_line_length=998)


def build_mime(message: OutboundMessage, sender: str) -> bytes:
    mail = EmailMessage(policy=MIME_POLICY)
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject or ""
    mail["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">"))
    if message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(message.text or "")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail.as_bytes()


class SesEmailSender:
    provider = "ses"

    def __init__(
        self, client: Callable[[], Any], sender_for: Callable[[str], tuple[str, str | None, str | None]]
    ):
        """``sender_for(tenant) -> (from address, from name, configuration set)``."""
        self.client = client
        self.sender_for = sender_for

    def idempotent(self, message: OutboundMessage) -> bool:
        return False  # SendEmail has no idempotency token

    def send(self, message: OutboundMessage) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

        address, name, config_set = self.sender_for(message.tenant_id)
        sender = formataddr((name, address)) if name else address
        kwargs: dict[str, Any] = {
            "FromEmailAddress": address,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Raw": {"Data": build_mime(message, sender)}},
            # SES tag values stop at 256 characters: a longer one is left out (feedback then has
            # the tenant and profile, not the key).
            "EmailTags": [
                {"Name": f"huiliu_{k}", "Value": tag_value(v)}
                for k, v in message.tags.items()
                if len(tag_value(v)) <= 256
            ],
        }
        if config_set:
            kwargs["ConfigurationSetName"] = config_set
        try:
            reply = self.client().send_email(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            if code in TRANSIENT_CODES:
                raise ProviderError("transient", code, str(exc)) from exc
            if code in AMBIGUOUS_CODES or status >= 500:
                raise ProviderError("ambiguous", code or f"http_{status}", str(exc)) from exc
            raise ProviderError("permanent", code or f"http_{status}", str(exc)) from exc
        except ReadTimeoutError as exc:
            raise ProviderError("ambiguous", "timeout", str(exc)) from exc
        except (ConnectionError, BotoCoreError) as exc:
            raise ProviderError("transient", "connect", str(exc)) from exc
        return SendResult(self.provider, reply["MessageId"])
