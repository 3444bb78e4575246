"""The segment language: YAML/JSON definitions -> validated pydantic models.

A definition is ``{id, name, description, condition}``; a condition is a tree of nodes, each a
mapping with exactly one *kind* key:

- ``all: [..]`` / ``any: [..]`` / ``not: {..}``
- ``trait: NAME`` / ``computed: PATH`` + one operator (``eq neq in contains starts_with exists gt
  gte lt lte between``, and for timestamps ``within: P30D`` / ``older_than: P90D``)
- ``tag: NAME`` (the profile has the tag), ``consent: CHANNEL`` (+ ``granted: false``),
  ``identifier: TYPE`` (the profile has one)
- ``event: NAME`` with an optional window (``within: P30D`` or ``between: [date, date]``) and one
  measure: none (it happened), ``never: true``, ``count: {gte: 3}``, ``sum: {property: revenue,
  gte: 100}``, or ``last: {within: P7D}`` / ``last: {older_than: P90D}``
- ``lifecycle: active`` (or a list), ``rfm: champions`` (or a list), ``rfm_score: r|f|m`` + operator
- ``segment: OTHER_ID`` (membership of another segment of the tenant)

Unknown keys are refused, and every error names the path of the bad node
(``condition.all[1].event.count``). Whole-definition checks (cycles between segments, windows that
cannot be evaluated) live in :func:`check_definitions`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

# Event windows are answered from the segments stage's own per-profile event log, which keeps at
# most this much history and this many occurrences per event name (see docs/segments.md).
MAX_WINDOW_DAYS = 400
MAX_LOG_PER_EVENT = 100
SEGMENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
LIFECYCLE_STAGES = ("prospect", "new", "active", "repeat", "at_risk", "churned")
RFM_GROUPS = (
    "champions",
    "loyal",
    "potential",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)
OPERATORS = (
    "eq",
    "neq",
    "in",
    "contains",
    "starts_with",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "within",
    "older_than",
)
KINDS = (
    "all",
    "any",
    "not",
    "trait",
    "computed",
    "tag",
    "consent",
    "identifier",
    "event",
    "lifecycle",
    "rfm",
    "rfm_score",
    "segment",
)
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class SegmentLanguageError(ValueError):
    """An invalid definition: ``problems`` is a list of ``(path, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in problems))


def parse_duration(text: str) -> timedelta:
    """ISO-8601 duration in weeks, days, hours, minutes, seconds (``P30D``, ``PT12H``, ``P1W2D``).

    Months and years are refused: their length depends on the calendar, a window must not.
    """
    if not isinstance(text, str):
        raise ValueError("a duration is an ISO-8601 string such as P30D")
    value = text.strip().upper()
    match = _DURATION.match(value)
    if not match or value in ("P", "PT") or value.endswith("T"):
        date_part = value.split("T")[0]
        if value.startswith("P") and ("Y" in date_part or "M" in date_part):
            raise ValueError(f"{text!r}: months and years have no fixed length, use days (P30D)")
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as P30D, PT12H or P2W")
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    delta = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if delta <= timedelta(0):
        raise ValueError(f"{text!r}: a window must be longer than zero")
    return delta


class Duration(str):
    """A validated ISO-8601 duration; ``seconds`` is its length."""

    seconds: float

    def __new__(cls, text: str) -> Duration:
        delta = parse_duration(text)
        obj = super().__new__(cls, text.strip().upper())
        obj.seconds = delta.total_seconds()
        return obj

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Duration) else cls(v),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _moment(value: Any) -> datetime:
    """A date or ISO timestamp -> aware UTC datetime (a bare date is midnight UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date or ISO-8601 timestamp") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"{value!r} is not a date or ISO-8601 timestamp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


Scalar = str | int | float | bool | None


class _Operators(_Strict):
    """The comparison operators: :class:`Ops` takes exactly one; a leaf node takes one inline."""

    eq: Scalar | list[Any] = None
    neq: Scalar | list[Any] = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    contains: Scalar = None
    starts_with: str | None = None
    exists: bool | None = None
    gt: str | int | float | None = None
    gte: str | int | float | None = None
    lt: str | int | float | None = None
    lte: str | int | float | None = None
    between: tuple[str | int | float, str | int | float] | None = None
    within: Duration | None = None
    older_than: Duration | None = None


class Ops(_Operators):
    """Exactly one comparison operator."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Ops:
        fields = self.model_fields_set
        given = [name for name in OPERATORS if name in fields or f"{name}_" in fields]
        if len(given) != 1:
            listed = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one operator of {', '.join(OPERATORS)} (got {listed})")
        if self.between is not None and _lt(self.between[1], self.between[0]):
            raise ValueError("between: the lower bound comes first")
        return self

    @property
    def op(self) -> tuple[str, Any]:
        for name in OPERATORS:
            field = "in_" if name == "in" else name
            if field in self.model_fields_set:
                return name, getattr(self, field)
        raise AssertionError("validated: one operator")  # pragma: no cover


