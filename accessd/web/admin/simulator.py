"""The decision simulator (/admin/simulator, ``view``): a person, a resource type, an action, a
purpose and a record's properties in, the engine in force's answer for the record and every
field out (effect, reason, matched rules). A GET form: simulating changes nothing and is not a
decision the log records. The type's properties are the form's ``p.<name>`` inputs.
"""

from __future__ import annotations

import datetime as dt

from flask import render_template, request

from accessd.console import policy_simulator
from accessd.errors import AccessdError, Invalid
from accessd.web.admin import bp
from accessd.web.admin.guard import requires, services
from accessd.web.admin.params import text_arg

PREFIX = "p."


@bp.get("/simulator")
@requires("view")
def simulator():
    engine = services().engines.engine
    types = engine.catalogue.types
    rtype = text_arg("type") or next(iter(types))
    inputs = policy_simulator.inputs(engine, rtype)  # Invalid for an unknown type
    values = {}
    for name in request.args:
        if name.startswith(PREFIX):
            value = request.args.get(name, "")
            values[name[len(PREFIX) :]] = value
            text_arg(name, 1000)  # checked like every other parameter (NUL -> 400)
    subject = text_arg("subject")
    form = {
        "subject": subject or "",
        "type": rtype,
        "action": text_arg("action") or types[rtype].actions[0],
        "purpose": text_arg("purpose") or "",
        "today": text_arg("today", 10) or "",
        "values": values,
    }
    result, status = None, 200
    if subject:
        try:
            today = _day(form["today"])
            result = policy_simulator.simulate(
                services().db, engine, subject, rtype, form["action"], form["purpose"], values, today
            )
        except AccessdError as exc:
            return _page(engine, inputs, form, None, exc.message), exc.status
    return _page(engine, inputs, form, result, None), status


def _day(raw: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"today: expected a date YYYY-MM-DD, got {raw!r}") from None


def _page(engine, inputs, form, result, error):
    return render_template(
        "admin/simulator.html",
        types=engine.catalogue.types,
        purposes=tuple(engine.catalogue.purposes),
        inputs=inputs,
        form=form,
        result=result,
        error=error,
        revision=engine.revision,
    )
