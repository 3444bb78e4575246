"""The profile: traits with survivorship by event time, tags, consent, computed attributes.

Everything here is pure and order-independent where it matters: a trait remembers the event time
(and message id, as a tie-break) of the value it holds, so a late old event never overwrites a
newer value, and merging two profiles combines them trait by trait with the same rules.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.identity.rules import IdentityRules, TraitStrategy
from huiliu.models import CanonicalEvent, Identifier

ORDER_EVENTS = frozenset({"Order Completed", "Order Paid"})
REFUND_EVENT = "Order Refunded"
MAX_PRODUCTS = 100
MAX_EVENT_NAMES = 200
# A product id in ``products_bought`` keeps at most this many characters.
MAX_PRODUCT_ID = 200
# A profile's traits (with their survivorship stamps) and tags take at most this many bytes (UTF-8
# JSON). An event's trait values and tags that would go beyond are not stored — the event is still
# processed (timeline, computed attributes, consent, identifiers) — and a merge folds the absorbed
# profile's traits in only while they fit (docs/identity.md, "Profile size"). With the event bound
# at ingest (64 KB) this keeps the profile item, the merge record (two profiles) and profile.changed
# (the profile next to the event) within DynamoDB's 400 KB and EventBridge's 256 KB.
MAX_TRAIT_BYTES = 32 * 1024
# Applied-event keys a profile remembers (9 bytes each on the item). Small on purpose: the ring only
# has to cover the gap between the profile write and the marker write, and concurrent redeliveries;
# an event received before the last eviction is checked against its processed marker instead.
RECENT_APPLIED = 8
# Sums (revenue_total, SUM traits) saturate here: DynamoDB numbers end at 9.99E+125.
MAX_SUM = 9.9e125
# Traits with a special home on the profile rather than in ``traits``.
CONSENT_KEY = "consent"
TAGS_KEY = "tags"
# Internal sources (a journey's "remove tag" action) remove tags with this trait key.
TAGS_REMOVE_KEY = "tags_remove"


def iso(value: datetime) -> str:
    """Sortable UTC timestamp used for survivorship stamps and computed times."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _num(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0  # "NaN" / "inf" as text: not an amount


def _round(value: float) -> float | int:
    """A sum as DynamoDB can hold it: saturated at ±MAX_SUM, an int only while exact (< 2**53)."""
    if not math.isfinite(value) or abs(value) > MAX_SUM:
        value = math.copysign(MAX_SUM, value) if not math.isnan(value) else 0.0
    rounded = round(value, 6)
    return int(rounded) if rounded == int(rounded) and abs(rounded) < 2**53 else rounded


def _bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _trait_bytes(name: str, value: Any, meta: Any) -> int:
    return _bytes(name) * 2 + _bytes(value) + _bytes(meta) + 2


