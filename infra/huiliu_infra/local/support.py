"""What the local runtime models of a translated template — and the refusal of everything else.

The local runtime derives its resources from template.yaml. A feature it cannot honour must stop
start-up with a clear message rather than be dropped silently (a queue filter that is ignored
locally would deliver events the deployed function never sees). :func:`check` lists every such
feature at once.

To support a new feature: model it in ``provision.py`` / ``runtime.py`` and add it here; for a
resource with no local effect (alarms, permissions …) add its type to ``AWS_ONLY`` with the reason.
"""

from __future__ import annotations

from typing import Any

# Types the local runtime creates on the emulator or runs in process.
MODELLED = {
    "AWS::Lambda::Function",
    "AWS::Lambda::EventSourceMapping",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::ApiGatewayV2::Api",
    "AWS::KinesisFirehose::DeliveryStream",  # Direct PUT → S3, emulated by the runtime (firehose.py)
    "AWS::SNS::Topic",  # standard topics on the emulator; email subscriptions are AWS-only
    "AWS::SNS::Subscription",  # SQS endpoints, raw delivery, attribute filter policies (moto delivers)
}
# What the Firehose emulator honours of an S3 destination (the rest is AWS-side: roles, encryption).
FIREHOSE_S3_PROPERTIES = {
    "BucketARN",
    "RoleARN",
    "Prefix",
    "ErrorOutputPrefix",
    "BufferingHints",
    "CompressionFormat",
}
# Types with no local effect, and why that is safe.
AWS_ONLY = {
    "AWS::IAM::Role": "in-process handlers run with the emulator's credentials (tests walk the policies)",
    "AWS::Lambda::Permission": "in-process invocation needs no resource policy",
    "AWS::Lambda::LayerVersion": "the layer is the installed huiliu package",
    "AWS::Logs::LogGroup": "handler logs go to the local log file",
    "AWS::Logs::ResourcePolicy": "no CloudWatch Logs locally",
    "AWS::SQS::QueuePolicy": "the emulator does not enforce queue policies",
    "AWS::S3::BucketPolicy": "the emulator does not enforce bucket policies",
    "AWS::CloudWatch::Alarm": "no CloudWatch alarms locally",
    "AWS::ApiGatewayV2::Stage": "one local stage serves every route",
    "AWS::KMS::Key": "the emulator keeps data unencrypted; encryption at rest is AWS's",
    "AWS::KMS::Alias": "no KMS locally",
}
# Properties the runtime honours, per type; anything else in these types is refused.
MAPPING_PROPERTIES = {
    "BatchSize",
    "EventSourceArn",
    "FunctionName",
    "FunctionResponseTypes",
    "MaximumBatchingWindowInSeconds",
    "Enabled",
    # one handler runs at a time locally, which honours any maximum concurrency
    "ScalingConfig",
}
RULE_TARGET_PROPERTIES = {"Id", "Arn"}
# A log-group target (the catch-all debug copy) becomes a local tap queue that keeps whole events
# for `huiliu local` / the demo; in AWS its InputTransformer writes ids only. No consumer reads it.
LOG_TARGET_PROPERTIES = RULE_TARGET_PROPERTIES | {"InputTransformer"}
QUEUE_REFUSED = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
TABLE_REFUSED = {"StreamSpecification", "KinesisStreamSpecification"}
SCHEDULE_TARGET_PROPERTIES = {"Arn", "Input", "RetryPolicy", "RoleArn", "DeadLetterConfig"}
# SNS: what the emulator honours. KmsMasterKeyId is encryption at rest (AWS's); an inline
# Subscription of protocol email (the DLQ alarm topic) sends nothing locally.
TOPIC_PROPERTIES = {"TopicName", "DisplayName", "KmsMasterKeyId", "Tags", "Subscription"}
TOPIC_INLINE_PROTOCOLS = {"email", "email-json"}
SUBSCRIPTION_PROPERTIES = {
    "TopicArn",
    "Protocol",
    "Endpoint",
    "RawMessageDelivery",
    "FilterPolicy",
    "FilterPolicyScope",
}
# Filter policy operators whose matching on the emulator (moto's FilterPolicyMatcher) is exactly
# SNS's for String message attributes. Not modelled faithfully, so refused: boolean or null match
# values (moto never matches them), "equals-ignore-case" (moto lower-cases the value, not the
# rule), "anything-but" other than a value, a list of values or a prefix, "cidr", "wildcard",
# "exists": false beside other rules of the same key (moto answers the key's first rule alone),
# nested keys (attribute scope has none), and the MessageBody scope.
FILTER_OPERATORS = {"prefix", "suffix", "anything-but", "exists", "numeric"}


