"""Journey definitions: the versioned step graph a marketer publishes (YAML or JSON).

Pure pydantic: :func:`parse_definition` turns a document into a :class:`Journey` or raises
:class:`DefinitionError` listing every problem with its path (``steps[2].next: unknown step 'x'``).
What needs the outside world (does segment ``dormant_90_days`` exist? template ``coupon-sms``? the
tenant's longest wait) is passed in as a :class:`Catalog`, so the same function validates in a unit
test, on the CLI and in the admin API before anything is stored.

A document::

    id: signup-coupon
    name: Signed up, no order after 3 days -> coupon SMS
    trigger: {event: Signed Up}             # or {profile_created: true}
                                            # or {segment_entered: dormant_90_days, include_backfill: false}
                                            # or {segment_exited: vip}
    entry: {policy: once}                   # once | every_time | once_per_period (+ period: 30d)
    instance: {key: order_id, max_concurrent: 5}    # per-order instances (key: a trigger property)
    exit: [{event: Order Completed}, {segment_exited: vip}]
    goal: {event: Order Completed, within: 7d}
    holdout_percent: 10
    steps:
      - {id: wait, type: wait, duration: 3d}
      - {id: check, type: branch, did_event: Order Completed, then: end, else: coupon}
      - {id: coupon, type: send, channel: sms, template: coupon-sms, fallback: [email]}

A step's ``next`` defaults to the step after it; ``end`` (or the last step) finishes the journey.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from huiliu.clock import parse_duration

END = "end"
CHANNELS = ("email", "sms", "wechat", "webhook")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_STEPS = 200
DEFAULT_MAX_WAIT = timedelta(days=365)


class DefinitionError(ValueError):
    """A definition was refused; ``problems`` is a list of ``(path, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {r}" if p else r for p, r in problems))

    def as_json(self) -> list[dict[str, str]]:
        return [{"path": p, "reason": r} for p, r in self.problems]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(value: Any) -> str:
    if isinstance(value, int):
        value = f"{value}s"
    parse_duration(str(value))  # raises ValueError with the accepted forms
    return str(value)


# ------------------------------------------------------------------ filters on event properties
Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"]


class PropertyFilter(_Model):
    """``{property: items.sku, op: contains, value: A}``; a dotted path into the event properties.

    ``contains`` on a list of objects matches when any element has the value anywhere in it (so
    ``{property: products, op: contains, value: A}`` finds product A in an order's line items).
    """

    property: str = Field(min_length=1)
    op: Op = "eq"
    value: Any = None


def _filters(value: Any) -> Any:
    """``where`` accepts a list of filters or the short form ``{name: value}`` (equality)."""
    if isinstance(value, dict):
        return [{"property": k, "op": "eq", "value": v} for k, v in value.items()]
    return value


class EventMatch(_Model):
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list)

    _short_where = field_validator("where", mode="before")(classmethod(lambda cls, v: _filters(v)))


# ------------------------------------------------------------------ trigger, entry, instance
class Trigger(_Model):
    event: str | None = Field(default=None, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list)
    profile_created: bool = False
    segment_entered: str | None = None
    segment_exited: str | None = None
    # Segment backfill (a new segment evaluated over existing customers) also enrols, when true.
    include_backfill: bool = False

    _short_where = field_validator("where", mode="before")(classmethod(lambda cls, v: _filters(v)))

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [
            self.event is not None,
            self.profile_created,
            bool(self.segment_entered),
            bool(self.segment_exited),
        ]
        if sum(kinds) != 1:
            raise ValueError("exactly one of event, profile_created, segment_entered, segment_exited")
        if self.where and self.event is None:
            raise ValueError("where filters apply to an event trigger only")
        return self

    @property
    def kind(self) -> str:
        if self.event is not None:
            return "event"
        if self.profile_created:
            return "profile_created"
        return "segment_entered" if self.segment_entered else "segment_exited"


class Entry(_Model):
    policy: Literal["once", "every_time", "once_per_period"] = "once"
    period: str | None = None

    _period = field_validator("period")(classmethod(lambda cls, v: None if v is None else _duration(v)))

    @model_validator(mode="after")
    def _needs_period(self) -> Entry:
        if (self.policy == "once_per_period") != (self.period is not None):
            raise ValueError("period is required with once_per_period and only there")
        return self