def _dup(value: Any) -> Any:
    """Deep copy of JSON-like data, much faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _dup(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dup(v) for v in value]
    return value


def _union(a: Any, b: Any) -> list[Any]:
    items = (a if isinstance(a, list) else [a] if a is not None else []) + (
        b if isinstance(b, list) else [b] if b is not None else []
    )
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(repr(item), item)
    return [seen[k] for k in sorted(seen)]


@dataclass
class Profile:
    profile_id: str
    tenant_id: str
    created_at: str
    identifiers: list[Identifier] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    # trait name -> [event time iso, message id] of the value held
    trait_meta: dict[str, list[str]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consent: dict[str, dict[str, Any]] = field(default_factory=dict)
    computed: dict[str, Any] = field(default_factory=dict)
    absorbed: list[str] = field(default_factory=list)
    # profile ids an admin unmerged from this one: never merged again automatically
    keep_apart: list[str] = field(default_factory=list)
    merged_into: str | None = None
    merge_count: int = 0
    version: int = 0
    updated_at: str | None = None
    # trait names (and tags) not stored because the profile was at MAX_TRAIT_BYTES (not persisted)
    dropped_traits: list[str] = field(default_factory=list, compare=False, repr=False)
    # The last RECENT_APPLIED events applied to this profile (short hashes of connector#message id),
    # and when the newest entry pushed out of that ring had been applied: an event received after
    # ``recent_since`` that is not in the ring has not been applied here (service: the known-person
    # path, which reads no processed marker for such events). None: unknown, always read the marker.
    recent: list[str] = field(default_factory=list)
    recent_since: str | None = None
    # identifier key -> erased_at of an identifier this profile claimed after it had been erased (an
    # old event carrying it, stamped before that, must still not count; known-person path)
    erased_ids: dict[str, str] = field(default_factory=dict)
    # Where the merge records of this person's 360 view are: ``owner id:merge id`` for every record
    # under this profile and under every profile it absorbed (the admin view reads them in one
    # BatchGetItem with the absorbed profiles). None: not known (a profile with merges written
    # before this was kept) — the view queries them instead.
    merge_log: list[str] | None = field(default_factory=list)

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_item(self) -> dict[str, Any]:
        """The stored form: :meth:`to_dict` with the two parts that grow compacted (the profile item
        is written on every event and billed per started KB; docs/identity.md, "Profile size").

        * survivorship stamps grouped by stamp (``tm``: ``[[time, message id, name, ...], ...]``) —
          the traits of one event share one stamp, written once instead of once per trait;
        * ``computed.events`` as ``computed.ev`` ``{name: [count, last_at]}`` with ``last_at`` in
          epoch microseconds (``iso`` gives it back exactly; a time it would not give back stays text).

        :meth:`from_dict` reads both forms (items written before are read as they are).
        """
        data = self.to_dict()
        for empty in ("tags", "consent", "absorbed", "merge_count"):
            if not data[empty]:
                del data[empty]  # from_dict's defaults
        grouped = _group_stamps(self.trait_meta)
        if grouped is not None:
            del data["trait_meta"]
            if grouped:
                data["tm"] = grouped
        events = self.computed.get("events")
        if isinstance(events, dict):
            computed = dict(self.computed)
            del computed["events"]
            computed["ev"] = {
                name: [entry.get("count", 0), _pack_time(entry.get("last_at"))]
                for name, entry in events.items()
            }
            data["computed"] = computed
        return data

    def to_dict(self) -> dict[str, Any]:
        data = {
            "profile_id": self.profile_id,
            "tenant_id": self.tenant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "identifiers": [{"type": i.type, "value": i.value} for i in self.identifiers],
            "traits": self.traits,
            "trait_meta": self.trait_meta,
            "tags": self.tags,
            "consent": self.consent,
            "computed": self.computed,
            "absorbed": self.absorbed,
            "merge_count": self.merge_count,
            "version": self.version,
        }
        if self.keep_apart:
            data["keep_apart"] = self.keep_apart
        if self.merged_into:
            data["merged_into"] = self.merged_into
        if self.recent:
            data["recent"] = " ".join(self.recent)  # one string: 9 bytes an entry, no list overhead
        if self.recent_since:
            data["recent_since"] = self.recent_since
        if self.erased_ids:
            data["erased_ids"] = self.erased_ids
        if self.merge_log:
            data["merge_log"] = self.merge_log
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(
            profile_id=data["profile_id"],
            tenant_id=data["tenant_id"],
            created_at=data["created_at"],
            updated_at=data.get("updated_at"),
            identifiers=[Identifier(type=i["type"], value=i["value"]) for i in data.get("identifiers", [])],
            traits=dict(data.get("traits") or {}),
            trait_meta=_ungroup_stamps(data.get("tm"), data.get("trait_meta")),
            tags=list(data.get("tags") or []),
            consent=dict(data.get("consent") or {}),
            computed=_unpack_computed(data.get("computed")),
            absorbed=list(data.get("absorbed") or []),
            keep_apart=list(data.get("keep_apart") or []),
            merged_into=data.get("merged_into"),
            merge_count=int(data.get("merge_count") or 0),
            version=int(data.get("version") or 0),
            recent=str(data.get("recent") or "").split(),
            recent_since=data.get("recent_since"),
            erased_ids=dict(data.get("erased_ids") or {}),
            merge_log=_merge_log(data),
        )

    def copy(self) -> Profile:
        """A deep copy (identifiers are immutable and shared)."""
        return Profile(
            profile_id=self.profile_id,
            tenant_id=self.tenant_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            identifiers=list(self.identifiers),
            traits=_dup(self.traits),
            trait_meta={k: list(v) for k, v in self.trait_meta.items()},
            tags=list(self.tags),
            consent=_dup(self.consent),
            computed=_dup(self.computed),
            absorbed=list(self.absorbed),
            keep_apart=list(self.keep_apart),
            merged_into=self.merged_into,
            merge_count=self.merge_count,
            version=self.version,
            recent=list(self.recent),
            recent_since=self.recent_since,
            erased_ids=dict(self.erased_ids),
            merge_log=None if self.merge_log is None else list(self.merge_log),
        )

    # -- applied events ---------------------------------------------------------------------------
    def applied(self, key: str) -> bool:
        return key in self.recent

    def remember_applied(self, key: str, now: str) -> None:
        """Record ``key`` as applied; an entry pushed out moves ``recent_since`` to ``now``."""
        if self.recent_since is None:
            # history unknown until now: events received from now on are all recorded here
            self.recent_since = now
        if key not in self.recent:
            self.recent.append(key)
        if len(self.recent) > RECENT_APPLIED:
            del self.recent[: len(self.recent) - RECENT_APPLIED]
            self.recent_since = max(self.recent_since or "", now)

    def ring_covers(self, received_at: str) -> bool:
        """Whether an event received at ``received_at`` would be in the ring had it been applied."""
        return self.recent_since is not None and received_at > self.recent_since

    @property
    def is_tombstone(self) -> bool:
        return self.merged_into is not None

    def has_strong_identifier(self, rules: IdentityRules) -> bool:
        return any(rules.is_strong(i.type) for i in self.identifiers)

    def add_identifiers(self, identifiers: list[Identifier]) -> list[Identifier]:
        present = set(self.identifiers)
        added = [i for i in identifiers if i not in present]
        self.identifiers.extend(added)
        return added

    # -- survivorship --------------------------------------------------------------------------
    def set_trait(self, name: str, value: Any, stamp: list[str], strategy: TraitStrategy) -> bool:
        """Offer one trait value observed at ``stamp``; True if the profile changed."""
        held = self.trait_meta.get(name)
        if strategy is TraitStrategy.SUM:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            self.traits[name] = _round(_num(self.traits.get(name)) + value)
            self.trait_meta[name] = max(held, stamp) if held else stamp
            return value != 0
        if strategy is TraitStrategy.UNION:
            merged = _union(self.traits.get(name), value)
            changed = merged != self.traits.get(name)
            self.traits[name] = merged
            self.trait_meta[name] = max(held, stamp) if held else stamp
            return changed
        if held is not None:
            newer = stamp > held
            latest = strategy is TraitStrategy.LATEST
            if newer != latest:
                return False
        changed = self.traits.get(name) != value or name not in self.traits
        self.traits[name] = value
        self.trait_meta[name] = stamp
        return changed

    def trait_bytes(self) -> int:
        """What the trait budget counts: traits with their stamps, and tags."""
        return sum(_trait_bytes(n, v, self.trait_meta.get(n)) for n, v in self.traits.items()) + _bytes(
            self.tags
        )

    def offer_trait(
        self, name: str, value: Any, stamp: list[str], strategy: TraitStrategy, used: int
    ) -> tuple[bool, int]:
        """``set_trait`` within MAX_TRAIT_BYTES: (changed, bytes used after); a value that does not
        fit is not stored (the previous one stays)."""
        had = name in self.traits
        old, old_meta = self.traits.get(name), self.trait_meta.get(name)
        before = _trait_bytes(name, old, old_meta) if had else 0
        if not self.set_trait(name, value, stamp, strategy):
            return False, used
        after = _trait_bytes(name, self.traits[name], self.trait_meta.get(name))
        if used - before + after <= MAX_TRAIT_BYTES:
            return True, used - before + after
        if had:
            self.traits[name] = old
            self.trait_meta[name] = old_meta  # type: ignore[assignment]
        else:
            self.traits.pop(name, None)
            self.trait_meta.pop(name, None)
        self.dropped_traits.append(name)
        return False, used

    def add_tags(self, tags: list[str], used: int) -> tuple[list[str], int]:
        """New tags, in order, while they fit MAX_TRAIT_BYTES: (added, bytes used after)."""
        fresh = sorted(set(tags) - set(self.tags))
        added = []
        for tag in fresh:
            size = _bytes(tag) + 1
            if used + size > MAX_TRAIT_BYTES:
                self.dropped_traits.append(f"tags:{tag[:40]}")
                continue
            added.append(tag)
            used += size
        if added:
            self.tags = sorted(set(self.tags) | set(added))
        return added, used

    def set_consent(self, channel: str, granted: bool, at: str) -> bool:
        held = self.consent.get(channel)
        if held and held.get("at", "") >= at:
            return False
        self.consent[channel] = {"granted": bool(granted), "at": at}
        return not held or held.get("granted") != bool(granted)


def _merge_log(data: dict[str, Any]) -> list[str] | None:
    """A stored ``merge_log``; absent, it is empty for a profile that never absorbed anyone (records
    live under a survivor: one that absorbed someone lists it in ``absorbed``, one whose merges were
    all undone lists the other in ``keep_apart``), else unknown."""
    log = data.get("merge_log")
    if isinstance(log, list):
        return [str(e) for e in log]
    return None if data.get("absorbed") or data.get("keep_apart") else []


def _group_stamps(meta: dict[str, list[str]]) -> list[list[str]] | None:
    """``{name: [time, message id]}`` as ``[[time, message id, name, ...], ...]``; None if a stamp
    is not a pair of strings (then the map is stored as it is)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, stamp in meta.items():
        pair = isinstance(stamp, list | tuple) and len(stamp) == 2
        if not (pair and all(isinstance(x, str) for x in stamp)):
            return None
        groups.setdefault((stamp[0], stamp[1]), []).append(name)
    return [[when, msg, *names] for (when, msg), names in groups.items()]