class UnsupportedTemplateFeature(RuntimeError):
    """template.yaml uses something the local runtime does not model."""


def check(translated: dict[str, Any]) -> None:
    """Raise UnsupportedTemplateFeature naming every unmodelled feature of the translated template."""
    resources: dict[str, Any] = translated.get("Resources", {})
    problems: list[str] = []
    for logical, res in resources.items():
        kind = res.get("Type", "")
        props = res.get("Properties") or {}
        if kind not in MODELLED and kind not in AWS_ONLY:
            problems.append(f"{logical}: resource type {kind} is not modelled")
            continue
        if kind == "AWS::Lambda::EventSourceMapping":
            extra = sorted(set(props) - MAPPING_PROPERTIES)
            if extra:
                problems.append(f"{logical}: event source mapping properties {extra} (e.g. filters)")
            source = _logical_of(props.get("EventSourceArn"))
            if source and resources.get(source, {}).get("Type") != "AWS::SQS::Queue":
                problems.append(f"{logical}: event source {source} is not an SQS queue (streams)")
        elif kind == "AWS::SQS::Queue":
            refused = sorted(QUEUE_REFUSED & set(props))
            if refused:
                problems.append(f"{logical}: FIFO queue properties {refused}")
        elif kind == "AWS::DynamoDB::Table":
            refused = sorted(TABLE_REFUSED & set(props))
            if refused:
                problems.append(f"{logical}: table streams {refused}")
        elif kind == "AWS::Events::Rule":
            if "ScheduleExpression" in props:
                problems.append(f"{logical}: scheduled EventBridge rules (use AWS::Scheduler schedules)")
            for target in props.get("Targets", []):
                kind_of = resources.get(_logical_of(target.get("Arn")) or "", {}).get("Type")
                log_group = kind_of == "AWS::Logs::LogGroup"
                allowed = LOG_TARGET_PROPERTIES if log_group else RULE_TARGET_PROPERTIES
                extra = sorted(set(target) - allowed)
                if extra:
                    problems.append(f"{logical}: rule target {target.get('Id')} properties {extra}")
                if kind_of not in ("AWS::SQS::Queue", "AWS::Logs::LogGroup"):
                    problems.append(f"{logical}: rule target {target.get('Id')} is not a queue or log group")
        elif kind == "AWS::SNS::Topic":
            extra = sorted(set(props) - TOPIC_PROPERTIES)
            if extra:
                problems.append(f"{logical}: topic properties {extra} (e.g. FIFO topics, delivery logging)")
            for sub in props.get("Subscription") or []:
                if sub.get("Protocol") not in TOPIC_INLINE_PROTOCOLS:
                    problems.append(
                        f"{logical}: inline subscription of protocol {sub.get('Protocol')!r} "
                        "(declare an AWS::SNS::Subscription to an SQS queue)"
                    )
        elif kind == "AWS::SNS::Subscription":
            problems += [f"{logical}: {p}" for p in _subscription_problems(props, resources)]
        elif kind == "AWS::KinesisFirehose::DeliveryStream":
            dest = props.get("ExtendedS3DestinationConfiguration")
            if props.get("DeliveryStreamType", "DirectPut") != "DirectPut" or not dest:
                problems.append(f"{logical}: only Direct PUT streams to an S3 destination are modelled")
            else:
                extra = sorted(set(dest) - FIREHOSE_S3_PROPERTIES)
                if extra:
                    problems.append(f"{logical}: delivery stream S3 destination properties {extra}")
                if dest.get("CompressionFormat", "UNCOMPRESSED") not in ("UNCOMPRESSED", "GZIP"):
                    problems.append(f"{logical}: compression {dest['CompressionFormat']} (GZIP only)")
        elif kind == "AWS::Scheduler::Schedule":
            extra = sorted(set(props.get("Target", {})) - SCHEDULE_TARGET_PROPERTIES)
            if extra:
                problems.append(f"{logical}: schedule target properties {extra}")
            expression = str(props.get("ScheduleExpression", ""))
            if not expression.startswith("rate("):
                problems.append(f"{logical}: schedule {expression!r} (only rate() is modelled)")
    problems += [f"{where}: intrinsic {name}" for where, name in _unknown_intrinsics(resources)]
    if problems:
        raise UnsupportedTemplateFeature(
            "the local runtime does not model these template features (model them in "
            "infra/huiliu_infra/local/ or list them in support.py):\n  - " + "\n  - ".join(problems)
        )


