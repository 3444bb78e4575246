"""Identity resolution: one profile per person (DESIGN §3, §4; issue 4).

Layers: ``rules`` (per-tenant identifier rules, blocked values), ``profile`` (the profile model,
survivorship, computed attributes), ``resolution`` (which profiles an event links, limits and the
merge guard), ``repository`` (the only boto3 user), ``service`` (orchestration, retries,
idempotency), ``admin`` (360 view, unmerge, erase, export) and ``admin_routes`` (HTTP).
"""