def _ungroup_stamps(grouped: Any, meta: Any) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in (meta or {}).items()}
    for group in grouped or []:
        when, msg, *names = (str(x) for x in group)
        for name in names:
            out[name] = [when, msg]
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pack_time(value: Any) -> Any:
    """An ``iso`` time as epoch microseconds when that gives it back exactly, else as it is."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return value
    delta = parsed - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros if _unpack_time(micros) == value else value


def _unpack_time(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return iso(_EPOCH + timedelta(microseconds=int(value)))


def _unpack_computed(stored: Any) -> dict[str, Any]:
    computed = dict(stored or {})
    packed = computed.pop("ev", None)
    if isinstance(packed, dict):
        computed["events"] = {
            name: {"count": int(entry[0]), "last_at": _unpack_time(entry[1])}
            for name, entry in packed.items()
        }
    return computed


@dataclass
class Changes:
    """What one event changed on a profile (carried by ``profile.changed``)."""

    traits: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, Any] = field(default_factory=dict)
    tags_added: list[str] = field(default_factory=list)
    consent: dict[str, Any] = field(default_factory=dict)
    identifiers_added: list[Identifier] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "traits": self.traits,
            "computed": self.computed,
            "tags_added": self.tags_added,
            **({"tags_removed": self.tags_removed} if self.tags_removed else {}),
            "consent": self.consent,
            "identifiers_added": [{"type": i.type, "value": i.value} for i in self.identifiers_added],
        }


@dataclass(frozen=True)
class OrderFacts:
    """The parts of an order event that computed attributes need."""

    order_id: str | None
    amount: float
    currency: str | None
    products: list[str]


def order_facts(event: CanonicalEvent) -> OrderFacts | None:
    if event.event not in ORDER_EVENTS and event.event != REFUND_EVENT:
        return None
    props = event.properties
    amount = props.get("revenue")
    if amount is None:
        amount = props.get("total")
    if amount is None and event.event == REFUND_EVENT:
        amount = props.get("amount")
    products: list[str] = []
    for product in props.get("products") or []:
        if isinstance(product, dict):
            pid = product.get("product_id") or product.get("sku") or product.get("name")
            if pid is not None:
                products.append(str(pid)[:MAX_PRODUCT_ID])
    order_id = props.get("order_id")
    return OrderFacts(
        order_id=str(order_id) if order_id not in (None, "") else None,
        amount=_num(amount),
        currency=props.get("currency"),
        products=products,
    )


def apply_event(
    profile: Profile,
    event: CanonicalEvent,
    rules: IdentityRules,
    *,
    count_order: bool = True,
    count_refund: bool = True,
) -> Changes:
    """Fold one event into the profile (traits, tags, consent, computed attributes)."""
    changes = Changes()
    when = iso(event.timestamp)
    stamp = [when, event.message_id]
    used = profile.trait_bytes() if event.traits else 0
    for name, value in event.traits.items():
        if name == CONSENT_KEY and isinstance(value, dict):
            continue
        if name in (TAGS_KEY, TAGS_REMOVE_KEY) and isinstance(value, list):
            continue
        changed, used = profile.offer_trait(name, value, stamp, rules.strategy(name), used)
        if changed:
            changes.traits[name] = profile.traits[name]
    consent: dict[str, Any] = {}
    for source in (event.context.get(CONSENT_KEY), event.traits.get(CONSENT_KEY)):
        if isinstance(source, dict):
            consent.update(source)
    for channel, granted in consent.items():
        if isinstance(granted, bool) and profile.set_consent(str(channel), granted, when):
            changes.consent[str(channel)] = granted
    tags = event.traits.get(TAGS_KEY)
    if isinstance(tags, list):
        fresh, used = profile.add_tags([str(t) for t in tags], used)
        if fresh:
            changes.tags_added = fresh
    removed = event.traits.get(TAGS_REMOVE_KEY)
    if isinstance(removed, list):
        gone = sorted({str(t) for t in removed} & set(profile.tags))
        if gone:
            profile.tags = [t for t in profile.tags if t not in gone]
            changes.tags_removed = gone
    _apply_computed(profile, event, when, changes, count_order=count_order, count_refund=count_refund)
    if profile.dropped_traits:
        from huiliu.observability import logger

        logger.warning(
            "profile trait budget reached: values not stored",
            extra={"profile_id": profile.profile_id, "dropped": profile.dropped_traits[:20]},
        )
    return changes


def _apply_computed(
    profile: Profile,
    event: CanonicalEvent,
    when: str,
    changes: Changes,
    *,
    count_order: bool,
    count_refund: bool,
) -> None:
    c = profile.computed
    before = dict(c)
    c["event_count"] = int(c.get("event_count", 0)) + 1
    c["first_seen"] = min(c.get("first_seen", when), when)
    c["last_seen"] = max(c.get("last_seen", when), when)
    name = event.event or str(event.type)
    per_event: dict[str, Any] = c.setdefault("events", {})
    if name in per_event or len(per_event) < MAX_EVENT_NAMES:
        entry = per_event.setdefault(name, {"count": 0, "last_at": when})
        entry["count"] = int(entry["count"]) + 1
        entry["last_at"] = max(entry["last_at"], when)
        changes.computed[f"events.{name}"] = dict(entry)
    facts = order_facts(event)
    if facts and event.event in ORDER_EVENTS and count_order:
        c["order_count"] = int(c.get("order_count", 0)) + 1
        c["revenue_total"] = _round(_num(c.get("revenue_total")) + facts.amount)
        c["first_order_at"] = min(c.get("first_order_at", when), when)
        c["last_order_at"] = max(c.get("last_order_at", when), when)
        if facts.currency and _newer_currency(c, facts.currency, when):
            # survivorship by event time: the currency of the latest order that named one
            c["currency"], c["currency_at"] = facts.currency, when
        products = list(c.get("products_bought", []))
        for pid in facts.products:
            if pid not in products:
                products.append(pid)
        c["products_bought"] = products[-MAX_PRODUCTS:]
    if facts and event.event == REFUND_EVENT and count_refund:
        c["refund_count"] = int(c.get("refund_count", 0)) + 1
        c["refunded_total"] = _round(_num(c.get("refunded_total")) + facts.amount)
    _derive(c)
    for key, value in c.items():
        if key != "events" and before.get(key) != value:
            changes.computed[key] = value


def _newer_currency(c: dict[str, Any], currency: str, at: str) -> bool:
    if "currency" not in c:
        return True
    return (at, str(currency)) > (str(c.get("currency_at") or ""), str(c["currency"]))


def _derive(c: dict[str, Any]) -> None:
    if c.get("order_count"):
        c["avg_order_value"] = _round(_num(c.get("revenue_total")) / int(c["order_count"]))
        c["net_revenue"] = _round(_num(c.get("revenue_total")) - _num(c.get("refunded_total")))
    elif c.get("refund_count"):
        c["net_revenue"] = _round(-_num(c.get("refunded_total")))


_SUMS = ("event_count", "order_count", "revenue_total", "refund_count", "refunded_total")
_MINS = ("first_seen", "first_order_at")
_MAXS = ("last_seen", "last_order_at")


def merge_computed(a: dict[str, Any], b: dict[str, Any], *, sign: int = 1) -> dict[str, Any]:
    """Combine two computed-attribute maps (sign=-1 subtracts ``b``, used by unmerge)."""
    out = _dup(a)
    for key in _SUMS:
        if key in b or key in out:
            out[key] = _round(_num(out.get(key)) + sign * _num(b.get(key)))
    if sign > 0:
        for key in _MINS:
            if key in b:
                out[key] = min(out.get(key, b[key]), b[key])
        for key in _MAXS:
            if key in b:
                out[key] = max(out.get(key, b[key]), b[key])
        if "currency" in b and _newer_currency(out, b["currency"], str(b.get("currency_at") or "")):
            out["currency"] = b["currency"]
            out["currency_at"] = b.get("currency_at", "")
        products = list(out.get("products_bought", []))
        for pid in b.get("products_bought", []):
            if pid not in products:
                products.append(pid)
        if products:
            out["products_bought"] = products[-MAX_PRODUCTS:]
    events: dict[str, Any] = out.setdefault("events", {})
    for name, entry in (b.get("events") or {}).items():
        mine = events.get(name)
        if sign > 0:
            if mine is None:
                if len(events) < MAX_EVENT_NAMES:
                    events[name] = dict(entry)
            else:
                mine["count"] = int(mine["count"]) + int(entry["count"])
                mine["last_at"] = max(mine["last_at"], entry["last_at"])
        elif mine is not None:
            mine["count"] = int(mine["count"]) - int(entry["count"])
            if mine["count"] <= 0:
                events.pop(name)
    if sign < 0 and not out.get("order_count"):
        for key in ("avg_order_value", "net_revenue"):
            out.pop(key, None)
    _derive(out)
    return out


def merge_profiles(survivor: Profile, loser: Profile, rules: IdentityRules) -> None:
    """Fold ``loser`` into ``survivor`` (identifiers, traits by strategy, tags, consent, computed)."""
    survivor.add_identifiers(loser.identifiers)
    used = survivor.trait_bytes()
    for name, value in loser.traits.items():
        stamp = loser.trait_meta.get(name, ["", ""])
        strategy = rules.strategy(name)
        if strategy is TraitStrategy.SUM:
            survivor.traits[name] = _round(_num(survivor.traits.get(name)) + _num(value))
            held = survivor.trait_meta.get(name)
            survivor.trait_meta[name] = max(held, stamp) if held else stamp
        else:  # the absorbed profile's traits fold in while they fit the budget
            _changed, used = survivor.offer_trait(name, value, stamp, strategy, used)
    survivor.add_tags(loser.tags, used)
    for channel, entry in loser.consent.items():
        survivor.set_consent(channel, bool(entry.get("granted")), str(entry.get("at", "")))
    survivor.computed = merge_computed(survivor.computed, loser.computed)
    survivor.absorbed = [*survivor.absorbed, loser.profile_id, *loser.absorbed]
    survivor.keep_apart = sorted(set(survivor.keep_apart) | set(loser.keep_apart))
    # Applied-event rings: the survivor's own, then the loser's, newest kept; what is pushed out (or
    # what the loser had already pushed out) moves recent_since, so the ring stays authoritative.
    if survivor.recent_since is None or loser.recent_since is None:
        survivor.recent_since = None  # one side's history is unknown: the union is too
    else:
        survivor.recent_since = max(survivor.recent_since, loser.recent_since)
    # (kept whole here: the service trims it with remember_applied, which moves recent_since)
    survivor.recent = [k for k in loser.recent if k not in survivor.recent] + survivor.recent
    survivor.erased_ids = {**loser.erased_ids, **survivor.erased_ids}
    survivor.merge_count += 1 + loser.merge_count
