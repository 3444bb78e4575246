"""The three classic journeys in the local runtime: what they reference, and a walk through them
for ``huiliu demo`` (enrollments and the messages each journey requested, with a moved clock)."""

from __future__ import annotations

from typing import Any

# What the examples reference. Templates are notify's (TenantsTable ``T#{t}`` / ``TEMPLATE#{id}``),
# segments are the segments stage's (SegmentsTable ``T#{t}#SEG`` / ``DEF#{id}``).
EXAMPLE_TEMPLATES: dict[str, dict[str, Any]] = {
    "coupon-sms": {"channel": "sms", "body": "Welcome! Your coupon {{ coupon }} is waiting."},
    "winback-email": {"channel": "email", "subject": "We miss you", "body": "Come back for 10% off."},
    "recommend-b": {"channel": "wechat", "body": "You liked A, you will love {{ product }}."},
}
DORMANT_SEGMENT = {
    "id": "dormant-90d",
    "name": "Dormant 90 days",
    "condition": {"computed": "last_seen", "older_than": "P90D"},
}


def seed_references(tenant: str) -> None:
    """Make the examples' templates and segment exist (when their stages have not created them)."""
    from huiliu.settings import get_settings
    from huiliu.storage.dynamo import DynamoRepository

    settings = get_settings()
    tenants = DynamoRepository(settings.tenants_table)
    for template_id, body in EXAMPLE_TEMPLATES.items():
        if tenants.get(f"T#{tenant}", f"TEMPLATE#{template_id}") is None:
            tenants.put(
                {
                    "pk": f"T#{tenant}",
                    "sk": f"TEMPLATE#{template_id}",
                    "template": {"template_id": template_id, **body},
                    "version": 1,
                }
            )
    segments = DynamoRepository(settings.segments_table)
    if segments.get(f"T#{tenant}#SEG", f"DEF#{DORMANT_SEGMENT['id']}") is None:
        segments.put(
            {
                "pk": f"T#{tenant}#SEG",
                "sk": f"DEF#{DORMANT_SEGMENT['id']}",
                "id": DORMANT_SEGMENT["id"],
                "definition": DORMANT_SEGMENT,
                "version": 1,
            }
        )
