"""Changing the policy from the admin UI: matrix cell edits and rollbacks, each stored as a new
revision (no Flask).

How a cell edit becomes ``policy.csv`` text
-------------------------------------------
A cell is (role, type, action, field, purpose); ``field`` may be ``*`` (every field and the record
as a whole). The UI owns exactly one rule per cell, named
:func:`accessd.policy.matrix.ui_rule_id` -- ``ui:<role>:<type>:<action>:<field>:<purpose>``
(``*`` written ``_all``) -- and never touches any other line:

- ``allow`` / ``mask``: the cell's UI rule becomes the unconditional
  ``p, <role>, <type>, <action>, <field>, <purpose>, True, allow, full|mask, <id>``;
- ``deny``: the cell's UI rule is removed; if the role (with what it inherits) would still get
  the cell from other rules, the UI rule becomes ``..., True, deny, -, <id>``. A deny for a role
  applies to everyone holding it -- and every role inheriting it -- whatever else they hold.

An existing UI rule is rewritten where it stands; a new one is appended under the section line
``# ---- edited in the admin UI ...`` at the end of the file (added the first time). Comments,
blank lines and every hand-written rule stay byte for byte.

An edit that cannot have its effect is refused (Invalid, naming the rules in the way): ``allow``
under an unconditional deny, ``mask`` where other rules grant full access unconditionally (a
mask rule adds, it never takes away). Conditional deny rules (retention, consent) keep applying;
the preview says so.

Saving
------
The new files are validated (:meth:`PolicySet.from_files`), refused when no active account could
do admin_ui ``edit_policy`` afterwards (:func:`accessd.console.policy_people.check_editors_remain`),
refused with Conflict when another revision came into force since the preview (``base``), then
stored with :func:`accessd.pdp.revisions.store` and an audit record, in one transaction. Every
worker's EngineHolder picks the revision up within a second.

A rollback to revision N stores N's files as a new revision, commented ``rollback to N``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from accessd import audit
from accessd.accounts import check_text
from accessd.console import policy_people, policy_revisions
from accessd.console.policy_revisions import Comparison
from accessd.db import Database
from accessd.errors import Conflict, Invalid, NotFound, PolicyError
from accessd.pdp import revisions
from accessd.policy.compile import CompiledPolicy
from accessd.policy.diff import settler
from accessd.policy.impact import Impact, people_impact
from accessd.policy.matrix import EFFECTS, UI_PREFIX, Cell, inheriting_roles, make_cell, ui_rule_id
from accessd.policy.policyset import RECORD_FIELD, PolicySet
from accessd.policy.rules import RULES_FILE, parse_rules, split_policy_line

SECTION = "# ---- edited in the admin UI (rules named ui:...; the admin UI rewrites them) ----"
_SECTION_START = "# ---- edited in the admin UI"
#: a pending edit as the UI's forms carry it: ``role:type:action:field:purpose=effect``
_EDIT = re.compile(r"^([^:=\s]+):([^:=\s]+):([^:=\s]+):([^:=\s]+):([^:=\s]+)=([a-z]+)$")
MAX_EDITS = 200
# any number other than the migration lock's: serialises revision writes on PostgreSQL
_REVISION_LOCK_KEY = 0x61636365_73737276


@dataclass(frozen=True)
class CellEdit:
    role: str
    rtype: str
    action: str
    field: str  # a field or "*"
    purpose: str
    effect: str  # allow | mask | deny

    @property
    def cell(self) -> tuple[str, str, str, str, str]:
        return (self.role, self.rtype, self.action, self.field, self.purpose)

    @property
    def rule_id(self) -> str:
        return ui_rule_id(self.role, self.rtype, self.action, self.field, self.purpose)

    def encode(self) -> str:
        return f"{self.role}:{self.rtype}:{self.action}:{self.field}:{self.purpose}={self.effect}"

    @property
    def code(self) -> str:
        """:meth:`encode` as an attribute (templates map over it)."""
        return self.encode()

    def describe(self) -> str:
        what = "every field and the record" if self.field == RECORD_FIELD else self.field
        return f"{self.role}: {self.action} of {what} on {self.rtype} for {self.purpose} -> {self.effect}"


def parse_edits(values: Iterable[str]) -> list[CellEdit]:
    """Pending edits from their form encoding; the last edit of a cell wins. Invalid on bad syntax
    (names are checked against the policy by :func:`apply_edits`)."""
    values = list(values)
    if len(values) > MAX_EDITS:
        raise Invalid(f"at most {MAX_EDITS} cell edits at once")
    out: dict[tuple, CellEdit] = {}
    for raw in values:
        check_text("edit", raw, 1000)
        m = _EDIT.match(raw)
        if m is None:
            raise Invalid(f"bad edit {raw[:100]!r} (expected role:type:action:field:purpose=effect)")
        edit = CellEdit(*m.groups())
        out.pop(edit.cell, None)
        out[edit.cell] = edit
    return list(out.values())


def check_edit(policy: PolicySet, e: CellEdit) -> None:
    """Invalid unless every name of the edit is declared (roles only: not bases, not ``*``)."""
    cat = policy.catalogue
    if e.effect not in EFFECTS:
        raise Invalid(f"effect must be one of {', '.join(EFFECTS)}, not {e.effect!r}")
    if e.role not in cat.roles:
        raise Invalid(f"unknown role {e.role!r} (declared: {', '.join(cat.roles)})")
    if e.rtype not in cat.types:
        raise Invalid(f"unknown resource type {e.rtype!r} (declared: {', '.join(cat.types)})")
    t = cat.types[e.rtype]
    if e.action not in t.actions:
        raise Invalid(f"unknown action {e.action!r} for {e.rtype} (declared: {', '.join(t.actions)})")
    if e.field != RECORD_FIELD and e.field not in t.fields:
        raise Invalid(f"unknown field {e.field!r} of {e.rtype}")
    if e.purpose not in cat.purposes:
        raise Invalid(f"unknown purpose {e.purpose!r} (declared: {', '.join(cat.purposes)})")
    if e.effect == "mask":
        plain = [f for f, spec in t.fields.items() if spec.mask == "none" and e.field in (f, RECORD_FIELD)]
        if plain or not t.fields:
            what = f"{e.rtype}.{plain[0]}" if plain else e.rtype
            raise Invalid(f"{what} cannot be masked (its catalogue mask is none): allow or deny it")


# ------------------------------------------------------------------------------------------
# policy.csv text


def _row(e: CellEdit, eft: str, level: str) -> str:
    return f"p, {e.role}, {e.rtype}, {e.action}, {e.field}, {e.purpose}, True, {eft}, {level}, {e.rule_id}"


def _as_row(rule) -> str:
    return ", ".join(["p", *rule.row()])


def _rule_id_of(line: str) -> str | None:
    s = line.strip()
    if not s.startswith("p,"):
        return None
    try:
        tokens = split_policy_line(s)
    except ValueError:
        return None
    return tokens[-1] if len(tokens) == 10 else None


def rewrite(csv_text: str, rows: dict[str, str | None]) -> str:
    """``csv_text`` with the UI rules in ``rows`` (id -> new row, or None to remove) rewritten in
    place, removed, or appended to the admin UI section. Every other line is kept as it is."""
    lines = csv_text.splitlines()
    todo = dict(rows)
    out = []
    for line in lines:
        rid = _rule_id_of(line)
        if rid is not None and rid.startswith(UI_PREFIX) and rid in todo:
            new = todo.pop(rid)
            if new is not None:
                out.append(new)
            continue
        out.append(line)
    added = [row for row in todo.values() if row is not None]
    if added:
        if not any(line.strip().startswith(_SECTION_START) for line in out):
            while out and not out[-1].strip():
                out.pop()
            out += ["", SECTION]
        out += added
    return "\n".join(out) + "\n"


def _load(files: dict[str, str]) -> PolicySet:
    try:
        return PolicySet.from_files(files)
    except PolicyError as exc:
        raise Invalid(f"the edited policy does not load: {exc.message}") from None


def _role_cell(compiled: CompiledPolicy, policy: PolicySet, e: CellEdit) -> Cell:
    principals = compiled.principals(None, [e.role])
    row = compiled.merge(principals).get((e.rtype, e.action, e.purpose), {})
    f = None if e.field == RECORD_FIELD else e.field
    settle = settler(compiled, principals, e.rtype, e.action, e.purpose, f)
    key = (e.rtype, e.action, e.purpose)
    return make_cell(e.role, e.field, row.get(f), {r.id: r for r in policy.rules}, key, settle)


@dataclass
class EditResult:
    old: PolicySet
    new: PolicySet
    edits: list[CellEdit]
    rows: dict[str, str | None]  # rule id -> the row written, None = removed
    cells: dict[tuple, Cell]  # edit.cell -> the role's cell in the new policy
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old.files[RULES_FILE] != self.new.files[RULES_FILE]


def apply_edits(policy: PolicySet, edits: list[CellEdit]) -> EditResult:
    """The policy with ``edits`` made (pure). Invalid for unknown names, a result that does not
    load, or an edit that could not have its effect."""
    if not edits:
        raise Invalid("no cell edits given")
    for e in edits:
        check_edit(policy, e)
    existing = {r.id: r for r in policy.rules}
    # first every allow/mask, and every deny's own UI rule removed ...
    rows: dict[str, str | None] = {}
    for e in edits:
        if e.effect == "deny":
            if e.rule_id in existing:
                rows[e.rule_id] = None
        else:
            rows[e.rule_id] = _row(e, "allow", "full" if e.effect == "allow" else "mask")
    base_text = policy.files[RULES_FILE]
    files = dict(policy.files)
    files[RULES_FILE] = rewrite(base_text, rows)
    step = _load(files)
    # ... then a deny rule only where the rest of the policy would still grant the cell; the
    # final text is written from the original, so that a deny rule kept stays where it was
    compiled = CompiledPolicy(step)
    denies = {}
    for e in edits:
        if e.effect == "deny" and _role_cell(compiled, step, e).effect != "deny":
            denies[e.rule_id] = _row(e, "deny", "-")
    if denies:
        rows.update(denies)
        files[RULES_FILE] = rewrite(base_text, rows)
        step = _load(files)
        compiled = CompiledPolicy(step)
    # the rules that really change (a rule rewritten as it was is no change)
    rows = {i: row for i, row in rows.items() if i not in existing or row != _as_row(existing[i])}
    result = EditResult(policy, step, edits, rows, {})
    held_back: dict[str, list[str]] = {}
    for e in edits:
        cell = result.cells[e.cell] = _role_cell(compiled, step, e)
        _check_outcome(step, e, cell, e.rule_id in denies, result.notes, held_back)
    for ids, fields in held_back.items():
        result.notes.append(f"{', '.join(dict.fromkeys(fields))}: still denied whenever rule {ids} holds")
    return result


def _ids(refs) -> str:
    return ", ".join(r.id for r in refs)


def _check_outcome(
    policy: PolicySet, e: CellEdit, cell: Cell, denied: bool, notes: list[str], held_back: dict
) -> None:
    """Refuse an edit that does not have its effect; note what the preview should say
    (``held_back``: conditional deny rules -> fields they can still close)."""
    what = f"{e.role}'s {e.action} of {e.field} on {e.rtype} for {e.purpose}"
    if e.effect == "allow" and (cell.effect != "allow" or cell.when):
        raise Invalid(
            f"cannot allow {what}: deny rule {_ids(cell.denied_by)} applies to {e.role}; "
            "change that rule (or its cell) first"
        )
    if e.effect == "mask":
        if cell.effect == "deny":
            raise Invalid(f"cannot mask {what}: deny rule {_ids(cell.denied_by)} applies to {e.role}")
        if cell.otherwise == "allow":
            granting = [r for r in cell.rules if r.eft == "allow" and r.level == "full" and r.cond is None]
            raise Invalid(
                f"cannot narrow {what} to mask: rule {_ids(granting)} grants full access, and a mask "
                "rule adds access, it never takes it away; deny the cell or change that rule in policy.csv"
            )
        if cell.when:
            notes.append(f"{what}: still full access when rule {_ids(cell.when)} holds")
    if e.effect == "deny" and denied:
        via = [r for r in inheriting_roles(policy, e.role) if r != e.role]
        also = f" and every role inheriting it ({', '.join(via)})" if via else ""
        notes.append(
            f"{what}: other rules still grant it, so a deny rule is added; it applies to everyone "
            f"holding {e.role}{also}, whatever other roles they hold"
        )
    if cell.effect != "deny" and cell.unless:
        held_back.setdefault(_ids(cell.unless), []).append(e.field)
    if e.field == RECORD_FIELD:
        notes.append(f"{what}: field * covers every field of {e.rtype} and the record as a whole")


# ------------------------------------------------------------------------------------------
# preview and save


@dataclass
class Preview:
    base: int  # the revision in force the edits apply to
    result: EditResult  # the edits, the rules written and the notes
    old: PolicySet
    new: PolicySet
    impact: Impact
    problem: str | None = None  # why saving would be refused (lockout), shown before saving

    @property
    def changed(self) -> bool:
        return dict(self.old.files) != dict(self.new.files)


def in_force(session: Session) -> tuple[int, PolicySet]:
    """(number, policy) of the revision in force; NotFound when none is loaded."""
    rev = revisions.current(session)
    if rev is None:
        raise NotFound("no policy revision is loaded; run `accessd policy load DIR` first")
    return rev.id, revisions.policy_of(rev)


def _preview(session: Session, base: int, old: PolicySet, new: PolicySet, result: EditResult) -> Preview:
    role_sets = policy_people.active_role_sets(session)
    impact = people_impact(old, new, policy_people.labels(role_sets))
    problem = None
    try:
        policy_people.check_editors_remain(session, new, role_sets)
    except Invalid as exc:
        problem = exc.message
    return Preview(base, result, old, new, impact, problem)


def preview_edits(db: Database, edits: list[CellEdit]) -> Preview:
    """What ``edits`` would change, against the revision in force, and for whom."""
    with db.session() as s:
        base, old = in_force(s)
        result = apply_edits(old, edits)
        return _preview(s, base, old, result.new, result)


def _lock(session: Session) -> None:
    """Serialise revision writes, so that the base check below cannot race another save (SQLite
    serialises writers by itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REVISION_LOCK_KEY})


