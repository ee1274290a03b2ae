"""Turn a PolicySet into lookup tables.

Wildcards and field groups are expanded once, at compile time. For a given principal set (a
subject's id plus all roles and bases it holds, transitively) the applicable rules are merged
into ``(rtype, action, purpose) -> field -> Entry``; a record-level decision uses the field
``None``, reached only by rules whose field is ``*`` (exactly what casbin does when asked with
the field ``"*"``: ``g2("*", group)`` never holds).

An :class:`Entry` holds the deny / allow-full / allow-mask rules for one cell in policy order.
When the outcome and the matched rules cannot depend on conditions it is decided at compile time
(``static``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from accessd.policy.conditions import Condition, compile_conditions, is_constant, reads_field
from accessd.policy.policyset import MAX_HOPS, PolicySet, field_groups
from accessd.policy.rules import Rule


def role_parents(policy: PolicySet) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {}
    for child, parent in policy.role_links:
        parents.setdefault(child, set()).add(parent)
    return parents


def principal_closure(
    parents: dict[str, set[str]], start: Iterable[str], subject_id: str | None = None
) -> frozenset:
    """Everything reachable from the subject (distance 0) and its grants (distance 1).

    Depth-limited like casbin's role manager (it follows at most MAX_HOPS links)."""
    frontier: dict[str, int] = {}
    if subject_id is not None:
        frontier[subject_id] = 0
    for r in start:
        frontier.setdefault(r, 1)
    seen = dict(frontier)
    todo = list(frontier.items())
    while todo:
        name, dist = todo.pop()
        if dist >= MAX_HOPS:
            continue
        for p in parents.get(name, ()):
            if p not in seen or seen[p] > dist + 1:
                seen[p] = dist + 1
                todo.append((p, dist + 1))
    return frozenset(seen)


@dataclass(frozen=True, slots=True)
class CRule:
    id: str
    order: int
    eft: str
    level: str
    cond: int | None  # index into CompiledPolicy.conditions; None = unconditional


class Entry:
    """Rules applying to one (rtype, action, purpose, field) cell for one principal set."""

    __slots__ = ("deny", "full", "mask", "groups", "static", "conds")

    def __init__(self, deny: tuple, full: tuple, mask: tuple):
        self.deny: tuple[CRule, ...] = deny
        self.full: tuple[CRule, ...] = full
        self.mask: tuple[CRule, ...] = mask
        # (rules, effect, reason) in the order they are evaluated: a deny, then allow/full, then
        # allow/mask (built once here, not per decision)
        self.groups = ((deny, "deny", "denied_by_rule"), (full, "allow", "allowed"), (mask, "mask", "masked"))
        self.static = None  # a Decision, set by the engine when the cell needs no evaluation
        self.conds = frozenset(r.cond for r in (*deny, *full, *mask) if r.cond is not None)

    def static_outcome(self) -> tuple[str, str, tuple[str, ...]] | None:
        """(effect, reason, matched ids) when no condition can change the answer."""
        d_unc = [r for r in self.deny if r.cond is None]
        d_cond = [r for r in self.deny if r.cond is not None]
        if d_unc and not d_cond:
            return "deny", "denied_by_rule", tuple(r.id for r in d_unc)
        if self.deny:
            return None
        if self.full:
            if all(r.cond is None for r in self.full):
                return "allow", "allowed", tuple(r.id for r in self.full)
            return None
        if self.mask and all(r.cond is None for r in self.mask):
            return "mask", "masked", tuple(r.id for r in self.mask)
        return None


class CompiledPolicy:
    """Rules with expanded coverage, compiled conditions and the role graph."""

    def __init__(self, policy: PolicySet):
        self.policy = policy
        cat = policy.catalogue
        self.parents = role_parents(policy)
        # Names that matter if a subject's id happens to equal them (casbin: has_link(x, x)).
        self.relevant_ids = frozenset(
            {r.sub for r in policy.rules}
            | set(self.parents)
            | {p for ps in self.parents.values() for p in ps}
        )
        texts: list[str] = []
        index: dict[str, int] = {}
        self.rules_by_sub: dict[str, list[tuple[CRule, list[tuple[tuple[str, str, str], str | None]]]]] = {}
        groups = {t: field_groups(policy, t) for t in cat.types}
        for r in policy.rules:
            const = is_constant(r.cond)
            if const is False:
                continue  # never matches
            cond = None
            if const is None:
                if r.cond not in index:
                    index[r.cond] = len(texts)
                    texts.append(r.cond)
                cond = index[r.cond]
            crule = CRule(r.id, r.order, r.eft, r.level, cond)
            self.rules_by_sub.setdefault(r.sub, []).append((crule, self._cells(r, groups[r.rtype])))
        self.condition_texts = tuple(texts)
        # Conditions that read r.field give different answers for different fields of a record.
        self.field_dependent = frozenset(i for i, t in enumerate(texts) if reads_field(t))
        self.conditions: list[Condition] = compile_conditions(texts)

    def _cells(self, r: Rule, groups: dict[str, set[str]]) -> list[tuple[tuple[str, str, str], str | None]]:
        cat = self.policy.catalogue
        t = cat.types[r.rtype]
        acts = t.actions if r.act == "*" else (r.act,)
        purposes = tuple(cat.purposes) if r.purpose == "*" else (r.purpose,)
        if r.field == "*":
            fields: tuple = (*t.fields, None)
        else:
            fields = tuple(f for f in t.fields if r.field in groups[f])
        return [((r.rtype, a, p), f) for a in acts for p in purposes for f in fields]

    def principals(self, subject_id: str, roles: Iterable[str]) -> frozenset:
        return principal_closure(self.parents, roles, subject_id)

    def merge(self, principals: frozenset) -> dict[tuple[str, str, str], dict[str | None, Entry]]:
        """The table for one principal set: (rtype, act, purpose) -> field -> Entry."""
        chosen = []
        for sub in ("*", *principals):
            chosen.extend(self.rules_by_sub.get(sub, ()))
        chosen.sort(key=lambda rc: rc[0].order)
        cells: dict[tuple[str, str, str], dict[str | None, list[list[CRule]]]] = {}
        for crule, covered in chosen:
            slot = 0 if crule.eft == "deny" else (1 if crule.level == "full" else 2)
            for key3, f in covered:
                row = cells.setdefault(key3, {})
                lists = row.get(f)
                if lists is None:
                    lists = row[f] = [[], [], []]
                lists[slot].append(crule)
        # Share identical entries (many fields end up with the same rule lists).
        shared: dict[tuple, Entry] = {}
        out: dict[tuple[str, str, str], dict[str | None, Entry]] = {}
        for key3, row in cells.items():
            out_row = out[key3] = {}
            for f, (d, fu, m) in row.items():
                k = (tuple(d), tuple(fu), tuple(m))
                e = shared.get(k)
                if e is None:
                    e = shared[k] = Entry(*k)
                out_row[f] = e
        return out
