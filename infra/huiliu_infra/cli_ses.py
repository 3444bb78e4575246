"""``huiliu ses check``: will SES feedback reach this stack?

SES publishes a configuration set's events (delivery, open, click, bounce, complaint) only to the
default EventBridge bus of the region that sent the mail (template parameter ``SesRegion``). The
stack's ``SesFeedbackRule`` listens on the default bus of the stack's own region. When the two
differ, a rule in the SES region must forward the events (``infra/ses-forwarder.yaml``). This
command checks, with the operator's AWS credentials:

- the stack's ``SesRegion`` against its region (same region: nothing to forward);
- otherwise, an ENABLED rule on the SES region's default bus whose pattern takes ``aws.ses`` events
  and whose target is the stack region's default bus, with a role to put them there;
- for each ``--configuration-set``: an enabled EventBridge event destination in the SES region
  publishing DELIVERY, OPEN, CLICK, BOUNCE and COMPLAINT.

Exit status 0 when feedback can arrive, 1 with every problem found otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

FEEDBACK_TYPES = ("DELIVERY", "OPEN", "CLICK", "BOUNCE", "COMPLAINT")
FORWARDER = "infra/ses-forwarder.yaml"


def default_bus_arn(region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/default"


def forwarding_problems(
    events: Any, *, stack_region: str, ses_region: str, account: str, partition: str = "aws"
) -> list[str]:
    """What keeps SES events of ``ses_region`` from the default bus of ``stack_region`` ([]: none).
    ``events`` is an EventBridge client in the SES region."""
    if stack_region == ses_region:
        return []
    target = default_bus_arn(stack_region, account, partition)
    names: list[str] = []
    token: str | None = None
    while True:
        page = events.list_rule_names_by_target(TargetArn=target, **({"NextToken": token} if token else {}))
        names += page.get("RuleNames", [])
        token = page.get("NextToken")
        if not token:
            break
    why: list[str] = []
    for name in names:
        rule = events.describe_rule(Name=name)
        pattern = json.loads(rule.get("EventPattern") or "{}")
        targets = events.list_targets_by_rule(Rule=name).get("Targets", [])
        mine = [t for t in targets if t.get("Arn") == target]
        if rule.get("State") != "ENABLED":
            why.append(f"rule {name} is {rule.get('State')}")
        elif "aws.ses" not in (pattern.get("source") or []):
            why.append(f"rule {name} does not take source aws.ses")
        elif not any(t.get("RoleArn") for t in mine):
            why.append(f"rule {name} has no role to put events on {target}")
        else:
            return []
    found = "; ".join(why) if why else "no rule on its default bus targets it"
    return [
        f"SES sends from {ses_region}, this stack is in {stack_region}: SES events stay on "
        f"{ses_region}'s default bus ({found}). Deploy {FORWARDER} in {ses_region} with "
        f"StackRegion={stack_region} (the stack's output SesFeedbackForwarding has the command)."
    ]


def destination_problems(sesv2: Any, configuration_set: str, ses_region: str) -> list[str]:
    """An enabled EventBridge destination publishing the feedback types, or what is missing."""
    try:
        found = sesv2.get_configuration_set_event_destinations(ConfigurationSetName=configuration_set)
    except Exception as exc:  # NotFoundException and the like: say what the API said
        return [f"configuration set {configuration_set} in {ses_region}: {exc}"]
    missing = set(FEEDBACK_TYPES)
    for destination in found.get("EventDestinations", []):
        if destination.get("Enabled") and destination.get("EventBridgeDestination"):
            missing -= {t.upper() for t in destination.get("MatchingEventTypes", [])}
    if not missing:
        return []
    return [
        f"configuration set {configuration_set} in {ses_region} publishes no "
        f"{', '.join(sorted(missing))} to EventBridge (add an enabled EventBridge event destination "
        "on the default bus with those event types)"
    ]


def _stack(stack: str) -> tuple[str, str, str, str]:
    """(stack region, SES region, account, partition) of a deployed stack."""
    from huiliu import aws

    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    _, partition, _, region, account, _ = described["StackId"].split(":", 5)
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    return region, params.get("SesRegion") or "ap-southeast-1", account, partition


def cmd_check(args: argparse.Namespace) -> int:
    from huiliu import aws

    stack = args.ses_stack or args.env_stack
    if stack:
        stack_region, ses_region, account, partition = _stack(stack)
    else:
        if not args.ses_region:
            print("give --stack NAME, or --ses-region (and optionally --region)", file=sys.stderr)
            return 2
        stack_region, ses_region, partition = args.region or aws.region(), args.ses_region, "aws"
        account = aws.client("sts").get_caller_identity()["Account"]
    problems = forwarding_problems(
        aws.client("events", region_name=ses_region),
        stack_region=stack_region,
        ses_region=ses_region,
        account=account,
        partition=partition,
    )
    sesv2 = aws.client("sesv2", region_name=ses_region) if args.configuration_set else None
    for name in args.configuration_set or []:
        problems += destination_problems(sesv2, name, ses_region)
    if problems:
        for problem in problems:
            print(f"✗ {problem}")
        return 1
    where = (
        "the stack's region" if stack_region == ses_region else f"{ses_region}, forwarded to {stack_region}"
    )
    print(f"✓ SES feedback events reach the stack (SES in {where})")
    if not args.configuration_set:
        print("  (pass --configuration-set NAME to check a tenant's notify.ses_configuration_set too)")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("ses", help="SES feedback wiring (events across regions)")
    actions = parser.add_subparsers(dest="ses_action", required=True)
    check = actions.add_parser("check", help="will SES delivery/open/click events reach this stack?")
    check.add_argument("--stack", dest="ses_stack", help="a deployed stack (reads SesRegion and its region)")
    check.add_argument("--ses-region", help="without --stack: the region SES sends from")
    check.add_argument("--region", help="without --stack: the stack's region (default: the current one)")
    check.add_argument(
        "--configuration-set", action="append", help="also check this SES configuration set (repeatable)"
    )
    check.set_defaults(func=cmd_check)
