"""Compile a condition tree ONCE into plain Python closures; evaluate them against a profile.

``compile_condition(node)`` returns a :class:`Compiled`: call it with an :class:`EvalContext` to
get a bool. Nothing is ever ``eval``-ed: every operator is a closure chosen from a fixed table, with
the user's values bound as constants. ``Compiled`` also knows

- ``next_change(ctx)``: the earliest moment after ``ctx.now`` at which the answer could change by
  time alone (a window edge, a lifecycle/RFM boundary), or None — the due index is built from it;
- ``reads``: which profile fields it depends on (so ``profile.changed`` re-evaluates only the
  segments its changed fields can touch);
- ``log_events``: the event names (and numeric properties) whose per-profile occurrence log the
  windowed conditions need.

``explain(node, ctx)`` walks the same tree and reports, per node, whether it held and the value
seen (``huiliu segments why``). Journeys reuse this module for branch conditions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from huiliu.segments.builtin import (
    DEFAULT_MODELS,
    TenantModels,
    epoch,
    lifecycle_stage,
    rfm_group,
    rfm_scores,
    to_epoch,
)
from huiliu.segments.language import (
    AllNode,
    AnyNode,
    ComputedNode,
    ConsentNode,
    EventNode,
    IdentifierNode,
    LifecycleNode,
    NotNode,
    RfmNode,
    RfmScoreNode,
    SegmentRefNode,
    TagNode,
    TraitNode,
    parse_condition,
)

Test = Callable[["EvalContext"], bool]
NextChange = Callable[["EvalContext"], float | None]
_NUM = (int, float)


class EvalContext:
    """Everything a condition may read, for one profile at one moment.

    ``now`` is POSIX seconds; ``events`` is the segments stage's own per-profile occurrence log
    ``{event name: [[posix seconds, {property: number}], ...]}`` (oldest first); ``segments`` holds
    the ids of segments the profile is in, filled in dependency order during one evaluation.
    """

    __slots__ = (
        "_lifecycle",
        "_rfm",
        "computed",
        "consent",
        "events",
        "identifier_types",
        "models",
        "now",
        "segments",
        "tags",
        "traits",
    )

    def __init__(
        self,
        *,
        now: float,
        traits: Mapping[str, Any] | None = None,
        computed: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        consent: Mapping[str, Any] | None = None,
        identifier_types: Iterable[str] = (),
        events: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        segments: set[str] | None = None,
        models: TenantModels = DEFAULT_MODELS,
    ) -> None:
        self.now = now
        self.traits = traits or {}
        self.computed = computed or {}
        self.tags = frozenset(tags)
        self.consent = consent or {}
        self.identifier_types = frozenset(identifier_types)
        self.events = events or {}
        self.segments = segments if segments is not None else set()
        self.models = models
        self._lifecycle: tuple[str, float | None] | None = None
        self._rfm: tuple[tuple[int, int, int] | None, float | None] | None = None

    @classmethod
    def of(
        cls,
        profile: Any,
        *,
        now: float,
        events: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        segments: set[str] | None = None,
        models: TenantModels = DEFAULT_MODELS,
    ) -> EvalContext:
        """From a ProfileSnapshot-like object (attributes) or its dict form."""
        get = profile.get if isinstance(profile, Mapping) else lambda k, d=None: getattr(profile, k, d)
        identifiers = get("identifiers") or []
        types = [i["type"] if isinstance(i, Mapping) else i.type for i in identifiers]
        consent = get("consent") or {}
        return cls(
            now=now,
            traits=get("traits") or {},
            computed=get("computed") or {},
            tags=get("tags") or (),
            consent={k: _consent_entry(v) for k, v in consent.items()},
            identifier_types=types,
            events=events,
            segments=segments,
            models=models,
        )

    def lifecycle(self) -> tuple[str, float | None]:
        if self._lifecycle is None:
            self._lifecycle = lifecycle_stage(self.computed, self.now, self.models.lifecycle)
        return self._lifecycle

    def rfm(self) -> tuple[tuple[int, int, int] | None, float | None]:
        if self._rfm is None:
            self._rfm = rfm_scores(self.computed, self.now, self.models.rfm)
        return self._rfm


def _consent_entry(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return {"granted": bool(value)}


@dataclass(frozen=True)
class Compiled:
    test: Test
    next_change: NextChange
    reads: frozenset[str] = frozenset()
    segment_refs: frozenset[str] = frozenset()
    # event name -> numeric properties to keep in the occurrence log; the longest window (s)
    log_events: Mapping[str, frozenset[str]] = field(default_factory=dict)
    log_horizon: float = 0.0
    log_since: float | None = None  # earliest `between` start (POSIX), if any
    uses_rfm: bool = False

    def __call__(self, ctx: EvalContext) -> bool:
        return self.test(ctx)


def _never(_: EvalContext) -> None:
    return None


# -- value getters ------------------------------------------------------------------------------
def _getter(source: str, path: str) -> Callable[[EvalContext], Any]:
    if source == "trait":

        def trait(c: EvalContext, key: str = path) -> Any:
            return c.traits.get(key)

        return trait
    if source == "rfm_score":
        index = "rfm".index(path)

        def score(c: EvalContext) -> Any:
            scores = c.rfm()[0]
            return None if scores is None else scores[index]

        return score
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "events":
        # event names may contain dots: events.<name>.<count|last_at>
        name, leaf = ".".join(parts[1:-1]), parts[-1]
        if leaf not in ("count", "last_at"):
            name, leaf = ".".join(parts[1:]), ""

        def event_attr(c: EvalContext) -> Any:
            entry = (c.computed.get("events") or {}).get(name)
            if entry is None or not leaf:
                return entry
            return entry.get(leaf)

        return event_attr
    if len(parts) == 1:

        def computed(c: EvalContext, key: str = path) -> Any:
            return c.computed.get(key)

        return computed

    def nested(c: EvalContext) -> Any:
        value: Any = c.computed
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return nested


def _reads_of(source: str, path: str) -> frozenset[str]:
    if source == "trait":
        return frozenset({f"traits.{path}"})
    if source == "rfm_score":
        return frozenset({"computed.order_count", "computed.revenue_total", "computed.last_order_at"})
    parts = path.split(".")
    if parts[0] == "events" and len(parts) > 1:
        name = ".".join(parts[1:-1]) if parts[-1] in ("count", "last_at") else ".".join(parts[1:])
        return frozenset({f"events.{name}"})
    return frozenset({f"computed.{parts[0]}"})


# -- operators ----------------------------------------------------------------------------------
def _as_number(value: Any) -> float | None:
    if value.__class__ in _NUM:
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _ordered(get: Callable[[EvalContext], Any], cmp: Callable[[Any, Any], bool], bound: Any) -> Test:
    if bound.__class__ in _NUM:

        def numeric(c: EvalContext) -> bool:
            v = get(c)
            if v.__class__ is int or v.__class__ is float:
                return cmp(v, bound)
            n = _as_number(v) if v.__class__ is str else None
            return n is not None and cmp(n, bound)

        return numeric

    def textual(c: EvalContext) -> bool:
        v = get(c)
        if v is None or v.__class__ is bool:
            return False
        try:
            return cmp(str(v) if v.__class__ is not str else v, bound)
        except TypeError:
            return False

    return textual


def _hashable(values: Iterable[Any]) -> frozenset[Any]:
    return frozenset(v for v in values if v.__class__ is not list and v.__class__ is not dict)


def _op_test(get: Callable[[EvalContext], Any], name: str, value: Any) -> Test:
    if name == "eq":

        def eq(c: EvalContext) -> bool:
            v = get(c)
            if v.__class__ is list and value.__class__ is not list:
                return value in v
            return v == value

        return eq
    if name == "neq":

        def neq(c: EvalContext) -> bool:
            v = get(c)
            if v.__class__ is list and value.__class__ is not list:
                return value not in v
            return v != value

        return neq
    if name == "in":
        members = _hashable(value)

        def is_in(c: EvalContext) -> bool:
            v = get(c)
            if v.__class__ is list:
                return any(x in members for x in v if x.__class__ is not dict and x.__class__ is not list)
            try:
                return v in members
            except TypeError:
                return False

        return is_in
    if name == "contains":

        def contains(c: EvalContext) -> bool:
            v = get(c)
            if v.__class__ is str:
                return isinstance(value, str) and value in v
            if v.__class__ is list or v.__class__ is dict:
                return value in v
            return False

        return contains
    if name == "starts_with":

        def starts_with(c: EvalContext) -> bool:
            v = get(c)
            return v.__class__ is str and v.startswith(value)

        return starts_with
    if name == "exists":
        if value:
            return lambda c: get(c) is not None
        return lambda c: get(c) is None
    if name in ("gt", "gte", "lt", "lte"):
        cmp = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[name]
        return _ordered(get, cmp, value)
    if name == "between":
        lo, hi = _ordered(get, operator.ge, value[0]), _ordered(get, operator.le, value[1])
        return lambda c: lo(c) and hi(c)
    if name in ("within", "older_than"):
        span = value.seconds
        recent = name == "within"

        def timed(c: EvalContext) -> bool:
            at = to_epoch(get(c))
            if at is None:
                return False
            return (c.now - at < span) if recent else (c.now - at >= span)

        return timed
    raise AssertionError(f"unknown operator {name}")  # pragma: no cover


# -- fast paths: a top-level trait or computed attribute, read inline (no getter call) ------------
_SECTIONS = {"trait": operator.attrgetter("traits"), "computed": operator.attrgetter("computed")}


def _fast_compare(src: Callable[[EvalContext], Any], key: str, name: str, bound: Any, slow: Test) -> Test:
    if name == "gte":

        def gte(c: EvalContext) -> bool:
            v = src(c).get(key)
            return v >= bound if v.__class__ is int or v.__class__ is float else slow(c)

        return gte
    if name == "gt":

        def gt(c: EvalContext) -> bool:
            v = src(c).get(key)
            return v > bound if v.__class__ is int or v.__class__ is float else slow(c)

        return gt
    if name == "lte":

        def lte(c: EvalContext) -> bool:
            v = src(c).get(key)
            return v <= bound if v.__class__ is int or v.__class__ is float else slow(c)

        return lte

    def lt(c: EvalContext) -> bool:
        v = src(c).get(key)
        return v < bound if v.__class__ is int or v.__class__ is float else slow(c)

    return lt


def _fast_test(source: str, key: str, name: str, value: Any, slow: Test) -> Test:
    """The same answer as ``slow`` (the generic closure), with the common case inlined."""
    src = _SECTIONS[source]
    if name in ("gt", "gte", "lt", "lte") and value.__class__ in _NUM:
        return _fast_compare(src, key, name, value, slow)
    if name == "eq" and value.__class__ is not list:

        def eq(c: EvalContext) -> bool:
            v = src(c).get(key)
            return value in v if v.__class__ is list else v == value

        return eq
    if name == "in":
        members = _hashable(value)

        def is_in(c: EvalContext) -> bool:
            v = src(c).get(key)
            if v.__class__ is str or v.__class__ is int:
                return v in members
            return slow(c)

        return is_in
    if name in ("within", "older_than"):
        span = value.seconds
        recent = name == "within"

        def timed(c: EvalContext) -> bool:
            v = src(c).get(key)
            if v.__class__ is not str:
                return slow(c)
            try:
                at = epoch(v)
            except ValueError:
                return False
            return (c.now - at < span) if recent else (c.now - at >= span)

        return timed
    return slow


def _op_next_change(get: Callable[[EvalContext], Any], name: str, value: Any) -> NextChange:
    if name not in ("within", "older_than"):
        return _never
    span = value.seconds

    def edge(c: EvalContext) -> float | None:
        at = to_epoch(get(c))
        if at is None:
            return None
        moment = at + span
        return moment if moment > c.now else None

    return edge


# -- combinators --------------------------------------------------------------------------------
def _all(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda c: a(c) and b(c)
    if len(tests) == 3:
        a, b, d = tests
        return lambda c: a(c) and b(c) and d(c)
    if len(tests) == 4:
        a, b, d, e = tests
        return lambda c: a(c) and b(c) and d(c) and e(c)
    frozen = tuple(tests)

    def every(c: EvalContext) -> bool:
        for t in frozen:  # noqa: SIM110  (a loop beats all() over a generator here)
            if not t(c):
                return False
        return True

    return every


def _any(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda c: a(c) or b(c)
    if len(tests) == 3:
        a, b, d = tests
        return lambda c: a(c) or b(c) or d(c)
    frozen = tuple(tests)

    def some(c: EvalContext) -> bool:
        for t in frozen:  # noqa: SIM110
            if t(c):
                return True
        return False

    return some


def _earliest(changes: list[NextChange]) -> NextChange:
    live = [f for f in changes if f is not _never]
    if not live:
        return _never
    if len(live) == 1:
        return live[0]

    def earliest(c: EvalContext) -> float | None:
        best: float | None = None
        for f in live:
            moment = f(c)
            if moment is not None and (best is None or moment < best):
                best = moment
        return best

    return earliest


# -- event conditions ---------------------------------------------------------------------------
def _event_parts(node: EventNode) -> tuple[Callable[[EvalContext], Any], Test, NextChange]:
    """(value getter for explain, test, next change) of an event condition."""
    name = node.event

    def entry(c: EvalContext) -> Mapping[str, Any] | None:
        return (c.computed.get("events") or {}).get(name)

    def last_at(c: EvalContext) -> float | None:
        e = entry(c)
        return to_epoch(e.get("last_at")) if e else None

    if node.last is not None:
        recent = node.last.within is not None
        span = (node.last.within or node.last.older_than).seconds  # type: ignore[union-attr]

        def last_test(c: EvalContext) -> bool:
            at = last_at(c)
            if at is None:
                return False
            return (c.now - at < span) if recent else (c.now - at >= span)

        def last_edge(c: EvalContext) -> float | None:
            at = last_at(c)
            return at + span if at is not None and at + span > c.now else None

        return lambda c: (entry(c) or {}).get("last_at"), last_test, last_edge

    if not node.windowed_log:
        # all-time counts, or "happened / never within P30D": identity's counters are exact
        if node.within is None:

            def total(c: EvalContext) -> int:
                e = entry(c)
                return int(e.get("count") or 0) if e else 0

            if node.count is not None:
                op, value = node.count.op
                return total, _op_test(total, op, value), _never
            if node.never:
                return total, lambda c: total(c) == 0, _never
            return total, lambda c: total(c) > 0, _never
        span = node.within.seconds

        def happened(c: EvalContext) -> bool:
            at = last_at(c)
            return at is not None and c.now - at < span

        def window_edge(c: EvalContext) -> float | None:
            at = last_at(c)
            return at + span if at is not None and at + span > c.now else None

        if node.never:
            return (lambda c: (entry(c) or {}).get("last_at")), (lambda c: not happened(c)), window_edge
        return (lambda c: (entry(c) or {}).get("last_at")), happened, window_edge

    # windowed counts and sums from the per-profile occurrence log
    if node.between is not None:
        start, end = node.between[0].timestamp(), node.between[1].timestamp()

        def bounds(c: EvalContext) -> tuple[float, float]:
            # [start, end) and nothing after now; the log holds whole seconds
            return start - 1e-6, min(end, c.now + 1e-6)

        def between_edge(c: EvalContext) -> float | None:
            return start if start > c.now else end if end > c.now else None

        edge: NextChange = between_edge
    else:
        span = node.within.seconds  # type: ignore[union-attr]

        def bounds(c: EvalContext) -> tuple[float, float]:
            # a source clock slightly ahead of ours still counts (as "happened within" does)
            return c.now - span, float("inf")

        def oldest_expiry(c: EvalContext) -> float | None:
            cut = c.now - span
            for occurrence in c.events.get(name, ()):
                if occurrence[0] > cut:
                    return occurrence[0] + span
            return None

        edge = oldest_expiry

    if node.sum is not None:
        prop = node.sum.property

        def measure(c: EvalContext) -> float:
            lo, hi = bounds(c)
            total = 0.0
            for occurrence in c.events.get(name, ()):
                if lo < occurrence[0] < hi:
                    props = occurrence[1] if len(occurrence) > 1 else {}
                    number = props.get(prop)
                    if number.__class__ in _NUM:
                        total += number
            return total

        op, value = node.sum.op
        return measure, _op_test(measure, op, value), edge

    def count(c: EvalContext) -> int:
        lo, hi = bounds(c)
        n = 0
        for occurrence in c.events.get(name, ()):
            if lo < occurrence[0] < hi:
                n += 1
        return n

    if node.count is not None:
        op, value = node.count.op
        return count, _op_test(count, op, value), edge
    if node.never:
        return count, lambda c: count(c) == 0, edge
    return count, lambda c: count(c) > 0, edge


# -- the compiler -------------------------------------------------------------------------------
def _leaf(node: Any) -> tuple[Callable[[EvalContext], Any], Test, NextChange]:
    """(value getter, test, next change) for any leaf node."""
    if isinstance(node, TraitNode | ComputedNode | RfmScoreNode):
        source = node.KIND
        path = (
            node.trait
            if isinstance(node, TraitNode)
            else node.computed
            if isinstance(node, ComputedNode)
            else node.rfm_score
        )
        get = _getter(source, path)
        op, value = node.ops.op
        change = _op_next_change(get, op, value)
        test = _op_test(get, op, value)
        if source in _SECTIONS and "." not in path:
            test = _fast_test(source, path, op, value, test)
        if source == "rfm_score":
            rfm_change = lambda c: c.rfm()[1]  # noqa: E731
            change = _earliest([change, rfm_change])
        return get, test, change
    if isinstance(node, TagNode):
        tag = node.tag
        return (lambda c: sorted(c.tags)), (lambda c: tag in c.tags), _never
    if isinstance(node, ConsentNode):
        channel, wanted = node.consent, node.granted

        def consent_value(c: EvalContext) -> Any:
            entry = c.consent.get(channel)
            return None if entry is None else bool(entry.get("granted"))

        if wanted:
            return consent_value, (lambda c: consent_value(c) is True), _never
        return consent_value, (lambda c: consent_value(c) is False), _never
    if isinstance(node, IdentifierNode):
        kind = node.identifier
        return (lambda c: sorted(c.identifier_types)), (lambda c: kind in c.identifier_types), _never
    if isinstance(node, EventNode):
        return _event_parts(node)
    if isinstance(node, LifecycleNode):
        stages = frozenset(node.lifecycle)
        stage = lambda c: c.lifecycle()[0]  # noqa: E731
        return stage, (lambda c: stage(c) in stages), (lambda c: c.lifecycle()[1])
    if isinstance(node, RfmNode):
        groups = frozenset(node.rfm)

        def group(c: EvalContext) -> str | None:
            return rfm_group(c.rfm()[0])

        return group, (lambda c: group(c) in groups), (lambda c: c.rfm()[1])
    if isinstance(node, SegmentRefNode):
        sid = node.segment
        return (lambda c: sid in c.segments), (lambda c: sid in c.segments), _never
    raise TypeError(f"not a condition node: {node!r}")


_LIFECYCLE_READS = frozenset(
    {"computed.order_count", "computed.first_order_at", "computed.last_order_at", "computed.revenue_total"}
)


def _leaf_reads(node: Any) -> frozenset[str]:
    if isinstance(node, TraitNode):
        return _reads_of("trait", node.trait)
    if isinstance(node, ComputedNode):
        return _reads_of("computed", node.computed)
    if isinstance(node, RfmScoreNode | LifecycleNode | RfmNode):
        return _LIFECYCLE_READS | {"computed.net_revenue"}
    if isinstance(node, TagNode):
        return frozenset({"tags"})
    if isinstance(node, ConsentNode):
        return frozenset({f"consent.{node.consent}"})
    if isinstance(node, IdentifierNode):
        return frozenset({f"identifiers.{node.identifier}"})
    if isinstance(node, EventNode):
        return frozenset({f"events.{node.event}"})
    if isinstance(node, SegmentRefNode):
        return frozenset({f"segment.{node.segment}"})
    return frozenset()


def compile_condition(node: Any) -> Compiled:
    """Compile a condition (a parsed node or its plain dict/YAML form) into closures."""
    if isinstance(node, Mapping):
        node = parse_condition(node)
    if isinstance(node, AllNode | AnyNode):
        nodes = node.all if isinstance(node, AllNode) else node.any
        children = [compile_condition(child) for child in nodes]
        tests = [c.test for c in children]
        combined = _all(tests) if isinstance(node, AllNode) else _any(tests)
        return _merge(combined, children)
    if isinstance(node, NotNode):
        inner = compile_condition(node.not_)
        test = inner.test
        return _merge(lambda c: not test(c), [inner])
    _get, test, change = _leaf(node)
    log: dict[str, frozenset[str]] = {}
    horizon, since = 0.0, None
    if isinstance(node, EventNode) and node.windowed_log:
        log[node.event] = frozenset({node.sum.property} if node.sum else ())
        if node.within is not None:
            horizon = node.within.seconds
        if node.between is not None:
            since = node.between[0].timestamp()
    refs = frozenset({node.segment}) if isinstance(node, SegmentRefNode) else frozenset()
    rfm = isinstance(node, RfmNode | RfmScoreNode)
    return Compiled(test, change, _leaf_reads(node), refs, log, horizon, since, rfm)


def _merge(test: Test, children: list[Compiled]) -> Compiled:
    log: dict[str, frozenset[str]] = {}
    for child in children:
        for name, props in child.log_events.items():
            log[name] = log.get(name, frozenset()) | props
    sinces = [c.log_since for c in children if c.log_since is not None]
    return Compiled(
        test=test,
        next_change=_earliest([c.next_change for c in children]),
        reads=frozenset().union(*(c.reads for c in children)),
        segment_refs=frozenset().union(*(c.segment_refs for c in children)),
        log_events=log,
        log_horizon=max((c.log_horizon for c in children), default=0.0),
        log_since=min(sinces) if sinces else None,
        uses_rfm=any(c.uses_rfm for c in children),
    )


# -- explain ------------------------------------------------------------------------------------
def _describe(node: Any) -> dict[str, Any]:
    data = node.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for key in ("all", "any", "not"):
        data.pop(key, None)
    return data


def explain(node: Any, ctx: EvalContext) -> dict[str, Any]:
    """Per node: the condition, whether it held, and (for leaves) the value seen."""
    if isinstance(node, Mapping):
        node = parse_condition(node)
    if isinstance(node, AllNode | AnyNode):
        key = "all" if isinstance(node, AllNode) else "any"
        children = [explain(child, ctx) for child in getattr(node, key)]
        held = all(c["held"] for c in children) if key == "all" else any(c["held"] for c in children)
        return {"node": key, "held": held, "children": children}
    if isinstance(node, NotNode):
        inner = explain(node.not_, ctx)
        return {"node": "not", "held": not inner["held"], "children": [inner]}
    get, test, _ = _leaf(node)
    seen = get(ctx)
    if isinstance(seen, float | int) and not isinstance(seen, bool):
        seen = round(seen, 6)
    return {"node": node.KIND, "condition": _describe(node), "held": bool(test(ctx)), "seen": seen}
