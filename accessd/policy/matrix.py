"""The field-permission matrix: declared roles x a resource type's fields, for one action and
purpose (pure; no Flask, no database).

Each cell is what a person holding just that role (and everything it inherits) gets, worked out
statically from the rules exactly as :func:`accessd.policy.diff.access_map` does:

- ``effect``   ``allow`` / ``mask`` / ``deny``: the access when every condition goes its way
               (the :class:`~accessd.policy.diff.Access` level; ``none`` is shown as ``deny``);
- ``when``     the conditional allow rules that grant it (any one of them); empty = always;
- ``unless``   the conditional deny rules that can take it away;
- ``otherwise`` the unconditional floor: what is left when no ``when`` rule holds (an
               unconditional mask rule under a conditional full one leaves ``mask``);
- ``mask_when`` conditional mask rules under conditional full ones (a masked view if they hold);
- ``denied_by`` the unconditional deny rules that close the cell whatever else grants it.

Rules are shown with their condition text (``None`` = unconditional). A rule written for
purpose ``*`` applies to every purpose; one written for field ``*`` covers every field and the
record as a whole, which is the column ``*`` (present only when some rule reaches it: record-level
decisions are made by ``*`` rules alone).

The admin UI manages rules named by :func:`ui_rule_id` (see
:mod:`accessd.console.policy_edits`); a cell points at its own UI rule when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from accessd.errors import Invalid
from accessd.policy.compile import CompiledPolicy, Entry, principal_closure
from accessd.policy.diff import Access, Settle, entry_access, settler, unsettled
from accessd.policy.policyset import RECORD_FIELD, PolicySet
from accessd.policy.rules import Rule

EFFECTS = ("allow", "mask", "deny")

#: prefix of the ids of rules the admin UI writes and rewrites
UI_PREFIX = "ui:"
# ``*`` cannot appear in a rule id; field names start with a letter, so this cannot clash
_ALL_FIELDS_ID = "_all"


def ui_rule_id(role: str, rtype: str, action: str, field: str, purpose: str) -> str:
    """The id of the admin UI's rule for one cell: ``ui:<role>:<rtype>:<action>:<field>:<purpose>``
    (field ``*`` is written ``_all``). Roles never contain ``:``, so ids of distinct cells differ."""
    f = _ALL_FIELDS_ID if field == RECORD_FIELD else field
    return f"{UI_PREFIX}{role}:{rtype}:{action}:{f}:{purpose}"


@dataclass(frozen=True)
class RuleRef:
    """A rule as a cell shows it."""

    id: str
    sub: str  # the role, basis or * the rule is written for
    field: str  # the field, group or * it names
    purpose: str
    eft: str  # allow | deny
    level: str  # full | mask | -
    cond: str | None  # condition text; None = unconditional
    line: int  # in policy.csv

    @property
    def ui(self) -> bool:
        return self.id.startswith(UI_PREFIX)


@dataclass(frozen=True)
class Cell:
    role: str
    field: str  # a field name or "*" (the record as a whole)
    effect: str  # allow | mask | deny
    access: Access  # diff's summary (rule ids)
    when: tuple[RuleRef, ...] = ()
    unless: tuple[RuleRef, ...] = ()
    otherwise: str = "deny"  # the effect when no `when` rule holds
    denied_by: tuple[RuleRef, ...] = ()
    rules: tuple[RuleRef, ...] = ()  # every rule reaching the cell, in policy order
    ui_rule: RuleRef | None = None  # the admin UI's own rule for exactly this cell
    # conditional mask rules under conditional full ones: a masked view when one of them holds
    mask_when: tuple[RuleRef, ...] = ()

    @property
    def conditional(self) -> bool:
        return bool(self.when or self.unless)


@dataclass(frozen=True)
class Matrix:
    rtype: str
    action: str
    purpose: str
    roles: tuple[str, ...]
    columns: tuple[str, ...]  # fields in catalogue order, then "*" when rules reach the record
    cells: dict[tuple[str, str], Cell]  # (role, column) -> Cell

    def cell(self, role: str, column: str) -> Cell:
        return self.cells[(role, column)]

    def row(self, role: str) -> list[Cell]:
        return [self.cells[(role, c)] for c in self.columns]


def check_view(policy: PolicySet, rtype: str, action: str, purpose: str) -> None:
    """Invalid (naming what is declared) unless type, action and purpose are in the catalogue."""
    cat = policy.catalogue
    if rtype not in cat.types:
        raise Invalid(f"unknown resource type {rtype!r} (declared: {', '.join(cat.types)})")
    if action not in cat.types[rtype].actions:
        raise Invalid(
            f"unknown action {action!r} for {rtype} (declared: {', '.join(cat.types[rtype].actions)})"
        )
    if purpose not in cat.purposes:
        raise Invalid(f"unknown purpose {purpose!r} (declared: {', '.join(cat.purposes)})")


def columns_of(policy: PolicySet, rtype: str, action: str, purpose: str) -> tuple[str, ...]:
    """The type's fields, plus ``*`` when a ``*``-field rule applies to this action and purpose."""
    fields = tuple(policy.catalogue.types[rtype].fields)
    record = not fields or any(
        r.rtype == rtype and r.field == "*" and r.act in ("*", action) and r.purpose in ("*", purpose)
        for r in policy.rules
    )
    return (*fields, RECORD_FIELD) if record else fields


