"""What a policy change does to people: per role, which fields it gains or loses.

For every declared role (with everything it inherits) and every (type, action, purpose), each
field's *access* is worked out statically from the rules that apply:

- ``allow`` / ``mask``            an unconditional rule grants it and no deny rule can interfere;
- ``allow if R1/R2``            granted when one of the conditional rules R1, R2 holds;
- ``allow unless D``            granted, but the conditional deny rule D can take it away;
- ``none``                      no rule grants it, or an unconditional deny rule removes it.

Comparing the access maps of two policies gives the changes, with the number of employees holding
the role (``role_holders``), so a reviewer sees "billing (3 people) gains iban on customer/read/care".
The record as a whole appears as the field ``*``.

A condition that reads only what the cell itself fixes -- the roles and bases held
(``g(r.sub.id, "basis:clinical")``), the purpose, action, field and type -- is settled for the
cell (:func:`settler`): a deny that always applies removes the access, one that never applies is
not listed; the same for allow rules. Conditions on the record, the person's attributes or the
date stay conditional.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from accessd.policy.compile import CompiledPolicy, CRule, Entry
from accessd.policy.policyset import PolicySet

RANK = {"none": 0, "mask": 1, "allow": 2}


@dataclass(frozen=True)
class Access:
    level: str  # allow | mask | none
    when: tuple[str, ...] = ()  # conditional allow rules (any of them); () = unconditionally granted
    unless: tuple[str, ...] = ()  # conditional deny rules that can take it away

    @property
    def conditional(self) -> bool:
        return bool(self.when or self.unless)

    def __str__(self) -> str:
        out = self.level
        if self.when:
            out += f" if {'/'.join(self.when)}"
        if self.unless:
            out += f" unless {'/'.join(self.unless)}"
        return out


NONE = Access("none")


class _Unknown(Exception):
    """A condition read something a cell does not fix (the record, the person, the date)."""


class _Opaque:
    def __getitem__(self, key):
        raise _Unknown


_OPAQUE = _Opaque()

#: rule -> True (always holds in the cell), False (never), None (depends on the request)
Settle = Callable[[CRule], bool | None]


def settler(
    compiled: CompiledPolicy, principals: frozenset, rtype: str, action: str, purpose: str, field: str | None
) -> Settle:
    """What each rule's condition comes to in one cell for ``principals``, where it can be known.

    A condition that raises on what it can read fails closed, as in the engine: a deny holds, an
    allow does not."""

    def settle(rule: CRule) -> bool | None:
        if rule.cond is None:
            return True
        fn = compiled.conditions[rule.cond]
        try:
            return bool(fn(_OPAQUE, _OPAQUE, _OPAQUE, purpose, action, field or "*", rtype, principals))
        except _Unknown:
            return None
        except Exception:  # noqa: BLE001 - a broken condition: fail closed, like the engine
            return rule.eft == "deny"

    return settle


def unsettled(rule: CRule) -> bool | None:
    return True if rule.cond is None else None


def entry_access(e: Entry | None, settle: Settle | None = None) -> Access:
    """A cell's access from its rules; ``settle`` (see :func:`settler`) decides the conditions it
    can, without it only unconditional rules count as certain."""
    if e is None:
        return NONE
    settle = settle or unsettled
    deny = [(r, settle(r)) for r in e.deny]
    if any(v for _, v in deny):
        return NONE
    unless = tuple(r.id for r, v in deny if v is None)
    for rules, name in ((e.full, "allow"), (e.mask, "mask")):
        live = [(r, v) for r, v in ((r, settle(r)) for r in rules) if v is not False]
        if not live:
            continue
        if any(v for _, v in live):
            return Access(name, (), unless)
        return Access(name, tuple(r.id for r, _ in live), unless)
    return NONE


def access_map(policy: PolicySet) -> dict[str, dict[tuple[str, str, str, str], Access]]:
    """role -> (rtype, action, purpose, field) -> Access, for every declared role."""
    compiled = CompiledPolicy(policy)
    out = {}
    for role in policy.catalogue.roles:
        principals = compiled.principals(None, [role])
        table = compiled.merge(principals)
        cells = {}
        for (rtype, act, purpose), row in table.items():
            for f, e in row.items():
                a = entry_access(e, settler(compiled, principals, rtype, act, purpose, f))
                if a.level != "none":
                    cells[(rtype, act, purpose, "*" if f is None else f)] = a
        out[role] = cells
    return out


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Access
    after: Access

    @property
    def kind(self) -> str:
        """gains / loses / widens / narrows / changes (conditions replaced by others)."""
        b, a = RANK[self.before.level], RANK[self.after.level]
        if b == 0:
            return "gains"
        if a == 0:
            return "loses"
        if a != b:
            return "widens" if a > b else "narrows"
        if _within(self.after, self.before):
            return "narrows"
        if _within(self.before, self.after):
            return "widens"
        return "changes"


def _within(x: Access, y: Access) -> bool:
    """Whether x grants at most what y grants (same level): fewer allow conditions, more denies."""
    grant = not y.when or (bool(x.when) and set(x.when) <= set(y.when))
    return grant and set(x.unless) >= set(y.unless)


@dataclass(frozen=True)
class RoleChange:
    role: str
    holders: int
    rtype: str
    action: str
    purpose: str
    fields: tuple[FieldChange, ...]


@dataclass
class PolicyDiff:
    changes: list[RoleChange] = field(default_factory=list)
    added_rules: list[str] = field(default_factory=list)
    removed_rules: list[str] = field(default_factory=list)
    modified_rules: list[str] = field(default_factory=list)
    added_roles: list[str] = field(default_factory=list)
    removed_roles: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.changes or self.added_rules or self.removed_rules or self.modified_rules)

    def format(self) -> str:
        lines = []
        for label, ids in (
            ("added rules", self.added_rules),
            ("removed rules", self.removed_rules),
            ("modified rules", self.modified_rules),
            ("added roles", self.added_roles),
            ("removed roles", self.removed_roles),
        ):
            if ids:
                lines.append(f"{label}: {', '.join(ids)}")
        if not self.changes:
            lines.append("no change in what any role can see or do")
            return "\n".join(lines)
        current = None
        for c in self.changes:
            if c.role != current:
                current = c.role
                people = "person" if c.holders == 1 else "people"
                lines.append(f"{c.role} ({c.holders} {people}):")
            lines.append(f"  {c.rtype} {c.action} for {c.purpose}:")
            by_kind: dict[str, list[FieldChange]] = {}
            for fc in c.fields:
                by_kind.setdefault(fc.kind, []).append(fc)
            for kind in ("gains", "widens", "changes", "narrows", "loses"):
                for fc in by_kind.get(kind, ()):
                    lines.append(f"    {kind} {fc.field}: {fc.before} -> {fc.after}")
        return "\n".join(lines)


def diff_policies(
    old: PolicySet | None, new: PolicySet, role_holders: Mapping[str, int] | None = None
) -> PolicyDiff:
    holders = role_holders or {}
    new_map = access_map(new)
    old_map = access_map(old) if old is not None else {}
    out = PolicyDiff()
    old_rules = {r.id: r.row() for r in old.rules} if old is not None else {}
    new_rules = {r.id: r.row() for r in new.rules}
    out.added_rules = [i for i in new_rules if i not in old_rules]
    out.removed_rules = [i for i in old_rules if i not in new_rules]
    out.modified_rules = [i for i in new_rules if i in old_rules and old_rules[i] != new_rules[i]]
    old_roles = set(old.catalogue.roles) if old is not None else set()
    out.added_roles = [r for r in new.catalogue.roles if r not in old_roles]
    out.removed_roles = sorted(old_roles - set(new.catalogue.roles))
    for role in sorted(set(new_map) | set(old_map)):
        before, after = old_map.get(role, {}), new_map.get(role, {})
        grouped: dict[tuple[str, str, str], list[FieldChange]] = {}
        for key in set(before) | set(after):
            b, a = before.get(key, NONE), after.get(key, NONE)
            if b != a:
                grouped.setdefault(key[:3], []).append(FieldChange(key[3], b, a))
        for (rtype, act, purpose), changes in sorted(grouped.items()):
            order = _field_order(new if rtype in new.catalogue.types else old, rtype)
            changes.sort(key=lambda fc: order.get(fc.field, len(order)))
            out.changes.append(
                RoleChange(role, int(holders.get(role, 0)), rtype, act, purpose, tuple(changes))
            )
    return out


def _field_order(policy: PolicySet | None, rtype: str) -> dict[str, int]:
    if policy is None or rtype not in policy.catalogue.types:
        return {}
    order = {f: i for i, f in enumerate(policy.catalogue.types[rtype].fields)}
    order["*"] = -1
    return order
