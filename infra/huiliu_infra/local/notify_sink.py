"""What the local runtime adds for notify: fake providers on localhost (WeChat API, Aliyun SMS,
webhook receiver) that record every message "sent", the demo tenant's sender settings, and one
list of everything sent — SES v2 and SNS SMS as the embedded moto records them, the rest from the
sink. ``huiliu demo`` prints it; ``GET /_huiliu/sent`` returns it.
"""

from __future__ import annotations

import base64
import email
import json
import os
import secrets as pysecrets
from email.header import decode_header, make_header
from typing import Any

from huiliu.notify.fakes import FakeProviders

DEMO_SENDER_DOMAIN = "demo.huiliu.local"
DEMO_CONFIGURATION_SET = "huiliu-local-events"
ACCOUNT = "123456789012"


def start(runtime: Any) -> FakeProviders:
    from huiliu import aws
    from huiliu.notify.wiring import NotifyEnv
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantRepository, secret_name

    aliyun_key, aliyun_secret = "LTAI-local-" + pysecrets.token_hex(4), pysecrets.token_hex(16)
    sink = FakeProviders(aliyun_secrets={aliyun_key: aliyun_secret}).start()
    os.environ["WECHAT_API_URL"] = f"{sink.url}/wechat"
    os.environ["ALIYUN_SMS_URL"] = f"{sink.url}/aliyun/"
    for spec in runtime.deployment.functions.values():
        if "PUBLIC_API_URL" in spec.env:  # unsubscribe links point at this runtime's HTTP port
            spec.env["PUBLIC_API_URL"] = runtime.api_url
    settings = get_settings()
    ses = aws.client("sesv2", region_name=NotifyEnv.from_env().ses_region)
    ses.create_email_identity(EmailIdentity=DEMO_SENDER_DOMAIN)
    ses.create_configuration_set(ConfigurationSetName=DEMO_CONFIGURATION_SET)
    if runtime._moto is not None:  # embedded moto: SES event publishing emulated (local/ses_events.py)
        from huiliu_infra.local import ses_events

        ses_region = NotifyEnv.from_env().ses_region
        if ses_region != runtime.deployment.region:
            # as in AWS: SES's events land on its own region's default bus; the forwarder the
            # stack's output SesFeedbackForwarding asks for takes them to this region's
            deploy_ses_forwarder(ses_region, runtime.deployment.region)
        ses_events.install(
            ses_events.SesEventPublisher(
                runtime.deployment.region, NotifyEnv.from_env().ses_region, runtime.clock.now
            )
        )
        stop = sink.stop

        def stop_all() -> None:
            ses_events.uninstall()
            stop()

        sink.stop = stop_all  # type: ignore[method-assign]
    repo = TenantRepository(settings.tenants_table)
    tenant = repo.get_settings(runtime.tenant["tenant_id"])
    if tenant is not None:
        tenant.notify.email_from = f"hello@{DEMO_SENDER_DOMAIN}"
        tenant.notify.email_from_name = tenant.name or "Demo shop"
        tenant.notify.ses_configuration_set = DEMO_CONFIGURATION_SET
        tenant.notify.webhook_url = f"{sink.url}/webhook/crm"
        tenant.notify.sms_sign_name = "汇流"
        repo.put_settings(tenant)
    client = aws.client("secretsmanager")
    name = secret_name(settings.secrets_prefix, runtime.tenant["tenant_id"])
    stored = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    stored.setdefault("wechat", {})["app_secret"] = pysecrets.token_hex(16)
    stored["notify"] = {
        "aliyun_access_key_id": aliyun_key,
        "aliyun_access_key_secret": aliyun_secret,
        "webhook_secret": "whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode(),
    }
    client.put_secret_value(SecretId=name, SecretString=json.dumps(stored))
    return sink


def deploy_ses_forwarder(ses_region: str, stack_region: str) -> None:
    """infra/ses-forwarder.yaml through (moto's) CloudFormation in the SES region, once."""
    from huiliu import aws

    from huiliu_infra.local.provision import ROOT

    cloudformation = aws.client("cloudformation", region_name=ses_region)
    name = "huiliu-local-ses-forwarder"
    try:
        cloudformation.describe_stacks(StackName=name)
        return
    except Exception:  # noqa: S110 - not deployed yet
        pass
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=(ROOT / "infra" / "ses-forwarder.yaml").read_text(encoding="utf-8"),
        Parameters=[{"ParameterKey": "StackRegion", "ParameterValue": stack_region}],
        Capabilities=["CAPABILITY_IAM"],
    )


def _decoded(value: str | None) -> str:
    return str(make_header(decode_header(value))) if value else ""


def sent(runtime: Any) -> list[dict[str, Any]]:
    """Every message sent, oldest first: channel, provider, to, and a one-line summary."""
    rows: list[dict[str, Any]] = []
    if runtime._moto is not None:  # embedded moto: its backends are in this process
        from huiliu.notify.wiring import NotifyEnv
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        region = runtime.deployment.region
        for message in ses_backends[ACCOUNT][NotifyEnv.from_env().ses_region].sent_messages:
            raw = getattr(message, "raw_data", None)
            if raw is None:
                continue
            mail = email.message_from_string(raw)
            rows.append(
                {
                    "channel": "email",
                    "provider": "ses",
                    "to": ", ".join(dict.fromkeys(message.destinations)),
                    "summary": _decoded(mail["Subject"]),
                    "one_click_unsubscribe": bool(mail["List-Unsubscribe-Post"]),
                }
            )
        for phone, text in sns_backends[ACCOUNT][region].sms_messages.values():
            rows.append({"channel": "sms", "provider": "sns", "to": phone, "summary": text})
    sink: FakeProviders | None = runtime.notify_sink
    for item in sink.sent if sink else []:
        if item.kind.startswith("wechat"):
            data = item.body.get("data", {})
            summary = f"{item.body.get('template_id')}: " + ", ".join(
                f"{k}={v['value']}" for k, v in data.items()
            )
            rows.append({"channel": "wechat", "provider": item.kind, "to": item.to, "summary": summary})
        elif item.kind == "aliyun-sms":
            body = item.body
            summary = f"{body.get('SignName')} {body.get('TemplateCode')} {body.get('TemplateParam')}"
            rows.append({"channel": "sms", "provider": "aliyun", "to": item.to, "summary": summary})
        else:
            summary = (
                f"{item.headers.get('webhook-id')} signed {item.headers.get('webhook-signature', '')[:12]}…"
            )
            rows.append({"channel": "webhook", "provider": "webhook", "to": item.to, "summary": summary})
    return rows
