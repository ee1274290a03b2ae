"""The decision simulator: what the engine in force decides for one person, one resource type,
action and purpose, and one record's properties -- field by field (no Flask).

:func:`inputs` lists the record properties the type declares (name, type, default) for a form;
:func:`simulate` takes their values as text, as a form sends them, and asks
:meth:`accessd.policy.engine.Engine.decide` for the record as a whole (``*``) and every field,
with the person's subject exactly as the decision API builds it (:func:`accessd.accounts.subject_for`:
status, dates, roles, attributes). Nothing is written to the decision log: a simulation is not an
access.

Bad input is Invalid (400) with the message the engine gives (``resource property
retention_until: expected an ISO date YYYY-MM-DD``); an unknown person is NotFound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from accessd import accounts, clock
from accessd.db import Database
from accessd.errors import Invalid
from accessd.policy.engine import Engine
from accessd.policy.matrix import check_view
from accessd.policy.policyset import RECORD_FIELD

_TRUE = ("true", "on", "1", "yes")
_FALSE = ("false", "off", "0", "no", "")


@dataclass(frozen=True)
class Input:
    name: str
    type: str  # string | bool | date | int
    default: object
    description: str


def inputs(engine: Engine, rtype: str) -> list[Input]:
    """The declared properties of ``rtype`` (Invalid for an unknown type)."""
    types = engine.catalogue.types
    if rtype not in types:
        raise Invalid(f"unknown resource type {rtype!r} (declared: {', '.join(types)})")
    return [Input(p.name, p.type, p.default, p.description) for p in types[rtype].properties.values()]


@dataclass(frozen=True)
class Outcome:
    field: str  # a field, or "*" for the record as a whole
    effect: str  # allow | mask | deny
    reason: str
    rules: tuple[tuple[str, str], ...]  # matched (rule id, condition text)


@dataclass(frozen=True)
class Simulation:
    subject_id: str
    display_name: str
    status: str
    roles: tuple[str, ...]
    rtype: str
    action: str
    purpose: str
    today: dt.date
    revision: int | None
    properties: dict  # as the engine sees them (r.obj), coerced
    record: Outcome
    fields: list[Outcome]


def _properties(specs: list[Input], raw: Mapping[str, str]) -> dict:
    """Form text -> request values; booleans from checkboxes and true/false text, the rest as
    text for the engine to coerce (and to refuse with a pointer)."""
    known = {p.name: p for p in specs}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise Invalid(f"unknown property {unknown[0]!r} (declared: {', '.join(known) or 'none'})")
    out: dict = {}
    for name, value in raw.items():
        accounts.check_text(f"property {name}", value, 1000)
        if known[name].type == "bool":
            v = value.strip().lower()
            if v not in _TRUE + _FALSE:
                raise Invalid(f"property {name}: expected true or false, got {value[:40]!r}")
            out[name] = v in _TRUE
        elif value != "":  # empty: the declared default
            out[name] = value
    return out


def simulate(
    db: Database,
    engine: Engine,
    subject_id: str,
    rtype: str,
    action: str,
    purpose: str | None,
    raw: Mapping[str, str],
    today: dt.date | None = None,
) -> Simulation:
    """Decide every field of one record for ``subject_id`` with ``engine`` (the one in force)."""
    accounts.check_text("subject id", subject_id, 200)
    specs = inputs(engine, rtype)
    purpose = engine.resolve_purpose(rtype, purpose or None) or ""
    if not purpose:
        raise Invalid(f"a purpose is required for {rtype}")
    check_view(engine.policy, rtype, action, purpose)
    props = _properties(specs, raw)
    with db.session() as s:
        account = accounts.get_by_subject_id(s, subject_id)
        subject = accounts.subject_for(account)
        name = account.display_name or ""
    today = today or clock.today()
    coerced = engine.object_dict(rtype, props)  # Invalid with a pointer on a bad value
    conds = {r.id: r.cond for r in engine.policy.rules}

    def outcome(f: str | None) -> Outcome:
        d = engine.decide(subject, rtype, action, f, purpose, props, today)
        return Outcome(
            RECORD_FIELD if f is None else f,
            d.effect,
            d.reason,
            tuple((i, conds[i]) for i in d.matched_rules),
        )

    return Simulation(
        subject.id,
        name,
        subject.status,
        tuple(sorted(subject.roles)),
        rtype,
        action,
        purpose,
        today,
        engine.revision,
        coerced,
        outcome(None),
        [outcome(f) for f in engine.catalogue.types[rtype].fields],
    )