def build(
    policy: PolicySet,
    rtype: str,
    action: str,
    purpose: str,
    roles: Iterable[str] | None = None,
    compiled: CompiledPolicy | None = None,
) -> Matrix:
    """The matrix for ``rtype``/``action``/``purpose`` over ``roles`` (default: every declared
    role, in catalogue order). Raises Invalid for names the catalogue does not declare."""
    check_view(policy, rtype, action, purpose)
    compiled = compiled or CompiledPolicy(policy)
    roles = tuple(policy.catalogue.roles if roles is None else roles)
    for role in roles:
        if role not in policy.catalogue.roles:
            raise Invalid(f"unknown role {role!r} (declared: {', '.join(policy.catalogue.roles)})")
    by_id = {r.id: r for r in policy.rules}
    columns = columns_of(policy, rtype, action, purpose)
    cells = {}
    for role in roles:
        principals = compiled.principals(None, [role])
        row = compiled.merge(principals).get((rtype, action, purpose), {})
        for col in columns:
            f = None if col == RECORD_FIELD else col
            settle = settler(compiled, principals, rtype, action, purpose, f)
            cells[(role, col)] = make_cell(role, col, row.get(f), by_id, (rtype, action, purpose), settle)
    return Matrix(rtype, action, purpose, roles, columns, cells)


def _ref(rule: Rule, unconditional: bool) -> RuleRef:
    return RuleRef(
        rule.id,
        rule.sub,
        rule.field,
        rule.purpose,
        rule.eft,
        rule.level,
        None if unconditional else rule.cond,
        rule.line,
    )


def make_cell(
    role: str,
    column: str,
    entry: Entry | None,
    by_id: dict[str, Rule],
    key: tuple[str, str, str],
    settle: Settle | None = None,
) -> Cell:
    """One cell from the compiled entry of ``role`` (``None``: no rule reaches it). ``settle``
    (:func:`accessd.policy.diff.settler`) decides the conditions the cell fixes: a rule that
    always holds counts as unconditional, one that never holds is left out."""
    settle = settle or unsettled
    access = entry_access(entry, settle)
    effect = "deny" if access.level == "none" else access.level
    ui_id = ui_rule_id(role, *key[:2], column, key[2])
    if entry is None:
        return Cell(role, column, effect, access)

    def refs(rules) -> tuple[RuleRef, ...]:
        outcomes = ((r, settle(r)) for r in rules)
        return tuple(_ref(by_id[r.id], v is True) for r, v in outcomes if v is not False)

    deny, full, mask = refs(entry.deny), refs(entry.full), refs(entry.mask)
    everything = tuple(sorted((*deny, *full, *mask), key=lambda r: r.line))
    ui = next((r for r in everything if r.id == ui_id), None)
    denied_by = tuple(r for r in deny if r.cond is None)
    if denied_by:
        return Cell(role, column, "deny", access, denied_by=denied_by, rules=everything, ui_rule=ui)
    unless = tuple(r for r in deny if r.cond is not None)
    # the unconditional floor first, then the conditional rules that lift the cell above it
    floor = "allow" if _always(full) else "mask" if _always(mask) else "deny"
    if floor == "allow":
        when: tuple[RuleRef, ...] = ()
    elif full:
        when = _conditional(full)  # conditional full access over a mask floor, or over nothing
    elif floor == "mask":
        when = ()
    else:
        when = _conditional(mask)
    mask_when = _conditional(mask) if full and floor == "deny" else ()
    return Cell(role, column, effect, access, when, unless, floor, (), everything, ui, mask_when)


def _always(rules: tuple[RuleRef, ...]) -> bool:
    return any(r.cond is None for r in rules)


def _conditional(rules: tuple[RuleRef, ...]) -> tuple[RuleRef, ...]:
    return tuple(r for r in rules if r.cond is not None)


def inheriting_roles(policy: PolicySet, role: str) -> tuple[str, ...]:
    """The declared roles whose holders hold ``role`` too: itself and every role inheriting it
    (as the engine follows ``g`` links, depth-limited like casbin)."""
    parents: dict[str, set[str]] = {}
    for child, parent in policy.role_links:
        parents.setdefault(child, set()).add(parent)
    return tuple(r for r in policy.catalogue.roles if role in principal_closure(parents, [r]))