class Instance(_Model):
    """Per-order instances: one enrollment per value of a trigger property (e.g. ``order_id``)."""

    key: str = Field(min_length=1)
    max_concurrent: int = Field(default=5, ge=1, le=100)


class ExitCondition(_Model):
    event: str | None = None
    where: list[PropertyFilter] = Field(default_factory=list)
    segment_exited: str | None = None
    segment_entered: str | None = None
    # In a per-order instance, only the same order's event exits it (order id in ``instance.key``).
    same_instance: bool = False

    _short_where = field_validator("where", mode="before")(classmethod(lambda cls, v: _filters(v)))

    @model_validator(mode="after")
    def _one_kind(self) -> ExitCondition:
        if sum([self.event is not None, bool(self.segment_exited), bool(self.segment_entered)]) != 1:
            raise ValueError("exactly one of event, segment_exited, segment_entered")
        return self


class Goal(_Model):
    event: str = Field(min_length=1)
    where: list[PropertyFilter] = Field(default_factory=list)
    within: str = "30d"
    # Reaching the goal ends the journey (else it is counted and the journey continues).
    exit: bool = True

    _short_where = field_validator("where", mode="before")(classmethod(lambda cls, v: _filters(v)))
    _within = field_validator("within")(classmethod(lambda cls, v: _duration(v)))


# ------------------------------------------------------------------ steps
class _Step(_Model):
    id: str = Field(pattern=ID_PATTERN)
    next: str | None = None  # None: the following step; "end": finish


class WaitStep(_Step):
    """Wait a duration, until a weekday and time (person's zone, else tenant's), or for an event."""

    type: Literal["wait"]
    duration: str | None = None
    until: WaitUntil | None = None
    event: EventMatch | None = None
    # With ``event``: only the same instance's event (the same order id) resumes a per-order instance.
    same_instance: bool = True
    timeout: str | None = None
    on_timeout: str | None = None

    _durations = field_validator("duration", "timeout")(
        classmethod(lambda cls, v: None if v is None else _duration(v))
    )

    @model_validator(mode="after")
    def _one_kind(self) -> WaitStep:
        kinds = [self.duration is not None, self.until is not None, self.event is not None]
        if sum(kinds) != 1:
            raise ValueError("a wait has exactly one of duration, until, event")
        if self.event is not None and self.timeout is None:
            raise ValueError("a wait for an event needs a timeout (and on_timeout, default: next)")
        if self.event is None and (self.timeout or self.on_timeout):
            raise ValueError("timeout/on_timeout belong to a wait for an event")
        return self

    def longest(self) -> timedelta:
        if self.duration:
            return parse_duration(self.duration)
        if self.timeout:
            return parse_duration(self.timeout)
        return timedelta(days=7)  # until a weekday: at most a week


class WaitUntil(_Model):
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "any"] = "any"
    time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class BranchStep(_Step):
    """``condition`` (the segment language) and/or ``did_event`` (since entry); both must hold."""

    type: Literal["branch"]
    condition: dict[str, Any] | None = None
    # An event name: true when the person did it after entering (journeys' own record of events).
    did_event: str | None = None
    then: str | None = None  # None: next
    else_: str = Field(default=END, alias="else")

    @model_validator(mode="after")
    def _something(self) -> BranchStep:
        if self.condition is None and self.did_event is None:
            raise ValueError("a branch needs a condition or did_event")
        return self


class SplitPath(_Model):
    percent: float = Field(gt=0, le=100)
    next: str
    name: str | None = None


class SplitStep(_Step):
    """Random split, deterministic per profile (a hash of journey, step and profile)."""

    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=2)

    @model_validator(mode="after")
    def _hundred(self) -> SplitStep:
        if abs(sum(p.percent for p in self.paths) - 100) > 1e-6:
            raise ValueError("split percentages must add up to 100")
        return self


