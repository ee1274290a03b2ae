"""Who a policy change affects: per group of people, what they gain or lose (pure; no database).

:func:`people_impact` takes the old and the new :class:`PolicySet` and the role sets of the
ACTIVE accounts -- ``{frozenset(roles): count}`` or ``{frozenset(roles): [names]}`` -- and works
out, once per distinct role set (never per person: 10,000 people share a handful of role sets),
the static access of every ``(type, action, purpose, field)`` cell before and after, as
:func:`accessd.policy.diff.access_map` does for single roles. Cells compare by effect and
condition *texts*, so renaming a rule changes nothing for anyone.

Each change is attributed to the roles "through which" it happens: the roles of the set whose
own access changed in that cell (a new rule for billing is a change through billing even for
someone who also holds marketing); when no single role changed (a new deny on one role taking
away what another grants) the whole role set is named. Lines group people and fields by those
roles, the kind of change and the before/after access, and read
``12 people in billing gain read of mobile_phone for purpose billing``.

Kinds: ``gain`` (from nothing), ``lose`` (to nothing), ``widen`` / ``narrow`` (allow vs mask, or
fewer/more conditions), ``change`` (conditions replaced by others), as in
:class:`accessd.policy.diff.FieldChange`.

Only cells that can differ are compared: those where some principal's own rules differ (a
changed rule, field group or catalogue entry), and for a role set whose inheritance changed,
everything the principals it gained or lost reach. A one-cell edit costs one cell per role set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from accessd.policy.compile import CompiledPolicy, principal_closure, role_parents
from accessd.policy.diff import RANK, Access, FieldChange
from accessd.policy.policyset import RECORD_FIELD, PolicySet

#: names kept per line (the count is always exact)
MAX_NAMES = 50

Cell = tuple[str, str, str, str]  # (rtype, action, purpose, field); field "*" = the record


@dataclass(frozen=True)
class State:
    """The static access of one cell for one principal set, by condition text."""

    level: str = "none"  # allow | mask | none (when every condition goes its way)
    when: frozenset[str] = frozenset()  # conditions of the rules granting `level` (any); empty = always
    unless: frozenset[str] = frozenset()  # conditions of deny rules that can take it away
    floor: str = "none"  # the level when no `when` condition holds

    def access(self) -> Access:
        return Access(self.level, tuple(sorted(self.when)), tuple(sorted(self.unless)))

    def describe(self) -> str:
        """``allow``, ``mask``, ``allow under conditions, otherwise mask``, ``deny``; deny rules
        that may take it away (retention, consent) are left out: they are in the details."""
        if self.level == "none":
            return "deny"
        if not self.when:
            return self.level
        out = f"{self.level} under conditions"
        return out + (f", otherwise {self.floor}" if self.floor != "none" else "")


NO_ACCESS = State()


def kind_of(before: State, after: State) -> str:
    """gain / lose / widen / narrow / change."""
    k = FieldChange("", before.access(), after.access()).kind
    if k == "changes" and before.access() == after.access():  # only the floor under conditions moved
        k = "widens" if RANK[after.floor] > RANK[before.floor] else "narrows"
    return k[:-1]


@dataclass(frozen=True)
class FieldDelta:
    field: str  # a field or "*" (the record as a whole)
    before: State
    after: State


@dataclass(frozen=True)
class ImpactLine:
    roles: tuple[str, ...]  # the roles through which it changes (empty: people without roles)
    people: int
    names: tuple[str, ...]  # up to MAX_NAMES of them, when names were given
    kind: str  # gain | lose | widen | narrow | change
    rtype: str
    action: str
    purpose: str
    deltas: tuple[FieldDelta, ...]  # in catalogue order

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.deltas)

    @property
    def after(self) -> State:
        return self.deltas[0].after

    def text(self, with_type: bool = False) -> str:
        one = self.people == 1
        who = f"{self.people} {'person' if one else 'people'}"
        who += f" in {' and '.join(self.roles)}" if self.roles else " without a role"
        names = ", ".join("the whole record" if f == RECORD_FIELD else f for f in self.fields)
        what = f"{self.action} of {names}" + (f" on {self.rtype}" if with_type else "")
        tail = f"for purpose {self.purpose}"
        if self.kind == "lose":
            return f"{who} lose{'s' if one else ''} {what} {tail}"
        if self.kind == "gain":
            masked = "masked " if self.after.level == "mask" else ""
            cond = " under conditions" if self.after.when else ""
            return f"{who} gain{'s' if one else ''} {masked}{what} {tail}{cond}"
        return f"{who}: {what} {tail} {self.kind}s to {self.after.describe()}"


@dataclass
class Impact:
    lines: list[ImpactLine] = field(default_factory=list)
    people: int = 0  # distinct active people whose access changes
    population: int = 0  # active people considered

    @property
    def empty(self) -> bool:
        return not self.lines

    def format(self) -> str:
        if not self.lines:
            return "no change for any active person"
        with_type = len({ln.rtype for ln in self.lines}) > 1
        return "\n".join(ln.text(with_type) for ln in self.lines)


class _Side:
    """One policy as per-principal contributions: principal (role, basis or ``*``) -> cell ->
    the condition texts of its deny, allow/full and allow/mask rules there (None =
    unconditional). A principal set's state in a cell is the union over its principals."""

    def __init__(self, policy: PolicySet):
        compiled = CompiledPolicy(policy)
        texts = compiled.condition_texts
        self.parents = role_parents(policy)
        contrib: dict[str, dict[Cell, tuple[set, set, set]]] = {}
        for sub, entries in compiled.rules_by_sub.items():
            cells = contrib.setdefault(sub, {})
            for crule, covered in entries:
                slot = 0 if crule.eft == "deny" else (1 if crule.level == "full" else 2)
                cond = None if crule.cond is None else texts[crule.cond]
                for (rtype, act, purpose), f in covered:
                    key = (rtype, act, purpose, RECORD_FIELD if f is None else f)
                    sets = cells.get(key)
                    if sets is None:
                        sets = cells[key] = (set(), set(), set())
                    sets[slot].add(cond)
        self.contrib = contrib
        self._memo: dict[tuple[frozenset, Cell], State] = {}

    def closure(self, roles: Iterable[str]) -> frozenset:
        return principal_closure(self.parents, roles)

    def cells_of(self, sub: str) -> Iterable[Cell]:
        return self.contrib.get(sub, {}).keys()

    def state(self, principals: frozenset, cell: Cell) -> State:
        key = (principals, cell)
        got = self._memo.get(key)
        if got is None:
            deny: set = set()
            full: set = set()
            mask: set = set()
            for sub in ("*", *principals):
                sets = self.contrib.get(sub, {}).get(cell)
                if sets is not None:
                    deny |= sets[0]
                    full |= sets[1]
                    mask |= sets[2]
            got = self._memo[key] = _state(deny, full, mask)
        return got


