"""SMS: AWS (SNS ``Publish`` to a phone number, as the emulator records it) or Alibaba Cloud SMS
(``SendSms``, RPC API with its HMAC-SHA1 signature, base URL configurable), chosen per tenant.

China requires pre-approved templates: Aliyun sends ``template_code`` + ``TemplateParam`` (the
template's rendered ``fields``) under the tenant's ``sign_name``; the rendered text is not sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from huiliu.notify.channels.base import ErrorKind, OutboundMessage, ProviderError, SendResult, http_json

SNS_TRANSIENT = {"ThrottledException", "Throttling", "ThrottlingException", "KMSThrottlingException"}


class SnsSmsSender:
    provider = "sns"

    def __init__(self, client: Callable[[], Any]) -> None:
        self.client = client

    def idempotent(self, message: OutboundMessage) -> bool:
        return False

    def send(self, message: OutboundMessage) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        sms_type = "Transactional" if message.purpose == "transactional" else "Promotional"
        try:
            reply = self.client().publish(
                PhoneNumber=message.to,
                Message=message.text or "",
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type},
                },
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            if code in SNS_TRANSIENT:
                raise ProviderError("transient", code, str(exc)) from exc
            kind: ErrorKind = "ambiguous" if status >= 500 else "permanent"
            raise ProviderError(kind, code or f"http_{status}", str(exc)) from exc
        except ReadTimeoutError as exc:
            raise ProviderError("ambiguous", "timeout", str(exc)) from exc
        except BotoCoreError as exc:
            raise ProviderError("transient", "connect", str(exc)) from exc
        return SendResult(self.provider, reply["MessageId"])


def _pct(value: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved kept, everything else %XX (space → %20)."""
    return quote(value, safe="~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """RPC signature v1: HMAC-SHA1 over ``METHOD&%2F&pct(sorted canonical query)``, key ``secret&``."""
    canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_pct('/')}&{_pct(canonical)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


# Aliyun SendSms codes: throttling is transient (isv.BUSINESS_LIMIT_CONTROL is a per-number
# minute/hour/day limit), a day quota is a quota, the rest are permanent.
ALIYUN_TRANSIENT = {"Throttling.User", "isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "Throttling"}
ALIYUN_QUOTA = {"isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH"}


class AliyunSmsSender:
    provider = "aliyun"

    def __init__(
        self,
        base_url: str,
        credentials_for: Callable[[str], tuple[str, str]],
        now: Callable[[], datetime],
        *,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.credentials_for = credentials_for
        self.now = now
        self.timeout = timeout

    def idempotent(self, message: OutboundMessage) -> bool:
        return False

    def request_params(self, message: OutboundMessage, access_key_id: str, secret: str) -> dict[str, str]:
        phone = message.to
        phone = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
        params = {
            "AccessKeyId": access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32],
            "PhoneNumbers": phone,
            "RegionId": "cn-hangzhou",
            "SignName": message.sign_name or "",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": message.template_code or "",
            "TemplateParam": json.dumps(message.fields, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, secret)
        return params

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.template_code:
            raise ProviderError("permanent", "no_template_code", "Aliyun sends approved templates only")
        key_id, secret = self.credentials_for(message.tenant_id)
        params = self.request_params(message, key_id, secret)
        query = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in params.items())
        status, reply = http_json("GET", f"{self.base_url}?{query}", timeout=self.timeout)
        code = reply.get("Code") if isinstance(reply, dict) else None
        if status == 200 and code == "OK":
            return SendResult(self.provider, str(reply.get("BizId") or reply.get("RequestId")))
        code = code or f"http_{status}"
        text = reply.get("Message", "") if isinstance(reply, dict) else str(reply)[:200]
        if code in ALIYUN_TRANSIENT or status == 429:
            raise ProviderError("transient", code, text)
        if code in ALIYUN_QUOTA:
            raise ProviderError("quota", code, text)
        if status >= 500:
            raise ProviderError("ambiguous", code, text)
        raise ProviderError("permanent", code, text)