def _check_comment(comment: str | None, required: bool = True) -> str:
    comment = (comment or "").strip()
    if required and not comment:
        raise Invalid("a comment is required: say why the policy changes")
    return check_text("comment", comment, 500)


def _base(session: Session, base: int) -> PolicySet:
    """The policy in force, which must still be revision ``base`` (Conflict otherwise); holds
    the revision lock until the transaction ends."""
    _lock(session)
    current, policy = in_force(session)
    if current != base:
        raise Conflict(
            f"the policy changed while you were editing: revision {current} is now in force "
            f"(you started from {base}); review the changes again"
        )
    return policy


def _store(session: Session, new: PolicySet, actor: str, comment: str) -> int:
    """Store ``new`` as the next revision, unless it would lock every editor out."""
    policy_people.check_editors_remain(session, new)
    rev, created = revisions.store(session, new, actor, comment)
    if not created:
        raise Conflict("nothing to save: the policy would stay as it is")
    return rev.id


def save_edits(db: Database, edits: list[CellEdit], base: int, actor: str, comment: str) -> int:
    """Make ``edits`` on revision ``base`` (which must still be in force) and store the result as
    a new revision; returns its number."""
    comment = _check_comment(comment)
    with db.session() as s:
        old = _base(s, base)
        result = apply_edits(old, edits)
        if not result.changed:
            raise Invalid("nothing to save: these edits leave the policy as it is")
        number = _store(s, result.new, actor, comment)
        audit.record(
            s,
            actor,
            "policy.edit",
            f"policy_revision:{number}",
            {"base": base, "comment": comment, "edits": [e.encode() for e in edits], "rules": result.rows},
        )
        return number


