"""The permission matrix pages' data: the matrix of the revision in force, one cell with the
people it covers, and the edit form's choices (no Flask).

Everything is read from the revision in force in the database (not from a worker's cached
engine), so the revision number shown is the one an edit is made against (``base``).
Unset choices default to the first declared type, its first action and its default purpose (else
the first purpose); unknown names are Invalid, naming what is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accessd.console import policy_people
from accessd.console.policy_edits import CellEdit, EditResult, apply_edits, in_force
from accessd.console.policy_people import Person
from accessd.db import Database
from accessd.errors import Invalid
from accessd.policy.diff import NONE
from accessd.policy.matrix import Cell, Matrix, RuleRef, build, check_view
from accessd.policy.policyset import RECORD_FIELD, PolicySet

#: people listed under a cell (the count is exact)
CELL_PEOPLE = 50


@dataclass
class Choices:
    """What the pickers offer: types with their actions, purposes, roles, and the columns."""

    types: dict[str, tuple[str, ...]]  # type -> actions
    purposes: tuple[str, ...]
    roles: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass
class MatrixView:
    revision: int
    matrix: Matrix
    choices: Choices
    legend: dict[str, RuleRef] = field(default_factory=dict)  # every rule a cell names, by id
    changed: frozenset[tuple[str, str]] = frozenset()  # (role, column) changed by pending edits
    result: EditResult | None = None


def resolve(policy: PolicySet, rtype: str | None, action: str | None, purpose: str | None) -> tuple:
    """(type, action, purpose) with the defaults filled in; Invalid for undeclared names."""
    cat = policy.catalogue
    rtype = rtype or next(iter(cat.types))
    if rtype not in cat.types:
        raise Invalid(f"unknown resource type {rtype!r} (declared: {', '.join(cat.types)})")
    t = cat.types[rtype]
    action = action or t.actions[0]
    purpose = purpose or t.default_purpose or next(iter(cat.purposes))
    check_view(policy, rtype, action, purpose)
    return rtype, action, purpose


def choices(policy: PolicySet, rtype: str) -> Choices:
    cat = policy.catalogue
    return Choices(
        {t: tuple(spec.actions) for t, spec in cat.types.items()},
        tuple(cat.purposes),
        tuple(cat.roles),
        # every field may be edited, and * (every field and the record at once) too
        (*cat.types[rtype].fields, RECORD_FIELD),
    )


def _legend(m: Matrix) -> dict[str, RuleRef]:
    out: dict[str, RuleRef] = {}
    for cell in m.cells.values():
        for r in (*cell.when, *cell.unless, *cell.denied_by, *cell.mask_when):
            out.setdefault(r.id, r)
    return dict(sorted(out.items(), key=lambda kv: kv[1].line))


def matrix_view(
    db: Database,
    rtype: str | None = None,
    action: str | None = None,
    purpose: str | None = None,
    edits: list[CellEdit] | None = None,
) -> MatrixView:
    """The matrix of the revision in force; with ``edits``, the matrix as it would be after them,
    with the cells they change marked."""
    with db.session() as s:
        number, policy = in_force(s)
    rtype, action, purpose = resolve(policy, rtype, action, purpose)
    m = build(policy, rtype, action, purpose)
    view = MatrixView(number, m, choices(policy, rtype), _legend(m))
    if edits:
        result = apply_edits(policy, edits)
        after = build(result.new, rtype, action, purpose)
        view.changed = frozenset(
            k for k, c in after.cells.items() if k not in m.cells or _shown(m.cells[k]) != _shown(c)
        )
        view.matrix, view.legend, view.result = after, _legend(after), result
    return view


def _shown(c: Cell) -> tuple:
    return (c.effect, c.otherwise, c.when, c.unless, c.denied_by, c.mask_when)


@dataclass
class CellView:
    revision: int
    rtype: str
    action: str
    purpose: str
    cell: Cell
    holders: int
    people: list[Person]
    via: tuple[str, ...]  # the roles counted: the role and every role inheriting it
    description: str


def cell_view(db: Database, rtype: str, action: str, purpose: str, role: str, column: str) -> CellView:
    """One cell with the active people it covers (Invalid for undeclared names)."""
    with db.session() as s:
        number, policy = in_force(s)
        rtype, action, purpose = resolve(policy, rtype, action, purpose)
        if role not in policy.catalogue.roles:
            raise Invalid(f"unknown role {role!r} (declared: {', '.join(policy.catalogue.roles)})")
        if column != RECORD_FIELD and column not in policy.catalogue.types[rtype].fields:
            raise Invalid(f"unknown field {column!r} of {rtype}")
        count, people, via = policy_people.role_holders(s, policy, role, CELL_PEOPLE)
    m = build(policy, rtype, action, purpose, roles=[role])
    cell = m.cells.get((role, column))
    if cell is None:  # the * column when no * rule reaches this action and purpose
        cell = Cell(role, column, "deny", NONE)
    return CellView(number, rtype, action, purpose, cell, count, people, via, policy.catalogue.roles[role])
