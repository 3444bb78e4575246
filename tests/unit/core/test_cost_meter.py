"""The cost meter's pricing rules (benchmarks/meter.py): DynamoDB units by item size, rule matching."""

from __future__ import annotations

from huiliu_infra import cfn
from huiliu_infra.local.provision import TEMPLATE

from benchmarks import pricing
from benchmarks.meter import (
    _CountingStream,
    attributes_match,
    function_logging,
    item_size,
    matches,
    prod_log_level,
    read_units,
    template_rules,
    template_subscriptions,
    write_units,
)


def test_item_size_follows_dynamodb_rules_for_names_strings_numbers_and_maps() -> None:
    item = {"pk": {"S": "abc"}, "n": {"N": "12345"}, "m": {"M": {"k": {"S": "中"}}}}
    # pk: 2 + 3; n: 1 + (5 digits -> 3 + 1); m: 1 + 3 + (1 + 3 + 1)
    assert item_size(item) == 5 + 5 + 9


def test_units_round_up_per_item_halve_eventual_reads_and_double_transactions() -> None:
    assert read_units(0, consistent=True) == 1.0  # a missing item still costs a unit
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(4097, consistent=False) == 1.0
    assert write_units(1025) == 2.0
    assert write_units(1025, transactional=True) == 4.0


def test_template_rules_route_control_events_and_copy_them_to_the_bus_log() -> None:
    rules = template_rules(cfn.load_template(TEMPLATE))
    event = {"source": "huiliu.identity", "detail-type": "profiles.replay_completed", "detail": {}}
    queues = sorted(r.queue for r in rules if r.kind == "sqs" and matches(r.pattern, event))
    logs = [r for r in rules if r.kind == "logs" and matches(r.pattern, event)]
    assert queues == ["SegmentsQueue"]
    assert len(logs) == 1  # the catch-all copy (EventBridge events only)
    changed = {"source": "huiliu.identity", "detail-type": "profile.changed", "detail": {}}
    assert not [r for r in rules if r.kind == "sqs" and matches(r.pattern, changed)]  # on the topic now


def test_sns_filter_policies_route_profile_changed_by_its_attributes() -> None:
    subscriptions = {s.queue: s.filter_policy for s in template_subscriptions(cfn.load_template(TEMPLATE))}

    def reached(**attrs: str) -> set[str]:
        converted = {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()}
        return {q for q, policy in subscriptions.items() if attributes_match(policy, converted)}

    quiet = reached(detail_type="profile.changed", contact_changed="false", has_order="false")
    assert quiet == {"SegmentsQueue", "JourneysQueue"}
    contact = reached(detail_type="profile.changed", contact_changed="true", has_order="false")
    assert contact == {"SegmentsQueue", "JourneysQueue", "NotifyQueue"}
    order = reached(detail_type="profile.changed", contact_changed="false", has_order="true")
    assert order == {"SegmentsQueue", "JourneysQueue", "ReportsQueue"}
    assert reached(detail_type="notification.requested", channel="sms") == {"NotifySmsQueue", "ReportsQueue"}


def test_prices_have_a_date_and_every_item_the_meter_bills() -> None:
    assert pricing.PRICES_AS_OF
    for item in (
        "dynamodb.write_request_unit",
        "eventbridge.event",
        "sns.request",
        "sqs.request",
        "firehose.gb_ingested",
        "logs.gb_ingested",
        "xray.trace_recorded",
    ):
        assert pricing.price(item) > 0
    assert pricing.price("sns.sqs_delivery") == 0  # SNS → SQS deliveries are free
    assert pricing.price("sns.request") < pricing.price("eventbridge.event")


def test_logs_and_traces_are_priced_as_the_template_configures_them_for_prod() -> None:
    template = cfn.load_template(TEMPLATE)
    tracing, platform = function_logging(template, ["IngestFunction", "IdentityFunction"])

    assert tracing == {"IngestFunction": True, "IdentityFunction": True}  # Globals: Tracing Active
    # prod's SystemLogLevel WARN (JSON format) keeps START/END/REPORT out of the log group
    assert platform == {"IngestFunction": False, "IdentityFunction": False}
    assert prod_log_level(template) == "INFO"

    template["Mappings"]["StageConfig"]["prod"]["SystemLogLevel"] = "INFO"
    template["Resources"]["IdentityFunction"]["Properties"]["Tracing"] = "PassThrough"
    tracing, platform = function_logging(template, ["IngestFunction", "IdentityFunction"])
    assert tracing == {"IngestFunction": True, "IdentityFunction": False}
    assert platform == {"IngestFunction": True, "IdentityFunction": True}


def test_a_handlers_output_is_counted_in_bytes_and_log_events() -> None:
    import io

    inner = io.StringIO()
    out = _CountingStream(inner)
    out.write('{"level":"INFO","message":"ok"}\n')
    out.write("é\n")

    assert (out.bytes, out.lines) == (32 + 3, 2)
    assert inner.getvalue().endswith("é\n")