def _revision_policy(session: Session, number: int) -> PolicySet:
    rev = revisions.get(session, number)
    try:
        return revisions.policy_of(rev)
    except PolicyError as exc:
        raise Invalid(f"revision {number} does not load with this accessd: {exc.message}") from None


@dataclass
class RollbackPreview:
    base: int  # the revision in force
    number: int  # the revision to go back to
    comparison: Comparison  # in force -> ``number``
    problem: str | None = None  # why it would be refused

    @property
    def changed(self) -> bool:
        return not self.comparison.same


def preview_rollback(db: Database, number: int) -> RollbackPreview:
    """What going back to revision ``number`` would change, and for whom."""
    with db.session() as s:
        base, _ = in_force(s)
        target = _revision_policy(s, number)
        problem = None
        try:
            policy_people.check_editors_remain(s, target)
        except Invalid as exc:
            problem = exc.message
        return RollbackPreview(base, number, policy_revisions.compare_in(s, base, number), problem)


def rollback(db: Database, number: int, base: int, actor: str, reason: str | None = None) -> int:
    """Store revision ``number``'s files as a new revision (comment ``rollback to N``, plus the
    reason); returns its number. Conflict when those files are already in force."""
    reason = _check_comment(reason, required=False)
    comment = f"rollback to {number}" + (f": {reason}" if reason else "")
    with db.session() as s:
        target = _revision_policy(s, number)
        old = _base(s, base)
        if dict(old.files) == dict(target.files):
            raise Conflict(f"revision {number}'s policy is already in force (revision {base})")
        new_number = _store(s, target, actor, comment)
        audit.record(
            s,
            actor,
            "policy.rollback",
            f"policy_revision:{new_number}",
            {"base": base, "to": number, "comment": comment},
        )
        return new_number


def ui_rules(policy: PolicySet) -> list[str]:
    """The rows of the rules the admin UI manages, as written in ``policy.csv``."""
    raw = parse_rules(policy.files[RULES_FILE])
    return [_as_row(r) for r in raw.rules if r.id.startswith(UI_PREFIX)]