def _lt(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        return False


class _OpNode(_Operators):
    """A leaf whose value is compared with one operator given inline (``{trait: x, gte: 1}``)."""

    @model_validator(mode="after")
    def _one_op(self) -> _OpNode:
        self.ops  # noqa: B018  (validates)
        return self

    @property
    def ops(self) -> Ops:
        fields = {n: getattr(self, n) for n in self.model_fields_set if n in Ops.model_fields}
        return Ops.model_validate({("in" if k == "in_" else k): v for k, v in fields.items()})


class AllNode(_Strict):
    KIND: ClassVar[str] = "all"
    all: list[Condition] = Field(min_length=1)


class AnyNode(_Strict):
    KIND: ClassVar[str] = "any"
    any: list[Condition] = Field(min_length=1)


class NotNode(_Strict):
    KIND: ClassVar[str] = "not"
    not_: Condition = Field(alias="not")


class TraitNode(_OpNode):
    KIND: ClassVar[str] = "trait"
    trait: str = Field(min_length=1, max_length=200)


class ComputedNode(_OpNode):
    """A computed attribute of identity (``order_count``, ``revenue_total``, ``last_order_at``,
    ``events.Order Completed.count`` …): a dotted path into ``profile.computed``."""

    KIND: ClassVar[str] = "computed"
    computed: str = Field(min_length=1, max_length=300)


class RfmScoreNode(_OpNode):
    KIND: ClassVar[str] = "rfm_score"
    rfm_score: Literal["r", "f", "m"]


class TagNode(_Strict):
    KIND: ClassVar[str] = "tag"
    tag: str = Field(min_length=1, max_length=200)


class ConsentNode(_Strict):
    KIND: ClassVar[str] = "consent"
    consent: Literal["email", "sms", "wechat", "webhook"]
    granted: bool = True


class IdentifierNode(_Strict):
    KIND: ClassVar[str] = "identifier"
    identifier: str = Field(min_length=1, max_length=64)


class SumSpec(Ops):
    property: str = Field(min_length=1, max_length=200)


class LastSpec(_Strict):
    within: Duration | None = None
    older_than: Duration | None = None

    @model_validator(mode="after")
    def _one(self) -> LastSpec:
        if (self.within is None) == (self.older_than is None):
            raise ValueError("last: give exactly one of within, older_than")
        return self


class EventNode(_Strict):
    KIND: ClassVar[str] = "event"
    event: str = Field(min_length=1, max_length=200)
    within: Duration | None = None
    between: tuple[datetime, datetime] | None = None
    never: bool = False
    count: Ops | None = None
    sum: SumSpec | None = None
    last: LastSpec | None = None

    @field_validator("between", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError("between takes two dates: [start, end]")
        return tuple(_moment(v) for v in value)

    @model_validator(mode="after")
    def _evaluable(self) -> EventNode:
        measures = [m for m in ("never", "count", "sum", "last") if getattr(self, m)]
        if len(measures) > 1:
            raise ValueError(f"give at most one of never, count, sum, last (got {', '.join(measures)})")
        if self.within is not None and self.between is not None:
            raise ValueError("give one window: within or between")
        if self.within is not None and self.within.seconds > MAX_WINDOW_DAYS * 86400:
            raise ValueError(f"within: windows longer than P{MAX_WINDOW_DAYS}D cannot be evaluated")
        if self.between is not None:
            start, end = self.between
            if end <= start:
                raise ValueError("between: the end must be after the start")
            if (end - start).days > MAX_WINDOW_DAYS:
                raise ValueError(f"between: windows longer than {MAX_WINDOW_DAYS} days cannot be evaluated")
        if self.last is not None and (self.within is not None or self.between is not None):
            raise ValueError("last: takes its own within/older_than, not a window")
        if self.sum is not None and self.within is None and self.between is None:
            raise ValueError("sum needs a window (within or between): all-time sums are not kept")
        if self.count is not None:
            name, value = self.count.op
            if name in ("within", "older_than", "starts_with", "contains"):
                raise ValueError(f"count: {name} does not compare a number")
            numbers = value if isinstance(value, list | tuple) else [value]
            windowed = self.within is not None or self.between is not None
            for number in numbers:
                if isinstance(number, bool) or not isinstance(number, int | float | None):
                    raise ValueError("count compares with a number")
                if windowed and number is not None and number > MAX_LOG_PER_EVENT:
                    raise ValueError(
                        f"count: windowed counts are kept up to {MAX_LOG_PER_EVENT}; a higher threshold "
                        "cannot be evaluated"
                    )
        return self

    @property
    def windowed_log(self) -> bool:
        """True when the condition needs the per-profile event log (not just identity's counters)."""
        if self.between is not None:
            return True
        return self.within is not None and (self.count is not None or self.sum is not None)


def _names(value: Any, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"give a {what} or a list of them")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}: one of {', '.join(allowed)}")
    return tuple(names)


class LifecycleNode(_Strict):
    KIND: ClassVar[str] = "lifecycle"
    lifecycle: tuple[str, ...]

    @field_validator("lifecycle", mode="before")
    @classmethod
    def _stages(cls, value: Any) -> tuple[str, ...]:
        return _names(value, LIFECYCLE_STAGES, "lifecycle stage")


class RfmNode(_Strict):
    KIND: ClassVar[str] = "rfm"
    rfm: tuple[str, ...]

    @field_validator("rfm", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> tuple[str, ...]:
        return _names(value, RFM_GROUPS, "RFM group")


class SegmentRefNode(_Strict):
    KIND: ClassVar[str] = "segment"
    segment: str = Field(pattern=SEGMENT_ID_PATTERN)


def _kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        found = [k for k in KINDS if k in value]
        return f"#{found[0]}" if len(found) == 1 else None
    return f"#{value.KIND}" if hasattr(value, "KIND") else None


Condition = Annotated[
    Union[  # noqa: UP007  (Annotated members need the Union form)
        Annotated[AllNode, Tag("#all")],
        Annotated[AnyNode, Tag("#any")],
        Annotated[NotNode, Tag("#not")],
        Annotated[TraitNode, Tag("#trait")],
        Annotated[ComputedNode, Tag("#computed")],
        Annotated[TagNode, Tag("#tag")],
        Annotated[ConsentNode, Tag("#consent")],
        Annotated[IdentifierNode, Tag("#identifier")],
        Annotated[EventNode, Tag("#event")],
        Annotated[LifecycleNode, Tag("#lifecycle")],
        Annotated[RfmNode, Tag("#rfm")],
        Annotated[RfmScoreNode, Tag("#rfm_score")],
        Annotated[SegmentRefNode, Tag("#segment")],
    ],
    Discriminator(
        _kind,
        custom_error_type="condition_kind",
        custom_error_message=f"a condition is a mapping with exactly one of: {', '.join(KINDS)}",
    ),
]

AllNode.model_rebuild()
AnyNode.model_rebuild()
NotNode.model_rebuild()


class SegmentDefinition(_Strict):
    """One segment as the user writes it (the stored item adds version and timestamps)."""

    id: str = Field(pattern=SEGMENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    condition: Condition

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"id"}) | {
            "id": self.id
        }


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("#"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = [p for p in error.get("loc", ()) if p not in ("function-after[_exactly_one(), Ops]",)]
        loc = [("in" if p == "in_" else "not" if p == "not_" else p) for p in loc]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        path = _path(loc)
        problems.append((f"{prefix}{path}" if prefix else path, message))
    return problems


def parse_definition(data: Any, *, where: str = "") -> SegmentDefinition:
    """Validate one definition (already loaded from YAML/JSON); SegmentLanguageError on failure."""
    if not isinstance(data, Mapping):
        raise SegmentLanguageError([(where or "(root)", "a segment definition is a mapping")])
    try:
        return SegmentDefinition.model_validate(data)
    except ValidationError as exc:
        raise SegmentLanguageError(_problems(exc, f"{where}:" if where else "")) from None


def parse_condition(data: Any) -> Any:
    """Validate a bare condition tree (journeys' branch conditions use the same language)."""
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(Condition).validate_python(data)
    except ValidationError as exc:
        raise SegmentLanguageError(_problems(exc)) from None


def load_documents(text: str) -> list[Any]:
    """YAML (one or more ``---`` documents, or a list) or JSON text -> plain data items."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        else:
            return data if isinstance(data, list) else [data]
    import yaml

    docs: list[Any] = []
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        docs.extend(doc if isinstance(doc, list) else [doc])
    return docs


# -- whole-definition checks --------------------------------------------------------------------
def walk(node: Any) -> Iterator[Any]:
    """Every node of a condition tree, depth first."""
    yield node
    if isinstance(node, AllNode):
        for child in node.all:
            yield from walk(child)
    elif isinstance(node, AnyNode):
        for child in node.any:
            yield from walk(child)
    elif isinstance(node, NotNode):
        yield from walk(node.not_)


def references(definition: SegmentDefinition) -> set[str]:
    return {n.segment for n in walk(definition.condition) if isinstance(n, SegmentRefNode)}


def check_definitions(definitions: Mapping[str, SegmentDefinition]) -> list[str]:
    """Check a tenant's whole set: every referenced segment exists and there is no cycle.

    Returns the ids in evaluation order (a segment after every segment it uses).
    """
    problems: list[tuple[str, str]] = []
    for sid, definition in definitions.items():
        for ref in sorted(references(definition)):
            if ref not in definitions:
                problems.append((f"{sid}:condition", f"uses segment {ref!r}, which does not exist"))
    if problems:
        raise SegmentLanguageError(problems)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(sid: str, trail: list[str]) -> None:
        if state.get(sid) == 2:
            return
        if state.get(sid) == 1:
            cycle = [*trail[trail.index(sid) :], sid]
            raise SegmentLanguageError([(f"{sid}:condition", "segment cycle: " + " -> ".join(cycle))])
        state[sid] = 1
        for ref in sorted(references(definitions[sid])):
            visit(ref, [*trail, sid])
        state[sid] = 2
        order.append(sid)

    for sid in sorted(definitions):
        visit(sid, [])
    return order