class SendStep(_Step):
    type: Literal["send"]
    channel: Literal["email", "sms", "wechat"]
    template: str = Field(min_length=1)
    fallback: list[Literal["email", "sms", "wechat"]] = Field(default_factory=list)
    purpose: Literal["marketing", "transactional"] = "marketing"
    priority: int = Field(default=5, ge=0, le=9)
    variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fallback", mode="before")
    @classmethod
    def _one_fallback(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class WebhookStep(_Step):
    """An outbound webhook, delivered by notify on channel ``webhook`` (template: the payload)."""

    type: Literal["webhook"]
    template: str = Field(min_length=1)
    variables: dict[str, Any] = Field(default_factory=dict)


class TagStep(_Step):
    type: Literal["tag"]
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> TagStep:
        if not self.add and not self.remove:
            raise ValueError("a tag step adds or removes at least one tag")
        return self


class SetTraitStep(_Step):
    type: Literal["set_trait"]
    traits: dict[str, Any] = Field(min_length=1)


class ExitStep(_Step):
    type: Literal["exit"]


Step = Annotated[
    WaitStep | BranchStep | SplitStep | SendStep | WebhookStep | TagStep | SetTraitStep | ExitStep,
    Field(discriminator="type"),
]
ACTION_TYPES = ("send", "webhook", "tag", "set_trait")


class Journey(_Model):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    description: str = ""
    trigger: Trigger
    entry: Entry = Field(default_factory=Entry)
    instance: Instance | None = None
    exit: list[ExitCondition] = Field(default_factory=list)
    goal: Goal | None = None
    holdout_percent: float = Field(default=0, ge=0, lt=100)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    # Set when stored (the admin API numbers versions); a document may omit it.
    version: int = 0

    @property
    def first_step(self) -> str:
        return self.steps[0].id

    def step(self, step_id: str) -> Any:
        return self._index()[step_id]

    def _index(self) -> dict[str, Any]:
        index = self.__dict__.get("_step_index")
        if index is None:
            index = {s.id: s for s in self.steps}
            self.__dict__["_step_index"] = index
        return index

    def following(self, step_id: str) -> str:
        """The step after ``step_id`` in document order (``end`` after the last)."""
        ids = [s.id for s in self.steps]
        i = ids.index(step_id)
        return ids[i + 1] if i + 1 < len(ids) else END

    def successors(self, step: Any) -> list[str]:
        """Every step ``step`` can go to (``end`` included)."""
        default = step.next or self.following(step.id)
        if isinstance(step, ExitStep):
            return [END]
        if isinstance(step, BranchStep):
            return [step.then or default, step.else_]
        if isinstance(step, SplitStep):
            return [p.next for p in step.paths]
        if isinstance(step, WaitStep) and step.event is not None:
            return [default, step.on_timeout or default]
        return [default]

    def segment_refs(self) -> list[tuple[str, str]]:
        refs = []
        for name in ("segment_entered", "segment_exited"):
            if getattr(self.trigger, name):
                refs.append((f"trigger.{name}", getattr(self.trigger, name)))
        for i, cond in enumerate(self.exit):
            for name in ("segment_entered", "segment_exited"):
                if getattr(cond, name):
                    refs.append((f"exit[{i}].{name}", getattr(cond, name)))
        for i, step in enumerate(self.steps):
            if isinstance(step, BranchStep) and step.condition:
                refs.extend((f"steps[{i}].condition", s) for s in _segments_in(step.condition))
        return refs

    def template_refs(self) -> list[tuple[str, str]]:
        return [
            (f"steps[{i}].template", s.template)
            for i, s in enumerate(self.steps)
            if isinstance(s, SendStep | WebhookStep)
        ]


WaitStep.model_rebuild()


def _segments_in(condition: Any) -> Iterable[str]:
    """Segment ids named in a segment-language condition (``{"segment": id}`` / ``in_segment``)."""
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key in ("segment", "in_segment", "not_in_segment") and isinstance(value, str):
                yield value
            else:
                yield from _segments_in(value)
    elif isinstance(condition, list):
        for item in condition:
            yield from _segments_in(item)


# ------------------------------------------------------------------ validation with paths
@dataclass
class Catalog:
    """What a definition may reference, as known when it is applied (None: not checked)."""

    segments: set[str] | None = None
    templates: set[str] | None = None
    max_wait: timedelta = DEFAULT_MAX_WAIT
    # Compiles a branch condition (the segment language); raises ValueError on a bad one.
    compile_condition: Callable[[dict[str, Any]], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("WaitStep", "BranchStep", "SplitStep", "SendStep", "WebhookStep", "TagStep"):
            continue
        elif isinstance(part, str) and part in (
            "wait",
            "branch",
            "split",
            "send",
            "webhook",
            "tag",
            "set_trait",
            "exit",
        ):
            continue  # pydantic's discriminator tag in the location
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_definition(document: dict[str, Any], catalog: Catalog | None = None) -> Journey:
    """Validate a definition completely; every problem is reported with its path."""
    if not isinstance(document, dict):
        raise DefinitionError([("", "a journey definition is a mapping")])
    try:
        journey = Journey.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append((_path(error.get("loc", ())), message))
        raise DefinitionError(problems) from None
    problems = check_graph(journey, catalog or Catalog())
    if problems:
        raise DefinitionError(problems)
    return journey


def check_graph(journey: Journey, catalog: Catalog) -> list[tuple[str, str]]:
    """References, cycles and limits pydantic cannot see field by field."""
    problems: list[tuple[str, str]] = []
    ids = [s.id for s in journey.steps]
    positions = {sid: i for i, sid in enumerate(ids)}
    seen: set[str] = set()
    for i, sid in enumerate(ids):
        if sid in seen:
            problems.append((f"steps[{i}].id", f"duplicate step id {sid!r}"))
        seen.add(sid)
    if sid_end := next((i for i, s in enumerate(ids) if s == END), None):
        problems.append((f"steps[{sid_end}].id", "'end' is reserved"))
    for i, step in enumerate(journey.steps):
        fields = _ref_fields(step)
        for name, target in fields:
            if target is not None and target != END and target not in positions:
                problems.append((f"steps[{i}].{name}", f"unknown step {target!r}"))
        if isinstance(step, WaitStep):
            longest = step.longest()
            if longest > catalog.max_wait:
                problems.append(
                    (
                        f"steps[{i}]",
                        f"wait of {_days(longest)} is longer than the tenant maximum "
                        f"{_days(catalog.max_wait)}",
                    )
                )
        if isinstance(step, BranchStep) and step.condition is not None and catalog.compile_condition:
            try:
                catalog.compile_condition(step.condition)
            except ValueError as exc:
                problems.append((f"steps[{i}].condition", str(exc)))
    if journey.instance is not None and journey.trigger.kind != "event":
        problems.append(("instance", "per-order instances need an event trigger (the key is its property)"))
    if journey.goal is not None and parse_duration(journey.goal.within) > catalog.max_wait * 2:
        problems.append(("goal.within", "goal window is longer than twice the tenant's maximum wait"))
    cycle = (
        None
        if any("unknown step" in r or "duplicate" in r for _, r in problems)
        else _cycle_without_wait(journey)
    )
    if cycle:
        problems.append((f"steps[{positions[cycle[0]]}]", f"cycle without a wait: {' -> '.join(cycle)}"))
    if catalog.segments is not None:
        for path, seg in journey.segment_refs():
            if seg not in catalog.segments:
                problems.append((path, f"unknown segment {seg!r}"))
    if catalog.templates is not None:
        for path, tpl in journey.template_refs():
            if tpl not in catalog.templates:
                problems.append((path, f"unknown template {tpl!r}"))
    return problems


def _days(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds}s"


def _ref_fields(step: Any) -> list[tuple[str, str | None]]:
    fields: list[tuple[str, str | None]] = [("next", step.next)]
    if isinstance(step, BranchStep):
        fields += [("then", step.then), ("else", step.else_)]
    if isinstance(step, SplitStep):
        fields += [(f"paths[{j}].next", p.next) for j, p in enumerate(step.paths)]
    if isinstance(step, WaitStep):
        fields.append(("on_timeout", step.on_timeout))
    return fields


def _cycle_without_wait(journey: Journey) -> list[str] | None:
    """A loop the interpreter could run forever in one go: every step on it is instant."""
    instant = {s.id: s for s in journey.steps if not isinstance(s, WaitStep)}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(sid: str) -> list[str] | None:
        state[sid] = 1
        stack.append(sid)
        for nxt in journey.successors(instant[sid]):
            if nxt not in instant:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[sid] = 2
        return None

    for sid in instant:
        if sid not in state and (found := visit(sid)):
            return found
    return None


def definition_hash(document: dict[str, Any]) -> str:
    """A stable hash of a definition's content (apply is a no-op when nothing changed)."""
    import hashlib
    import json

    body = {k: v for k, v in document.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:64]
