"""Record masks: which fields of each record a subject sees in full, masked, or not at all.

:meth:`accessd.policy.engine.Engine.mask` answers for a list of records at once, equal field by
field to :meth:`~accessd.policy.engine.Engine.decide`. Per (role set, type, action, purpose) it
plans once (:func:`make_plan`): fields whose outcome is fixed at compile time are settled, and the
rest depend only on the outcomes of a few condition *probes*. Each record is then reduced to its
tuple of probe outcomes, and :func:`mask_for` builds (once per distinct tuple) the
:class:`RecordMask` the engine hands out for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from accessd.policy.compile import Entry
from accessd.policy.policyset import RECORD_FIELD

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RecordMask:
    allowed: tuple[str, ...]
    masked: tuple[str, ...]
    denied: tuple[str, ...]
    reason: str | None = None  # set when no field is visible (the whole record is denied)
    matched_rules: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)

    def effect(self, field_name: str) -> str:
        if field_name in self.allowed:
            return "allow"
        return "mask" if field_name in self.masked else "deny"


def mask_value(value: object, style: str) -> object:
    """Render a masked value: ``last4`` keeps the last four characters, ``redact`` hides it all."""
    if value is None:
        return None
    if style == "last4":
        s = str(value)
        return "•" * max(len(s) - 4, 0) + s[-4:]
    return "•••"


class MaskPlan:
    """The record mask of one (role set, type, action, purpose), up to its condition probes.

    ``allowed``/``masked``/``denied``/``rules``/``reasons`` hold the fields settled at compile
    time; ``dynamic`` the (entry, fields) whose outcome depends on conditions; ``probes`` the
    (condition index, field or ``*``) whose outcomes decide them; ``static_mask`` the whole answer
    when nothing is dynamic; ``cache`` probe outcomes -> RecordMask."""

    __slots__ = (
        "allowed",
        "masked",
        "denied",
        "rules",
        "reasons",
        "dynamic",
        "probes",
        "static_mask",
        "cache",
    )

    def __init__(self, allowed, masked, denied, rules, reasons, dynamic, probes, static_mask):
        self.allowed, self.masked, self.denied, self.rules = allowed, masked, denied, rules
        self.reasons, self.dynamic, self.probes, self.static_mask = reasons, dynamic, probes, static_mask
        self.cache: dict[tuple, RecordMask] = {}


def make_plan(row: Mapping, fields: tuple[str, ...], field_dependent: frozenset) -> MaskPlan:
    """Plan the masks of one table row (field -> Entry) over the type's ``fields``;
    ``field_dependent``: the indexes of conditions that read ``r.field``."""
    allowed, masked, denied, rules, reasons = [], [], [], {}, set()
    dynamic: dict[int, tuple[Entry, list[str]]] = {}
    for f in fields:
        e = row.get(f)
        if e is None:
            denied.append(f)
            rules[f] = ()
            reasons.add("no_matching_rule")
        elif e.static:
            d = e.static
            (allowed if d.effect == "allow" else masked if d.effect == "mask" else denied).append(f)
            rules[f] = d.matched_rules
            reasons.add(d.reason)
        else:
            dynamic.setdefault(id(e), (e, []))[1].append(f)
    # The record's mask depends only on the outcomes of these probes: each field-independent
    # condition once, and each condition that reads r.field once per field it guards.
    probes: list[tuple[int, str]] = []
    for e, efields in dynamic.values():
        for c in sorted(e.conds):
            if c in field_dependent:
                probes.extend((c, f) for f in efields)
            else:
                probes.append((c, RECORD_FIELD))
    probes = list(dict.fromkeys(probes))
    static_mask = None
    if not dynamic:
        reason = None if allowed or masked else summary(reasons)
        rules_view = MappingProxyType(rules)
        static_mask = RecordMask(tuple(allowed), tuple(masked), tuple(denied), reason, rules_view)
    return MaskPlan(
        allowed,
        masked,
        denied,
        rules,
        frozenset(reasons),
        tuple(dynamic.values()),
        tuple(probes),
        static_mask,
    )


def mask_for(
    plan: MaskPlan,
    outcomes: tuple,
    index: Mapping[str, int],
    field_dependent: frozenset,
    evaluate: Callable[[Entry, dict], object],
) -> RecordMask:
    """Build the record mask for one combination of probe outcomes. ``index``: field -> position
    in the catalogue; ``evaluate(entry, memo)`` decides an entry given condition outcomes."""
    shared: dict[int, bool | None] = {}
    per_field: dict[str, dict[int, bool | None]] = {}
    for (c, f), v in zip(plan.probes, outcomes, strict=True):
        if f == RECORD_FIELD:
            shared[c] = v
        else:
            per_field.setdefault(f, {})[c] = v
    allowed, masked, denied = list(plan.allowed), list(plan.masked), list(plan.denied)
    rules = dict(plan.rules)
    reasons = set(plan.reasons)
    for entry, fields in plan.dynamic:
        for group in [fields] if not (entry.conds & field_dependent) else [[f] for f in fields]:
            d = evaluate(entry, {**shared, **per_field.get(group[0], {})})
            reasons.add(d.reason)
            (allowed if d.effect == "allow" else masked if d.effect == "mask" else denied).extend(group)
            for f in group:
                rules[f] = d.matched_rules
    allowed.sort(key=index.__getitem__)
    masked.sort(key=index.__getitem__)
    denied.sort(key=index.__getitem__)
    reason = None if allowed or masked else summary(reasons)
    return RecordMask(tuple(allowed), tuple(masked), tuple(denied), reason, MappingProxyType(rules))


def probe(fn, args) -> bool | None:
    """A condition's outcome on one record: True/False, or None when it raised."""
    try:
        return bool(fn(*args))
    except Exception:  # a broken condition fails closed, never crashes
        return None


def summary(reasons: set[str]) -> str:
    """The reason a record is wholly invisible."""
    for r in ("condition_error", "denied_by_rule"):
        if r in reasons:
            return r
    return "no_matching_rule"


def render_record(specs: Mapping, props: Mapping, allowed, masked) -> dict:
    """The record in catalogue order, denied fields removed, masked fields masked; properties that
    are not catalogue fields are left out."""
    show = set(allowed)
    hide = set(masked)
    out = {}
    for f, spec in specs.items():
        if f not in props:
            continue
        if f in show:
            out[f] = props[f]
        elif f in hide and spec.mask != "none":
            out[f] = mask_value(props[f], spec.mask)
    return out
