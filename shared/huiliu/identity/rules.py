"""Per-tenant identifier rules: limit per profile, priority, strength; blocked values.

Priority: a *lower* number is a *higher* priority. The defaults rank stable, person-unique ids
first (user_id, member_id, wechat_unionid), then platform customer ids, phone, email, the
per-app WeChat openid, and the device-level anonymous_id last. When an event would merge profiles
in a way that breaks a limit, identifiers are considered in this order and the first one decides
where the event goes.

``limit`` is the maximum number of distinct values of that type one profile may hold.
``strong`` identifiers name a person; a weak one (anonymous_id) names a device, which may be
shared. A link made only through a weak identifier never brings together two different values of
a strong type both sides hold (see ``resolution``); otherwise it follows the same limits.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from huiliu.identifiers import InvalidIdentifier, normalize
from huiliu.models import Identifier


@dataclass(frozen=True)
class IdentifierRule:
    type: str
    limit: int
    priority: int
    strong: bool = True


DEFAULT_RULES: dict[str, IdentifierRule] = {
    r.type: r
    for r in (
        IdentifierRule("user_id", limit=1, priority=1),
        IdentifierRule("member_id", limit=1, priority=2),
        IdentifierRule("wechat_unionid", limit=1, priority=3),
        IdentifierRule("shopify_customer_id", limit=5, priority=4),
        IdentifierRule("youzan_open_id", limit=5, priority=5),
        IdentifierRule("phone", limit=3, priority=6),
        IdentifierRule("email", limit=5, priority=7),
        IdentifierRule("wechat_openid", limit=10, priority=8),
        IdentifierRule("anonymous_id", limit=100, priority=100, strong=False),
    )
}
# Custom identifier types (context.externalIds) unless the tenant configures them.
CUSTOM_RULE = IdentifierRule("*", limit=5, priority=50)

# Values that never identify anyone, compared case-insensitively after normalisation.
BLOCKED_WORDS = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "undefined",
        "anonymous",
        "unknown",
        "n/a",
        "na",
        "[object object]",
        "nan",
        "0",
        "-1",
    }
)
# Short words that are placeholders as a whole value but real local parts of an email
# ("nan@163.com", "na@x.cn"): blocked only as whole values.
WHOLE_VALUE_ONLY = frozenset({"na", "nan"})
# All zeros / dashes / blanks (optionally with a leading +): "0000", "----", "+86 000 0000 0000".
_FILLER = re.compile(r"^\+?[0\-\s_.()]*$")
# An email whose local part is filler ("0000@x.com", "null@x.com") is a placeholder too.
_EMAIL_LOCAL = re.compile(r"^([^@]+)@")

# Events with more identifiers than this are cut to the highest-priority ones.
MAX_IDENTIFIERS_PER_EVENT = 20


class TraitStrategy(StrEnum):
    LATEST = "latest"  # the value with the newest event time wins (default)
    FIRST = "first"  # the value with the oldest event time wins
    SUM = "sum"  # numbers add up
    UNION = "union"  # lists become the union of their values


DEFAULT_TRAIT_STRATEGIES: dict[str, TraitStrategy] = {
    "created_at": TraitStrategy.FIRST,
    "signed_up_at": TraitStrategy.FIRST,
    "first_source": TraitStrategy.FIRST,
    "interests": TraitStrategy.UNION,
}


@dataclass(frozen=True)
class MergeGuard:
    """Profiles bigger than this are shared devices or bad data, not people: never merge them."""

    max_identifiers: int = 60
    max_merges: int = 25


@dataclass
class IdentityRules:
    rules: dict[str, IdentifierRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    blocked: frozenset[str] = BLOCKED_WORDS
    guard: MergeGuard = field(default_factory=MergeGuard)
    trait_strategies: dict[str, TraitStrategy] = field(default_factory=lambda: dict(DEFAULT_TRAIT_STRATEGIES))
    default_region: str = "CN"

    @classmethod
    def from_settings(
        cls,
        identity_rules: dict[str, dict[str, Any]] | None = None,
        blocked_values: Iterable[str] = (),
        default_region: str = "CN",
    ) -> IdentityRules:
        """Defaults overlaid with a tenant's ``identity_rules`` and ``blocked_values``.

        ``identity_rules`` maps an identifier type to ``{"limit", "priority", "strong"}``; two
        reserved keys tune the rest: ``"_guard": {"max_identifiers", "max_merges"}`` and
        ``"_traits": {"trait name": "latest|first|sum|union"}``.
        """
        rules = dict(DEFAULT_RULES)
        guard = MergeGuard()
        strategies = dict(DEFAULT_TRAIT_STRATEGIES)
        for kind, override in (identity_rules or {}).items():
            if kind == "_guard":
                guard = MergeGuard(
                    max_identifiers=int(override.get("max_identifiers", guard.max_identifiers)),
                    max_merges=int(override.get("max_merges", guard.max_merges)),
                )
            elif kind == "_traits":
                strategies.update({k: TraitStrategy(v) for k, v in override.items()})
            else:
                base = rules.get(kind, IdentifierRule(kind, CUSTOM_RULE.limit, CUSTOM_RULE.priority))
                rules[kind] = IdentifierRule(
                    kind,
                    limit=int(override.get("limit", base.limit)),
                    priority=int(override.get("priority", base.priority)),
                    strong=bool(override.get("strong", base.strong)),
                )
        blocked = set(BLOCKED_WORDS)
        for raw in blocked_values:
            text = str(raw).strip().lower()
            blocked.add(text)
            for kind in ("phone", "email"):
                with contextlib.suppress(InvalidIdentifier):
                    blocked.add(normalize(kind, raw, default_region).lower())
        return cls(rules, frozenset(blocked), guard, strategies, default_region)

    def rule(self, kind: str) -> IdentifierRule:
        found = self.rules.get(kind)
        return found or IdentifierRule(kind, CUSTOM_RULE.limit, CUSTOM_RULE.priority)

    def is_strong(self, kind: str) -> bool:
        return self.rule(kind).strong

    def sort_key(self, ident: Identifier) -> tuple[int, str, str]:
        return (self.rule(ident.type).priority, ident.type, ident.value)

    def is_blocked(self, ident: Identifier) -> bool:
        value = ident.value.strip().lower()
        if value in self.blocked or _FILLER.match(value):
            return True
        if ident.type == "email":
            local = _EMAIL_LOCAL.match(value)
            part = local.group(1) if local else None
            placeholder = part is not None and (part in self.blocked or _FILLER.match(part))
            if placeholder and part not in WHOLE_VALUE_ONLY:
                return True
        return False

    def strategy(self, trait: str) -> TraitStrategy:
        return self.trait_strategies.get(trait, TraitStrategy.LATEST)

    def clean(self, identifiers: Iterable[Identifier]) -> tuple[list[Identifier], list[Identifier]]:
        """(usable identifiers sorted by priority, dropped ones): normalised, deduped, unblocked."""
        usable: dict[tuple[str, str], Identifier] = {}
        dropped: list[Identifier] = []
        for ident in identifiers:
            try:
                value = normalize(ident.type, ident.value, self.default_region)
            except InvalidIdentifier:
                dropped.append(ident)
                continue
            clean = Identifier(type=ident.type, value=value) if value != ident.value else ident
            if self.is_blocked(clean):
                dropped.append(ident)
                continue
            usable.setdefault((clean.type, clean.value), clean)
        ordered = sorted(usable.values(), key=self.sort_key)
        dropped.extend(ordered[MAX_IDENTIFIERS_PER_EVENT:])
        return ordered[:MAX_IDENTIFIERS_PER_EVENT], dropped

    def within_limits(self, identifiers: Iterable[Identifier]) -> str | None:
        """None when every type stays within its limit, else the first type that breaks it."""
        counts: dict[str, int] = {}
        for ident in identifiers:
            counts[ident.type] = counts.get(ident.type, 0) + 1
        for kind, count in sorted(counts.items(), key=lambda kv: self.rule(kv[0]).priority):
            if count > self.rule(kind).limit:
                return kind
        return None
