"""One CSV row → one canonical event (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiliu.connectors.common import money, parse_timestamp
from huiliu.errors import BadRequest
from huiliu.identifiers import KNOWN_TYPES, InvalidIdentifier, normalize
from huiliu.ingest.importer.mapping import CONNECTOR, FIELDS, ImportMapping, target_for_header
from huiliu.models import CanonicalEvent, EventType, Identifier, Source


class RowRejected(Exception):
    """A row that cannot become an event: ``reason`` for the file's report (line by line), ``code``
    for the report's ingestion counts (rows refused per reason, huiliu.reports)."""

    def __init__(self, reason: str, code: str = "invalid_row") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RowTranslator:
    """One CSV row (a header → value dict) → one canonical event. Pure."""

    def __init__(
        self,
        mapping: ImportMapping,
        tenant_id: str,
        region: str,
        timezone: str,
        file_id: str,
        key: str,
        now: datetime,
    ) -> None:
        self.mapping = mapping
        self.tenant_id = tenant_id
        self.region = region
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = ZoneInfo("Asia/Shanghai")
        self.file_id = file_id
        self.key = key
        self.now = now
        self._targets: dict[str, str] = {}

    def target(self, header: str) -> str:
        found = self._targets.get(header)
        if found is None:
            explicit = self.mapping.columns.get(header)
            found = target_for_header(explicit) if explicit else target_for_header(header)
            self._targets[header] = found
        return found

    def translate(self, line: int, row: dict[str | None, Any]) -> CanonicalEvent:
        if None in row:
            raise RowRejected("more values than header columns", "column_count")
        identifiers: list[Identifier] = []
        seen: set[tuple[str, str]] = set()
        problems: list[str] = []
        fields: dict[str, str] = {}
        traits: dict[str, Any] = {}
        props: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        for header, raw in row.items():
            if raw is None:
                raise RowRejected("fewer values than header columns", "column_count")
            value = raw.strip()
            if not value:
                continue
            target = self.target(header or "")
            if target in KNOWN_TYPES:
                try:
                    normal = normalize(target, value, self.region)
                except InvalidIdentifier as exc:
                    problems.append(f"{target}: {exc}")
                    continue
                if (target, normal) not in seen:
                    seen.add((target, normal))
                    identifiers.append(Identifier(type=target, value=normal))
            elif target in FIELDS:
                fields[target] = value
            elif target.startswith("trait."):
                traits[target[6:]] = value
            elif target.startswith("property."):
                props[target[9:]] = value
            else:
                extras[target[6:]] = value
        if not identifiers:
            detail = f" ({'; '.join(problems)})" if problems else ""
            raise RowRejected(f"no valid identifier{detail}", "no_identifier")
        kind = (fields.get("type") or self.mapping.type).lower()
        if kind == "auto":
            kind = "track" if ("order_id" in fields or "event" in fields) else "identify"
        if kind not in ("identify", "track"):
            raise RowRejected(f"type must be identify or track, not {kind!r}", "invalid_type")
        timestamp = self.now
        if "timestamp" in fields:
            timestamp = self._time(fields["timestamp"])
        message_id = fields.get("message_id") or f"csv-{self.file_id}-{line}"
        common: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "message_id": message_id[:200],
            "timestamp": timestamp,
            "received_at": self.now,
            "source": Source(connector=CONNECTOR, account=self.key[-200:]),
            "identifiers": identifiers,
            "context": {"import": {"key": self.key, "line": line}},
        }
        if kind == "identify":
            return CanonicalEvent(type=EventType.IDENTIFY, traits={**extras, **traits}, **common)
        if "revenue" in fields:
            revenue = money(fields["revenue"])
            if revenue is None:
                raise RowRejected(f"revenue is not a number: {fields['revenue'][:40]!r}", "invalid_revenue")
            props["revenue"] = revenue
        if "order_id" in fields:
            props["order_id"] = fields["order_id"]
        currency = fields.get("currency") or self.mapping.currency
        if currency and ("order_id" in fields or "revenue" in fields):
            props["currency"] = currency.upper()
        event = fields.get("event") or self.mapping.default_event
        if len(event) > 200:
            raise RowRejected("event name longer than 200 characters", "invalid_event")
        return CanonicalEvent(type=EventType.TRACK, event=event, properties={**extras, **props}, **common)

    def _time(self, value: str) -> datetime:
        if len(value) in (10, 16, 19) and value[4] == "-" and "T" not in value:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError as exc:
                raise RowRejected(f"timestamp is not a date: {value[:40]!r}", "invalid_timestamp") from exc
            return parsed.replace(tzinfo=self.zone) if parsed.tzinfo is None else parsed
        try:
            return parse_timestamp(value)
        except BadRequest as exc:
            raise RowRejected(f"timestamp is not a date: {value[:40]!r}", "invalid_timestamp") from exc
