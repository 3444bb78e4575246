"""SES feedback when SES sends from another region than the stack's.

SES publishes configuration-set events only to the default bus of the region that sent the mail
(``SesRegion``, default ap-southeast-1: SES is not in ap-east-1). On moto, with the whole template
provisioned in ap-east-1: without the forwarder nothing reaches FeedbackQueue and
``huiliu ses check`` says so; with ``infra/ses-forwarder.yaml`` deployed (moto CloudFormation) in
ap-southeast-1, Huiliu's SES events arrive in FeedbackQueue, other mail's do not, and the check
passes."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from huiliu_infra.cfn import load_template
from huiliu_infra.cli import main
from huiliu_infra.cli_ses import destination_problems, forwarding_problems

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "events" / "ses").glob("*.json"))
SES_REGION, STACK_REGION, ACCOUNT = "ap-southeast-1", "ap-east-1", "123456789012"


def _put_ses_events(details: list[tuple[str, dict[str, Any]]]) -> None:
    from huiliu import aws

    events = aws.client("events", region_name=SES_REGION)
    entries = [{"Source": "aws.ses", "DetailType": t, "Detail": json.dumps(d)} for t, d in details]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0


def _feedback_queue(deployed: Any) -> list[dict[str, Any]]:
    from huiliu import aws

    sqs, url, out = aws.client("sqs"), deployed.queues["FeedbackQueue"].url, []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def _deploy_forwarder() -> None:
    from huiliu import aws

    aws.client("cloudformation", region_name=SES_REGION).create_stack(
        StackName="huiliu-ses-forwarder",
        TemplateBody=(ROOT / "infra" / "ses-forwarder.yaml").read_text(),
        Parameters=[{"ParameterKey": "StackRegion", "ParameterValue": STACK_REGION}],
        Capabilities=["CAPABILITY_IAM"],
    )


def _samples() -> list[tuple[str, dict[str, Any]]]:
    return [(e["detail-type"], e["detail"]) for e in (json.loads(p.read_text()) for p in SAMPLES)]


def _check(*extra: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ses", "check", "--ses-region", SES_REGION, "--region", STACK_REGION, *extra])
    return code, out.getvalue()


def test_without_the_forwarder_ses_events_stay_in_their_region_and_the_check_says_so(deployed: Any) -> None:
    _put_ses_events(_samples())

    assert _feedback_queue(deployed) == []
    code, out = _check()
    assert code == 1
    assert "Deploy infra/ses-forwarder.yaml in ap-southeast-1 with StackRegion=ap-east-1" in out


def test_in_the_stack_region_only_huiliu_mail_feedback_kinds_reach_the_queue(deployed: Any) -> None:
    from huiliu import aws

    samples = _samples()
    untagged = json.loads(json.dumps(samples[0][1]))
    untagged["mail"]["tags"] = {"ses:configuration-set": ["another-app"]}
    send = json.loads(json.dumps(samples[0][1]))
    send["eventType"] = "Send"
    entries = [*samples, ("Email Delivered", untagged), ("Email Sent", send)]
    events = aws.client("events", region_name=STACK_REGION)  # SES in the stack's own region
    events.put_events(
        Entries=[{"Source": "aws.ses", "DetailType": t, "Detail": json.dumps(d)} for t, d in entries]
    )

    arrived = _feedback_queue(deployed)
    assert sorted(m["detail-type"] for m in arrived) == sorted(t for t, _ in samples)


def test_with_the_forwarder_huiliu_ses_events_reach_feedback_and_other_mail_does_not(deployed: Any) -> None:
    _deploy_forwarder()
    samples = _samples()
    untagged = json.loads(json.dumps(samples[0][1]))
    untagged["mail"]["tags"] = {"ses:configuration-set": ["another-app"]}
    send = json.loads(json.dumps(samples[0][1]))
    send["eventType"] = "Send"

    _put_ses_events([*samples, ("Email Delivered", untagged), ("Email Sent", send)])

    arrived = _feedback_queue(deployed)
    assert sorted(m["detail-type"] for m in arrived) == sorted(t for t, _ in samples)
    assert all(m["source"] == "aws.ses" and m["detail"]["mail"]["tags"]["huiliu_tenant"] for m in arrived)
    code, out = _check()
    assert code == 0
    assert "reach the stack (SES in ap-southeast-1, forwarded to ap-east-1)" in out


def test_a_disabled_forwarder_is_reported(deployed: Any) -> None:
    from huiliu import aws

    _deploy_forwarder()
    events = aws.client("events", region_name=SES_REGION)
    [name] = events.list_rule_names_by_target(
        TargetArn=f"arn:aws:events:{STACK_REGION}:{ACCOUNT}:event-bus/default"
    )["RuleNames"]
    events.disable_rule(Name=name)

    [problem] = forwarding_problems(events, stack_region=STACK_REGION, ses_region=SES_REGION, account=ACCOUNT)

    assert f"rule {name} is DISABLED" in problem
    assert forwarding_problems(events, stack_region=SES_REGION, ses_region=SES_REGION, account=ACCOUNT) == []


class _SesV2:
    def __init__(self, destinations: list[dict[str, Any]] | None) -> None:
        self.destinations = destinations

    def get_configuration_set_event_destinations(self, ConfigurationSetName: str) -> dict[str, Any]:
        if self.destinations is None:
            raise LookupError(f"configuration set {ConfigurationSetName} does not exist")
        return {"EventDestinations": self.destinations}


@pytest.mark.parametrize(
    ("destinations", "problem"),
    [
        (
            [
                {
                    "Enabled": True,
                    "MatchingEventTypes": ["SEND", "DELIVERY", "OPEN", "CLICK", "BOUNCE", "COMPLAINT"],
                    "EventBridgeDestination": {"EventBusArn": "arn:aws:events:x:1:event-bus/default"},
                }
            ],
            None,
        ),
        (
            [
                {
                    "Enabled": True,
                    "MatchingEventTypes": ["DELIVERY", "BOUNCE"],
                    "EventBridgeDestination": {"EventBusArn": "arn:aws:events:x:1:event-bus/default"},
                },
                {"Enabled": True, "MatchingEventTypes": ["OPEN", "CLICK", "COMPLAINT"], "SnsDestination": {}},
            ],
            "publishes no CLICK, COMPLAINT, OPEN to EventBridge",
        ),
        (None, "does not exist"),
    ],
)
def test_the_configuration_set_must_publish_the_feedback_types_to_eventbridge(
    destinations: list[dict[str, Any]] | None, problem: str | None
) -> None:
    found = destination_problems(_SesV2(destinations), "huiliu-events", SES_REGION)

    if problem is None:
        assert found == []
    else:
        [text] = found
        assert problem in text


def test_the_stack_passes_its_ses_region_to_notify_and_says_when_forwarding_is_needed() -> None:
    template = load_template(ROOT / "template.yaml")
    forwarder = load_template(ROOT / "infra" / "ses-forwarder.yaml")

    notify_env = template["Resources"]["NotifyFunction"]["Properties"]["Environment"]["Variables"]
    assert notify_env["SES_REGION"] == {"Ref": "SesRegion"}
    assert template["Parameters"]["SesRegion"]["Default"] == "ap-southeast-1"
    output = template["Outputs"]["SesFeedbackForwarding"]["Value"]["Fn::If"]
    assert output[0] == "SesInOtherRegion"
    assert "infra/ses-forwarder.yaml" in output[1]["Fn::Sub"]
    # least privilege: the forwarder's role may only put events on the stack region's default bus
    [statement] = forwarder["Resources"]["ForwardSesFeedbackRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${StackRegion}:${AWS::AccountId}:event-bus/default"
    }