def _state(deny: set, full: set, mask: set) -> State:
    if None in deny:
        return NO_ACCESS
    unless = frozenset(deny)
    floor = "allow" if None in full else "mask" if None in mask else "none"
    if floor == "allow":
        return State("allow", frozenset(), unless, "allow")
    if full:
        return State("allow", frozenset(full), unless, floor)
    if floor == "mask":
        return State("mask", frozenset(), unless, "mask")
    if mask:
        return State("mask", frozenset(mask), unless, "none")
    return NO_ACCESS


def _changed_cells(before: _Side, after: _Side) -> dict[str, set[Cell]]:
    """principal -> the cells where its own rules differ between the two policies."""
    out = {}
    for sub in before.contrib.keys() | after.contrib.keys():
        b, a = before.contrib.get(sub, {}), after.contrib.get(sub, {})
        cells = {c for c in b.keys() | a.keys() if b.get(c) != a.get(c)}
        if cells:
            out[sub] = cells
    return out


def people_impact(
    old: PolicySet, new: PolicySet, role_sets: Mapping[frozenset[str], int | Sequence[str]]
) -> Impact:
    """What changes for the people in ``role_sets`` (active accounts, grouped by their set of
    directly held roles; a value is their count or their names) when ``new`` replaces ``old``."""
    before, after = _Side(old), _Side(new)
    changed = _changed_cells(before, after)

    def candidates(c_old: frozenset, c_new: frozenset) -> set[Cell]:
        """The cells that can differ for a principal set: where one of its principals' rules
        changed, and everything a principal it gained or lost (new role links) reaches."""
        out: set[Cell] = set()
        for sub in ("*", *(c_old | c_new)):
            out |= changed.get(sub, set())
        for sub in c_old - c_new:
            out.update(before.cells_of(sub))
        for sub in c_new - c_old:
            out.update(after.cells_of(sub))
        return out

    def differs_alone(role: str, cell: Cell) -> bool:
        return before.state(before.closure([role]), cell) != after.state(after.closure([role]), cell)

    # (roles through, cell, before, after) -> role sets; role set -> (count, names)
    changes: dict[tuple, list[frozenset]] = {}
    people: dict[frozenset, tuple[int, tuple[str, ...]]] = {}
    population = affected = 0
    for roles, who in role_sets.items():
        roles = frozenset(roles)
        count, names = (who, ()) if isinstance(who, int) else (len(who), tuple(who))
        population += count
        if count == 0:
            continue
        c_old, c_new = before.closure(roles), after.closure(roles)
        touched = False
        for cell in candidates(c_old, c_new):
            b, a = before.state(c_old, cell), after.state(c_new, cell)
            if b == a:
                continue
            touched = True
            # the roles whose own access changed here; none of them alone: the combination
            through = tuple(sorted(r for r in roles if differs_alone(r, cell))) or tuple(sorted(roles))
            changes.setdefault((through, cell, b, a), []).append(roles)
        if touched:
            affected += count
            people[roles] = (count, names)
    # fields sharing roles, kind, what the sentence says of the outcome and the very same
    # people make one line
    lines: dict[tuple, list[FieldDelta]] = {}
    for (through, (rtype, act, purpose, f), b, a), sets in changes.items():
        kind = kind_of(b, a)
        outcome = "" if kind == "lose" else a.describe()
        key = (through, rtype, act, purpose, kind, outcome, frozenset(sets))
        lines.setdefault(key, []).append(FieldDelta(f, b, a))
    out = []
    for (through, rtype, act, purpose, kind, _outcome, sets), deltas in lines.items():
        count = sum(people[s][0] for s in sets)
        names = tuple(sorted(n for s in sets for n in people[s][1]))[:MAX_NAMES]
        order = _field_order(new if rtype in new.catalogue.types else old, rtype)
        deltas.sort(key=lambda d: order.get(d.field, len(order)))
        out.append(ImpactLine(through, count, names, kind, rtype, act, purpose, tuple(deltas)))
    out.sort(key=lambda ln: (ln.roles, ln.rtype, ln.action, ln.purpose, _KINDS.index(ln.kind), ln.fields))
    return Impact(out, affected, population)


_KINDS = ("gain", "widen", "change", "narrow", "lose")


def _field_order(policy: PolicySet, rtype: str) -> dict[str, int]:
    order = {f: i for i, f in enumerate(policy.catalogue.types[rtype].fields)}
    order[RECORD_FIELD] = len(order)
    return order
