"""The cost meter's pricing rules (benchmarks/meter.py): DynamoDB units by item size, rule matching."""

from __future__ import annotations

from huiliu_infra import cfn
from huiliu_infra.local.provision import TEMPLATE

from benchmarks import pricing
from benchmarks.meter import item_size, matches, read_units, template_rules, write_units


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


def test_template_rules_route_profile_changed_to_its_consumers_only() -> None:
    rules = template_rules(cfn.load_template(TEMPLATE))
    event = {"source": "huiliu.identity", "detail-type": "profile.changed", "detail": {}}
    queues = sorted(r.queue for r in rules if r.kind == "sqs" and matches(r.pattern, event))
    logs = [r for r in rules if r.kind == "logs" and matches(r.pattern, event)]
    assert "SegmentsQueue" in queues
    assert "NotifyQueue" in queues  # notify keeps its own contact projection (issue 12)
    assert len(logs) == 1  # the catch-all debug copy


def test_prices_have_a_date_and_every_item_the_meter_bills() -> None:
    assert pricing.PRICES_AS_OF
    for item in ("dynamodb.write_request_unit", "eventbridge.event", "sqs.request", "firehose.gb_ingested"):
        assert pricing.price(item) > 0
