"""Provision what template.yaml declares on an AWS endpoint (moto server, LocalStack or mock_aws).

Derived from the template through aws-sam-translator: the translated resources of the types the
template uses are created (tables, queues, bus, rules → queue targets, SNS topics and their SQS
subscriptions with raw delivery and filter policies, bucket + notifications);
functions, event source mappings, HTTP routes and schedules are recorded for the in-process
runtime. Nothing here is a second, hand-kept list of resources.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huiliu_infra import ROOT, cfn
from huiliu_infra.local import support
from huiliu_infra.local.firehose import StreamSpec, stream_specs

TEMPLATE = ROOT / "template.yaml"
# Function env keys that differ per function are applied per invocation, not process-wide.
PER_FUNCTION_KEYS = {"POWERTOOLS_SERVICE_NAME"}


@dataclass
class FunctionSpec:
    logical: str
    name: str
    code_dir: str
    handler: str
    timeout: int
    memory: int
    env: dict[str, str]


@dataclass
class QueueSpec:
    logical: str
    name: str
    url: str
    arn: str
    visibility_timeout: int
    max_receive_count: int | None = None
    dlq: str | None = None


@dataclass
class MappingSpec:
    logical: str
    function: str
    queue: str
    batch_size: int
    window_seconds: int
    report_failures: bool


@dataclass
class RouteSpec:
    method: str  # upper case, or ANY
    path: str  # API Gateway route path, e.g. /v1/hooks/{connector}/{tenant}
    function: str
    # "AWS_IAM" for SigV4 routes (/ops): the local runtime does not emulate SigV4 and refuses them
    authorizer: str | None = None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class ScheduleSpec:
    logical: str
    expression: str
    function: str
    seconds: int
    # The target's Input (JSON text) as in the template; ``<aws.scheduler.scheduled-time>`` is
    # replaced by the tick's time when it fires, as EventBridge Scheduler does.
    input: str | None = None


@dataclass
class Deployment:
    stack: str
    region: str
    endpoint: str | None
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    mappings: list[MappingSpec] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    # Rule targets that are log groups in AWS (the catch-all debug rule) become local "tap" queues;
    # each SNS topic gets a local tap subscription too (no filter), so `huiliu local` / the demo
    # show every event whichever wire it took. No consumer reads a tap.
    taps: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # logical -> topic ARN
    subscriptions: dict[str, str] = field(default_factory=dict)  # logical -> subscription ARN
    # Firehose delivery streams (served by the runtime's own emulator, delivering into the buckets).
    streams: dict[str, StreamSpec] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def shared_env(self) -> dict[str, str]:
        """Environment common to every function (set process-wide for in-process handlers)."""
        env: dict[str, str] = {}
        for fn in self.functions.values():
            for key, value in fn.env.items():
                if key not in PER_FUNCTION_KEYS:
                    env[key] = value
        return env

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"local runtime supports rate() schedules only, got {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def _logical_from_arn_sub(uri: Any) -> str:
    text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
    match = re.search(r"\$\{(\w+)\.Arn\}", text)
    if not match:
        raise ValueError(f"cannot find the function behind integration uri {uri!r}")
    return match.group(1)


def _physical(stack: str, logical: str, limit: int = 80) -> str:
    return f"{stack}-{logical}"[:limit]


LOCAL_HASH_SALT = "huiliu-local-only-salt-not-a-secret-0000"


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def provision(
    *,
    stack: str = "huiliu-local",
    stage: str = "local",
    region: str = "ap-east-1",
    endpoint: str | None = None,
    template_path: Path = TEMPLATE,
    parameters: dict[str, str] | None = None,
    clients: Any | None = None,
) -> Deployment:
    """Create the template's resources on the current endpoint and describe the rest."""
    if clients is None:
        from huiliu import aws

        clients = aws.client
    # HashSalt has no default in the template (a deploy must give its own, >= 32 characters);
    # the local runtime's tables are throw-away, so a fixed local salt is fine here.
    params = {"Stage": stage, "HashSalt": LOCAL_HASH_SALT, **(parameters or {})}
    template = cfn.load_template(template_path)
    translated = cfn.translate(template, params, region)
    support.check(translated)  # refuse what the runtime does not model, before creating anything
    resources: dict[str, Any] = translated["Resources"]
    names = cfn.Names(region=region, stack=stack)
    resolver = cfn.Resolver(translated, names, params)
    deployment = Deployment(stack=stack, region=region, endpoint=endpoint)
    acct = cfn.ACCOUNT_ID

    def of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (logical, res)
            for logical, res in resources.items()
            if res["Type"] == kind and cfn.resource_enabled(res, resolver)
        ]

    # Names of things we do not create but others reference (log groups, roles, layers, topics).
    for logical, res in resources.items():
        names.refs.setdefault(logical, _physical(stack, logical))
        service = res["Type"].split("::")[1].lower()
        names.attrs.setdefault(
            (logical, "Arn"), f"arn:aws:{service}:{region}:{acct}:{_physical(stack, logical)}"
        )

    # Functions: names and ARNs first (env vars, schedules and routes refer to them).
    for logical, _res in of_type("AWS::Lambda::Function"):
        fn_name = _physical(stack, logical, 64)
        names.refs[logical] = fn_name
        names.attrs[(logical, "Arn")] = f"arn:aws:lambda:{region}:{acct}:function:{fn_name}"

    # Event buses.
    events = clients("events")
    for logical, res in of_type("AWS::Events::EventBus"):
        bus = resolver.resolve(res["Properties"]["Name"])
        try:
            arn = events.create_event_bus(Name=bus)["EventBusArn"]
        except events.exceptions.ResourceAlreadyExistsException:
            arn = events.describe_event_bus(Name=bus)["Arn"]
        names.refs[logical] = bus
        names.attrs[(logical, "Arn")] = arn
        names.attrs[(logical, "Name")] = bus
        deployment.buses[logical] = bus

    # DynamoDB tables.
    ddb = clients("dynamodb")
    for logical, res in of_type("AWS::DynamoDB::Table"):
        props = resolver.resolve(res["Properties"])
        table = props.get("TableName") or _physical(stack, logical, 255)
        kwargs: dict[str, Any] = {
            "TableName": table,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        try:
            desc = ddb.create_table(**kwargs)["TableDescription"]
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        except ddb.exceptions.ResourceInUseException:
            desc = ddb.describe_table(TableName=table)["Table"]
        names.refs[logical] = table
        names.attrs[(logical, "Arn")] = desc["TableArn"]
        deployment.tables[logical] = table

    # SQS queues: dead-letter queues first, so redrive policies can name them.
    sqs = clients("sqs")
    queue_items = sorted(
        of_type("AWS::SQS::Queue"), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {})
    )
    for logical, res in queue_items:
        props = resolver.resolve(res.get("Properties", {}))
        qname = props.get("QueueName") or _physical(stack, logical)
        attrs: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attrs[key] = str(props[key])
        redrive = props.get("RedrivePolicy")
        dlq_logical = None
        if redrive:
            attrs["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
            dlq_logical = next(
                (q.logical for q in deployment.queues.values() if q.arn == redrive["deadLetterTargetArn"]),
                None,
            )
        url = sqs.create_queue(QueueName=qname, Attributes=attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        names.refs[logical] = url
        names.attrs[(logical, "Arn")] = arn
        names.attrs[(logical, "QueueName")] = qname
        names.attrs[(logical, "QueueUrl")] = url
        deployment.queues[logical] = QueueSpec(
            logical=logical,
            name=qname,
            url=url,
            arn=arn,
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            dlq=dlq_logical,
        )

    # S3 buckets, with their queue notifications.
    s3 = clients("s3")
    for logical, res in of_type("AWS::S3::Bucket"):
        props = resolver.resolve(res.get("Properties", {}))
        bucket = props.get("BucketName") or _physical(stack, logical, 63).lower()
        try:
            if region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        notifications = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if notifications:
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": n["Queue"],
                            "Events": [n["Event"]],
                            **(
                                {"Filter": {"Key": {"FilterRules": n["Filter"]["S3Key"]["Rules"]}}}
                                if n.get("Filter")
                                else {}
                            ),
                        }
                        for n in notifications
                    ]
                },
            )
        names.refs[logical] = bucket
        names.attrs[(logical, "Arn")] = f"arn:aws:s3:::{bucket}"
        deployment.buckets[logical] = bucket

    # Firehose delivery streams (after the buckets: their destinations name them).
    streams = dict(of_type("AWS::KinesisFirehose::DeliveryStream"))
    for spec in stream_specs(streams, resolver, stack):
        names.refs[spec.logical] = spec.name
        names.attrs[(spec.logical, "Arn")] = f"arn:aws:firehose:{region}:{acct}:deliverystream/{spec.name}"
        deployment.streams[spec.logical] = spec

    # EventBridge rules, delivering to SQS targets (other target kinds are AWS-only: logs).
    for logical, res in of_type("AWS::Events::Rule"):
        props = resolver.resolve(res["Properties"])
        rule_name = props.get("Name") or _physical(stack, logical, 64)
        bus = props.get("EventBusName", "default")
        arn = events.put_rule(
            Name=rule_name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED"
        )["RuleArn"]
        targets = []
        for target in props.get("Targets", []):
            arn = str(target["Arn"])
            if arn.startswith("arn:aws:sqs"):
                targets.append({"Id": target["Id"], "Arn": arn})
            elif arn.startswith("arn:aws:logs"):
                # No CloudWatch Logs locally: the same events go to a tap queue you can read.
                tap_url = sqs.create_queue(QueueName=_physical(stack, f"{logical}-tap"))["QueueUrl"]
                tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                targets.append({"Id": target["Id"], "Arn": tap_arn})
                deployment.taps[logical] = tap_url
        if targets:
            events.put_targets(Rule=rule_name, EventBusName=bus, Targets=targets)
        names.refs[logical] = rule_name
        names.attrs[(logical, "Arn")] = arn
        deployment.rules[logical] = rule_name

    # SNS topics and their SQS subscriptions (raw delivery, attribute filter policies): the emulator
    # delivers a publish to every matching queue, as SNS does (support.py refuses what it cannot).
    if of_type("AWS::SNS::Topic"):
        sns = clients("sns")
        for logical, res in of_type("AWS::SNS::Topic"):
            props = resolver.resolve(res.get("Properties", {}))
            topic = props.get("TopicName") or _physical(stack, logical, 256)
            topic_arn = sns.create_topic(Name=topic)["TopicArn"]
            names.refs[logical] = topic_arn  # Ref of a topic is its ARN
            names.attrs[(logical, "TopicArn")] = topic_arn
            names.attrs[(logical, "TopicName")] = topic
            deployment.topics[logical] = topic_arn
            tap_url = sqs.create_queue(QueueName=_physical(stack, f"{logical}-tap"))["QueueUrl"]
            tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=tap_arn,
                Attributes={"RawMessageDelivery": "true"},
            )
            deployment.taps[logical] = tap_url
        for logical, res in of_type("AWS::SNS::Subscription"):
            props = resolver.resolve(res["Properties"])
            attributes = {"RawMessageDelivery": "true" if _true(props.get("RawMessageDelivery")) else "false"}
            if props.get("FilterPolicy"):
                # the scope first: moto validates the policy against it (as SNS does)
                attributes["FilterPolicyScope"] = props.get("FilterPolicyScope", "MessageAttributes")
                attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
            arn = sns.subscribe(
                TopicArn=props["TopicArn"],
                Protocol=props["Protocol"],
                Endpoint=props["Endpoint"],
                Attributes=attributes,
                ReturnSubscriptionArn=True,
            )["SubscriptionArn"]
            names.refs[logical] = arn
            deployment.subscriptions[logical] = arn

    # Functions (recorded, run in process by the runtime).
    for logical, res in of_type("AWS::Lambda::Function"):
        props = res["Properties"]
        env = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        deployment.functions[logical] = FunctionSpec(
            logical=logical,
            name=names.refs[logical],
            code_dir=cfn.code_path(props["Code"]),
            handler=props["Handler"],
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            env={k: str(v) for k, v in env.items() if v is not None},
        )

    fn_by_name = {f.name: f.logical for f in deployment.functions.values()}
    queue_by_arn = {q.arn: q.logical for q in deployment.queues.values()}
    for logical, res in of_type("AWS::Lambda::EventSourceMapping"):
        props = resolver.resolve(res["Properties"])
        deployment.mappings.append(
            MappingSpec(
                logical=logical,
                function=fn_by_name[props["FunctionName"]],
                queue=queue_by_arn[props["EventSourceArn"]],
                batch_size=int(props.get("BatchSize", 10)),
                window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            )
        )

    for logical, res in of_type("AWS::Scheduler::Schedule"):
        props = res["Properties"]
        target = props["Target"]["Arn"]
        fn_logical = (
            target["Fn::GetAtt"][0] if isinstance(target, dict) else fn_by_name[target.rsplit(":", 1)[-1]]
        )
        expression = props["ScheduleExpression"]
        deployment.schedules.append(
            ScheduleSpec(
                logical=logical,
                expression=expression,
                function=fn_logical,
                seconds=rate_seconds(expression),
                input=props["Target"].get("Input"),
            )
        )

    for _logical, res in of_type("AWS::ApiGatewayV2::Api"):
        body = res["Properties"].get("Body", {})
        for path, methods in body.get("paths", {}).items():
            for method, spec in methods.items():
                integration = spec.get("x-amazon-apigateway-integration")
                if not integration:
                    continue
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                schemes = [name for entry in spec.get("security", []) for name in entry]
                deployment.routes.append(
                    RouteSpec(
                        method=verb,
                        path=path,
                        function=_logical_from_arn_sub(integration["uri"]),
                        authorizer="AWS_IAM" if "AWS_IAM" in schemes else (schemes[0] if schemes else None),
                    )
                )

    for key, out in translated.get("Outputs", {}).items():
        if cfn.resource_enabled(out, resolver):
            try:
                deployment.outputs[key] = resolver.resolve(out["Value"])
            except KeyError:
                continue
    return deployment
