"""The decision engine: decide(subject, type, action, field, purpose, properties) -> Decision.

Order of evaluation (default deny throughout):

1. account status: ``status`` must be ``active`` (``pending`` -> account_pending, ``suspended``
   -> account_suspended, anything else -> account_disabled); ``today < start_date`` ->
   account_not_started; ``today > end_date`` or the clock past ``departure_at`` -> account_ended.
   An empty subject id -> unknown_subject (so ``r.sub.id`` is never empty in a condition).
2. vocabulary: unknown resource type or action -> deny with that reason; no purpose -> the
   type's ``default_purpose``, and without one purpose_required; unknown purpose or field ->
   deny with that reason.
3. rules, exactly as casbin's matcher + effect: any matching deny rule -> deny (denied_by_rule);
   else any matching allow/full rule -> allow; else any matching allow/mask rule -> mask; else
   deny (no_matching_rule). A condition that raises counts as not matching for allow rules and
   as matching for deny rules (fail closed); such a deny is reported as condition_error.

``field=None`` asks about the record as a whole: only rules whose field column is ``*`` apply.
A type without fields is only ever asked about as a whole. :meth:`Engine.mask` answers for every
field of many records at once (planned in :mod:`accessd.policy.masks`). Request values become
``r.sub`` / ``r.obj`` coerced to their declared types; a value that cannot be is
:class:`accessd.errors.Invalid` with a JSON pointer to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType

from accessd import clock
from accessd.errors import Invalid
from accessd.policy.catalogue import Catalogue, coerce
from accessd.policy.compile import CompiledPolicy, Entry
from accessd.policy.masks import MaskPlan, RecordMask, make_plan, mask_for, probe
from accessd.policy.policyset import RECORD_FIELD, PolicySet

REASONS = (
    "allowed",
    "masked",
    "denied_by_rule",
    "no_matching_rule",
    "unknown_resource_type",
    "unknown_action",
    "unknown_field",
    "unknown_purpose",
    "purpose_required",
    "unknown_subject",
    "account_disabled",
    "account_pending",
    "account_suspended",
    "account_not_started",
    "account_ended",
    "condition_error",
)

_EMPTY: Mapping = MappingProxyType({})
_INACTIVE = {"pending": "account_pending", "suspended": "account_suspended"}


@dataclass(frozen=True)
class Subject:
    id: str
    roles: frozenset[str]
    attributes: Mapping = field(default_factory=lambda: _EMPTY)
    status: str = "active"
    start_date: date | None = None
    end_date: date | None = None
    departure_at: datetime | None = None  # aware: the moment access ends (a scheduled departure)


@dataclass(frozen=True, slots=True)
class Decision:
    effect: str  # "allow" | "mask" | "deny"
    reason: str
    matched_rules: tuple[str, ...]
    revision: int | None

    @property
    def allowed(self) -> bool:
        return self.effect != "deny"


class _Ctx:
    """Per-request evaluation context; memoises each distinct condition once."""

    __slots__ = ("args", "memo", "conds")

    def __init__(self, conds, args):
        self.conds = conds
        self.args = args
        self.memo: dict[int, bool | None] = {}

    def test(self, idx: int) -> bool | None:
        """True/False, or None when the condition raised."""
        memo = self.memo
        if idx in memo:
            return memo[idx]
        try:
            v = bool(self.conds[idx](*self.args))
        except Exception:  # a broken condition fails closed, never crashes
            v = None
        memo[idx] = v
        return v


class Engine:
    def __init__(self, policy: PolicySet, revision: int | None = None, cache_size: int = 4096):
        self.policy = policy
        self.revision = revision
        self.catalogue: Catalogue = policy.catalogue
        self.compiled = CompiledPolicy(policy)
        self._conds = self.compiled.conditions
        cat = self.catalogue
        self._actions = {t: frozenset(rt.actions) for t, rt in cat.types.items()}
        self._fields = {t: tuple(rt.fields) for t, rt in cat.types.items()}
        self._field_index = {t: {f: i for i, f in enumerate(rt.fields)} for t, rt in cat.types.items()}
        # plain names are copied with one look-up each; dotted names walk nested objects
        self._props = {t: _flat(rt.properties.values()) for t, rt in cat.types.items()}
        self._nested_props = {t: _nested(rt.properties.values()) for t, rt in cat.types.items()}
        self._attrs = _flat(cat.subject_attributes.values())
        self._nested_attrs = _nested(cat.subject_attributes.values())
        self._purposes = frozenset(cat.purposes)
        self._default_purpose = {t: rt.default_purpose for t, rt in cat.types.items()}
        rev = revision
        self._pre = {reason: Decision("deny", reason, (), rev) for reason in REASONS}
        self._no_rule = self._pre["no_matching_rule"]
        self._static: dict[tuple, Decision] = {}
        self._wholes: dict[str | None, RecordMask] = {}
        self._table = lru_cache(maxsize=cache_size)(self._build_table)

    # ---------------------------------------------------------------- tables

    def _build_table(self, roles: frozenset, relevant_id: str | None) -> _RoleSetTable:
        principals = self.compiled.principals(relevant_id, roles)
        rows = self.compiled.merge(principals)
        for row in rows.values():
            for e in row.values():
                if e.static is None:
                    out = e.static_outcome()
                    e.static = self._intern(*out) if out is not None else False
        return _RoleSetTable(rows, principals)

    def _intern(self, effect: str, reason: str, ids: tuple[str, ...]) -> Decision:
        key = (effect, reason, ids)
        d = self._static.get(key)
        if d is None:
            d = self._static[key] = Decision(effect, reason, ids, self.revision)
        return d

    def table_for(self, subject: Subject) -> _RoleSetTable:
        """The compiled rules for the subject's role set (LRU-cached by role set)."""
        sid = subject.id if subject.id in self.compiled.relevant_ids else None
        return self._table(subject.roles, sid)

    # ---------------------------------------------------------------- pre-checks

    def _status(self, subject: Subject, today: date) -> str | None:
        if not subject.id:
            return "unknown_subject"
        if subject.status != "active":
            return _INACTIVE.get(subject.status, "account_disabled")
        if subject.start_date is not None and today < subject.start_date:
            return "account_not_started"
        if subject.end_date is not None and today > subject.end_date:
            return "account_ended"
        if subject.departure_at is not None and clock.now() >= subject.departure_at:
            return "account_ended"
        return None

    def _vocab(self, rtype: str, action: str, purpose: str) -> str | None:
        acts = self._actions.get(rtype)
        if acts is None:
            return "unknown_resource_type"
        if action not in acts:
            return "unknown_action"
        if purpose not in self._purposes:
            return "unknown_purpose" if purpose else "purpose_required"
        return None

    def resolve_purpose(self, rtype: str, purpose: str | None) -> str | None:
        """The purpose a request is decided for: its own, else the type's ``default_purpose``
        (None when it has neither, or the type is unknown)."""
        return purpose or self._default_purpose.get(rtype)

    # ---------------------------------------------------------------- inputs

    def subject_dict(self, subject: Subject) -> dict:
        """``r.sub``: the id plus every declared attribute, coerced (defaults when missing)."""
        out = {"id": subject.id}
        _coerce_into(out, self._attrs, subject.attributes, "subject attribute", "/subject/properties/")
        if self._nested_attrs:
            _coerce_nested(
                out, self._nested_attrs, subject.attributes, "subject attribute", "/subject/properties"
            )
        return out

    def object_dict(self, rtype: str, properties: Mapping) -> dict:
        """``r.obj``: every declared property of the type, coerced (defaults when missing). A
        dotted name is a member of nested objects (``owner.id`` <- ``{"owner": {"id": ...}}``)
        and is held nested, as casbin's evaluator reads ``r.obj.owner.id``."""
        out: dict = {}
        _coerce_into(out, self._props[rtype], properties, "resource property", "/resource/properties/")
        nested = self._nested_props[rtype]
        if nested:
            _coerce_nested(out, nested, properties, "resource property", "/resource/properties")
        return out

    # ---------------------------------------------------------------- decisions

    def decide(
        self,
        subject: Subject,
        rtype: str,
        action: str,
        field: str | None,
        purpose: str | None,
        properties: Mapping = _EMPTY,
        today: date | None = None,
    ) -> Decision:
        """``field=None`` asks about the record as a whole; ``purpose=None`` (or "") takes the
        type's ``default_purpose``."""
        today = _as_date(today)
        if not purpose:
            purpose = self._default_purpose.get(rtype)
        bad = self._status(subject, today) or self._vocab(rtype, action, purpose)
        if bad:
            return self._pre[bad]
        if field is not None and field not in self._field_index[rtype]:
            return self._pre["unknown_field"]
        table = self.table_for(subject)
        row = table.rows.get((rtype, action, purpose))
        if row is None:
            return self._no_rule
        entry = row.get(field)
        if entry is None:
            return self._no_rule
        if entry.static:
            return entry.static
        args = (
            self.subject_dict(subject),
            self.object_dict(rtype, properties),
            {"today": today.isoformat()},
            purpose,
            action,
            RECORD_FIELD if field is None else field,
            rtype,
            table.principals,
        )
        return self._evaluate(entry, _Ctx(self._conds, args))

    def _evaluate(self, entry: Entry, ctx: _Ctx) -> Decision:
        """Deny rules first, then allow/full, then allow/mask; the first group with a hit decides.
        A condition that raises counts as a hit only for deny rules (fail closed)."""
        test = ctx.test
        errored = False
        for rules, effect, reason in entry.groups:
            hit = []
            for r in rules:
                if r.cond is None:
                    hit.append(r.id)
                else:
                    v = test(r.cond)
                    if v is None:
                        errored = True
                        if effect == "deny":
                            hit.append(r.id)
                    elif v:
                        hit.append(r.id)
            if hit:
                if errored and effect == "deny":
                    reason = "condition_error"
                return Decision(effect, reason, tuple(hit), self.revision)
        return self._pre["condition_error"] if errored else self._no_rule

    # ---------------------------------------------------------------- record masks

    def _plan(self, table: _RoleSetTable, rtype: str, action: str, purpose: str) -> MaskPlan:
        key = (rtype, action, purpose)
        plan = table.plans.get(key)
        if plan is None:
            row = table.rows.get(key, {})
            plan = table.plans[key] = make_plan(row, self._fields[rtype], self.compiled.field_dependent)
        return plan

    def _whole(self, d: Decision) -> RecordMask:
        """The (empty) RecordMask of a record of a type without fields."""
        reason = None if d.allowed else d.reason
        m = self._wholes.get(reason)
        if m is None:
            m = self._wholes[reason] = RecordMask((), (), (), reason, _EMPTY)
        return m

    def _evaluate_memo(self, entry: Entry, memo: dict) -> Decision:
        """Decide an entry from known condition outcomes (record masks: one per probe result)."""
        ctx = _Ctx(self._conds, ())
        ctx.memo = memo
        return self._evaluate(entry, ctx)

    def mask(
        self,
        subject: Subject,
        rtype: str,
        action: str,
        purpose: str | None,
        records: Sequence[Mapping],
        today: date | None = None,
    ) -> list[RecordMask]:
        """Per-field visibility for each record, equal field by field to :meth:`decide`.

        One pass per record: each distinct condition is evaluated at most once per record (a
        condition that reads ``r.field`` once per field it guards); records with the same
        condition outcomes share one RecordMask object. ``purpose=None`` as in :meth:`decide`.
        A type without fields has nothing to mask: each record's RecordMask is empty, with
        ``reason`` set when its record-level decision denies."""
        today = _as_date(today)
        if not purpose:
            purpose = self._default_purpose.get(rtype)
        bad = self._status(subject, today) or self._vocab(rtype, action, purpose)
        if bad:
            whole = RecordMask((), (), self._fields.get(rtype, ()), bad, _EMPTY)
            return [whole] * len(records)
        if not self._fields[rtype]:
            return [
                self._whole(self.decide(subject, rtype, action, None, purpose, rec, today)) for rec in records
            ]
        table = self.table_for(subject)
        plan = self._plan(table, rtype, action, purpose)
        if plan.static_mask is not None:
            return [plan.static_mask] * len(records)
        sub = self.subject_dict(subject)
        env = {"today": today.isoformat()}
        principals = table.principals
        conds = self._conds
        probes = [(conds[c], f) for c, f in plan.probes]
        cache = plan.cache
        object_dict = self.object_dict
        out = []
        for rec in records:
            obj = object_dict(rtype, rec)
            try:
                key = tuple(
                    [bool(fn(sub, obj, env, purpose, action, f, rtype, principals)) for fn, f in probes]
                )
            except Exception:  # a broken condition fails closed, never crashes
                key = tuple(
                    probe(fn, (sub, obj, env, purpose, action, f, rtype, principals)) for fn, f in probes
                )
            m = cache.get(key)
            if m is None:
                if len(cache) > 4096:
                    cache.clear()
                m = cache[key] = mask_for(
                    plan, key, self._field_index[rtype], self.compiled.field_dependent, self._evaluate_memo
                )
            out.append(m)
        return out