def _subscription_problems(props: dict[str, Any], resources: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    extra = sorted(set(props) - SUBSCRIPTION_PROPERTIES)
    if extra:
        problems.append(f"subscription properties {extra} (e.g. a RedrivePolicy is not modelled)")
    if props.get("Protocol") != "sqs":
        problems.append(f"subscription protocol {props.get('Protocol')!r} (only sqs is modelled)")
    endpoint = _logical_of(props.get("Endpoint"))
    if not endpoint or resources.get(endpoint, {}).get("Type") != "AWS::SQS::Queue":
        problems.append("subscription endpoint is not a queue of this template")
    topic = _logical_of(props.get("TopicArn"))
    if not topic or resources.get(topic, {}).get("Type") != "AWS::SNS::Topic":
        problems.append("subscription topic is not a topic of this template")
    raw = props.get("RawMessageDelivery")
    if not (raw is True or str(raw).lower() == "true"):
        # consumers read the EventBridge envelope as the body; moto also treats "false" as raw
        problems.append("RawMessageDelivery must be true (the stage runner reads the raw envelope)")
    if props.get("FilterPolicyScope", "MessageAttributes") != "MessageAttributes":
        problems.append(f"filter policy scope {props['FilterPolicyScope']!r} (MessageAttributes only)")
    policy = props.get("FilterPolicy")
    if policy is not None:
        problems += [f"filter policy: {p}" for p in filter_policy_problems(policy)]
    return problems


def filter_policy_problems(policy: Any, depth: int = 0) -> list[str]:
    """What of an attribute filter policy the emulator would not match exactly as SNS does."""
    if not isinstance(policy, dict) or not policy:
        return [f"{policy!r} is not a non-empty object"]
    problems: list[str] = []
    for key, rules in policy.items():
        if key == "$or":
            if depth > 0 or not isinstance(rules, list) or len(rules) < 2:
                problems.append('"$or" must be a top-level list of at least two policies')
                continue
            for branch in rules:
                problems += filter_policy_problems(branch, depth + 1)
            continue
        if not isinstance(rules, list) or not rules:
            problems.append(f"{key}: nested keys or a non-list rule ({rules!r})")
            continue
        for rule in rules:
            problems += [f"{key}: {p}" for p in _rule_problems(rule, len(rules))]
    return problems


def _rule_problems(rule: Any, siblings: int) -> list[str]:
    if isinstance(rule, bool) or rule is None:
        return [f'match value {rule!r} (use the strings "true" / "false")']
    if isinstance(rule, str | int | float):
        return []
    if not isinstance(rule, dict) or len(rule) != 1:
        return [f"rule {rule!r}"]
    ((operator, value),) = rule.items()
    if operator not in FILTER_OPERATORS:
        return [f"operator {operator!r} is not modelled"]
    if operator == "exists":
        if not isinstance(value, bool):
            return ["exists takes true or false"]
        if value is False and siblings > 1:
            return ['"exists": false beside other rules of the same key']
    if operator in ("prefix", "suffix") and not isinstance(value, str):
        return [f"{operator} takes a string"]
    if operator == "anything-but":
        plain = isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value) and value
        )
        by_prefix = isinstance(value, dict) and set(value) == {"prefix"} and isinstance(value["prefix"], str)
        if not (plain or by_prefix):
            return [f"anything-but {value!r} (a string, a list of strings or a prefix)"]
    return []


KNOWN_INTRINSICS = {
    "Ref",
    "Condition",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::Join",
    "Fn::FindInMap",
    "Fn::Select",
    "Fn::Split",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
}


def _unknown_intrinsics(node: Any, where: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if len(node) == 1:
            (key,) = node
            if key.startswith("Fn::") and key not in KNOWN_INTRINSICS:
                found.append((where, key))
        for key, value in node.items():
            found += _unknown_intrinsics(value, where or key)
    elif isinstance(node, list):
        for value in node:
            found += _unknown_intrinsics(value, where)
    return found


def _logical_of(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            return str(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
        if "Ref" in value:
            return str(value["Ref"])
    return None
