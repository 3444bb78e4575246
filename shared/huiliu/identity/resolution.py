"""Which profiles an event links, and whether they may merge (pure; no I/O).

Identifiers are taken in priority order. Each one either
- already belongs to the group the event is heading for (nothing to do),
- is unclaimed and is attached to that group if the limits allow,
- belongs to another profile, which joins the group (a merge) if the combined profile stays
  within every limit and the size guard, or
- conflicts: it is not attached, and the reason is recorded (``identity.conflict``).

Because the first identifier always decides, the highest-priority identifier chooses where the
event goes. Two profiles an admin unmerged carry each other's ids in ``keep_apart``; an event
linking them again does not merge them (reason ``unmerged``).

Weak identifiers (anonymous_id: a device, which may be shared) are weak evidence. A link made only
through one may bring new *types* of identifier together — a sign-up followed by a log-in on the
same browser merges whatever the arrival order — but never a second, different value of a type
both sides already hold: two emails (or phones, or openids) meeting only on a device are two
people at a shared tablet, not one person (reason ``weak_link:<type>``). A second email or phone is
attached on strong evidence: an event that carries it with one of the person's strong identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huiliu.identity.profile import Profile
from huiliu.identity.rules import IdentityRules
from huiliu.models import Identifier


@dataclass(frozen=True)
class Conflict:
    identifier: Identifier
    reason: str  # limit:<type> | weak_link:<type> | guard:identifiers | guard:merges | unmerged
    held_by: str | None = None


@dataclass
class Resolution:
    group: list[str] = field(default_factory=list)  # existing live profile ids that become one
    attach: list[Identifier] = field(default_factory=list)  # unclaimed identifiers to claim
    conflicts: list[Conflict] = field(default_factory=list)
    linked: dict[str, list[Identifier]] = field(default_factory=dict)  # profile id -> ids that linked it

    def survivor(self, profiles: dict[str, Profile]) -> str | None:
        """The oldest profile of the group (creation time, then id, for a total order)."""
        if not self.group:
            return None
        return min(self.group, key=lambda pid: (profiles[pid].created_at, pid))

    @property
    def is_merge(self) -> bool:
        return len(self.group) > 1


def resolve(
    identifiers: list[Identifier],
    owners: dict[Identifier, str],
    profiles: dict[str, Profile],
    rules: IdentityRules,
) -> Resolution:
    """Plan one event: ``identifiers`` sorted by priority, ``owners`` from claims (live ids)."""
    plan = Resolution()
    held: list[Identifier] = []  # identifiers the group would hold
    members: set[str] = set()  # profile ids in the group, with everything they absorbed
    apart: set[str] = set()  # profile ids the group must not merge with (undone merges)
    merges = 0
    for ident in identifiers:
        owner = owners.get(ident)
        if owner is not None and owner in plan.group:
            plan.linked[owner].append(ident)
            continue
        if owner is None:
            candidate = [*held, ident]
            broken = rules.within_limits(candidate)
            if broken:
                plan.conflicts.append(Conflict(ident, f"limit:{broken}"))
            elif len(candidate) > rules.guard.max_identifiers:
                plan.conflicts.append(Conflict(ident, "guard:identifiers"))
            else:
                plan.attach.append(ident)
                held = candidate
            continue
        profile = profiles[owner]
        joining = {profile.profile_id, *profile.absorbed}
        if plan.group and (joining & apart or members & set(profile.keep_apart)):
            plan.conflicts.append(Conflict(ident, "unmerged", owner))
            continue
        candidate = [*held, *(i for i in profile.identifiers if i not in held)]
        broken = rules.within_limits(candidate)
        if held and broken:
            plan.conflicts.append(Conflict(ident, f"limit:{broken}", owner))
            continue
        if held and len(candidate) > rules.guard.max_identifiers:
            plan.conflicts.append(Conflict(ident, "guard:identifiers", owner))
            continue
        if held and not rules.is_strong(ident.type):
            clash = _weak_clash(held, profile.identifiers, rules)
            if clash:
                plan.conflicts.append(Conflict(ident, f"weak_link:{clash}", owner))
                continue
        if plan.group and merges + profile.merge_count + 1 > rules.guard.max_merges:
            plan.conflicts.append(Conflict(ident, "guard:merges", owner))
            continue
        if plan.group:
            merges += profile.merge_count + 1
        else:
            merges = profile.merge_count
        plan.group.append(owner)
        plan.linked[owner] = [ident]
        members |= joining
        apart |= set(profile.keep_apart)
        held = candidate
    return plan


def _weak_clash(ours: list[Identifier], theirs: list[Identifier], rules: IdentityRules) -> str | None:
    """The first strong type both sides hold with values the other side lacks, if any."""
    mine: dict[str, set[str]] = {}
    for ident in ours:
        if rules.is_strong(ident.type):
            mine.setdefault(ident.type, set()).add(ident.value)
    other: dict[str, set[str]] = {}
    for ident in theirs:
        if ident.type in mine:
            other.setdefault(ident.type, set()).add(ident.value)
    for kind in sorted(other, key=lambda k: rules.rule(k).priority):
        if not (mine[kind] <= other[kind] or other[kind] <= mine[kind]):
            return kind
    return None