_NATIVE = {"string": str, "bool": bool, "int": int}


def _flat(specs) -> tuple:
    """(name, native type, type, default) of each undotted property. The native type is the one
    a value needs no coercion in; None for a date, which never matches ``type(v)`` (a date is
    text that must be checked)."""
    return tuple((p.name, _NATIVE.get(p.type), p.type, p.default) for p in specs if "." not in p.name)


def _nested(specs) -> tuple:
    return tuple((p.path, p.name, p.type, p.default) for p in specs if "." in p.name)


def _coerce_nested(out: dict, specs, values: Mapping, what: str, pointer: str) -> None:
    """Dotted names: read ``values[a][b]`` for ``a.b`` and store it at ``out[a][b]``."""
    for path, name, typ, default in specs:
        v = values
        for i, seg in enumerate(path):
            if v is None:
                break
            if not isinstance(v, Mapping):
                at = pointer + "".join("/" + p for p in path[:i])
                raise Invalid(f"{what} {name}: {at} must be an object", pointer=at)
            v = v.get(seg)
        if v is None:
            v = default
        elif type(v) is not _NATIVE.get(typ):
            try:
                v = coerce(typ, v)
            except ValueError as exc:
                raise Invalid(
                    f"{what} {name}: {exc}", pointer=pointer + "".join("/" + p for p in path)
                ) from None
        target = out
        for seg in path[:-1]:
            target = target.setdefault(seg, {})
        target[path[-1]] = v


def _coerce_into(out: dict, specs, values: Mapping, what: str, pointer: str) -> None:
    """``out[name]``: each property of ``specs`` (``_flat``) read from ``values``, coerced. It runs
    for every property of every record decided, so the common cases come first."""
    get = values.get
    for name, native, typ, default in specs:
        v = get(name)
        if type(v) is native:
            out[name] = v
        elif v is None:
            out[name] = default
        elif typ == "date" and v == "":  # no date: as coerce() leaves it
            out[name] = v
        elif typ == "date" and type(v) is str and len(v) == 10 and v[4] == "-" and v[7] == "-":
            try:
                date.fromisoformat(v)
            except ValueError:
                raise Invalid(
                    f"{what} {name}: expected an ISO date YYYY-MM-DD, got {v!r}", pointer=pointer + name
                ) from None
            out[name] = v
        else:
            try:
                out[name] = coerce(typ, v)
            except ValueError as exc:
                raise Invalid(f"{what} {name}: {exc}", pointer=pointer + name) from None


class _RoleSetTable:
    """Everything compiled for one role set: rules by cell, principals, record-mask plans."""

    __slots__ = ("rows", "principals", "plans")

    def __init__(self, rows: dict, principals: frozenset):
        self.rows = rows
        self.principals = principals
        self.plans: dict[tuple[str, str, str], MaskPlan] = {}


def _as_date(today: date | str | None) -> date:
    """``today`` as a date: None means the clock's date (in the configured zone), a string is an
    ISO date."""
    if today is None:
        return clock.today()
    return date.fromisoformat(today) if isinstance(today, str) else today
