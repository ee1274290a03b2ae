"""The audit trail (/admin/audit) and the decision log (/admin/decisions) with their CSV exports.

Reading needs ``view_logs``, exporting ``export``. Filters come from the query string (checked by
:mod:`accessd.web.admin.params`, then by :mod:`accessd.console.logs`, which writes the export's
own audit record); a bad one is a 400 page saying which. ``/admin/decisions?resource=customer:123``
is a data subject's access request: who asked about that record, when, which fields, for which
purpose, and the answer.
"""

from __future__ import annotations

from flask import Response, render_template, request

from accessd import clock
from accessd.console import logs
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, requires, services
from accessd.web.admin.params import page_arg, text_arg

AUDIT_ARGS = {"actor": 200, "action": 64, "target": 300, "since": 64, "until": 64}
DECISION_ARGS = {
    "subject": 200,
    "resource": 265,
    "action": 64,
    "purpose": 64,
    "decision": 16,
    "since": 64,
    "until": 64,
}


def _args(names: dict[str, int]) -> dict[str, str]:
    """The given (non-empty) filter parameters, checked."""
    return {name: value for name, limit in names.items() if (value := text_arg(name, limit)) is not None}


def _csv(stream, name: str) -> Response:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="accessd-{name}-{stamp}.csv"'},
    )


@bp.get("/audit")
@requires("view_logs")
def audit():
    args = _args(AUDIT_ARGS)
    f = logs.audit_filter(**args)
    db = services().db
    # re-hashing the whole trail grows with it: done when asked for, not on every page view
    verify = request.args.get("verify") == "1"
    return render_template(
        "admin/audit.html",
        page=logs.audit_page(db, f, page_arg()),
        chain=logs.verify_chain(db) if verify else None,
        args=args,
        zone=str(clock.zone()),
    )


@bp.get("/audit.csv")
@requires("export")
def audit_csv():
    f = logs.audit_filter(**_args(AUDIT_ARGS))
    return _csv(logs.export_audit_csv(services().db, f, actor()), "audit")


@bp.get("/decisions")
@requires("view_logs")
def decisions():
    args = _args(DECISION_ARGS)
    f = logs.decision_filter(**args)
    db = services().db
    if f.one_record:
        kind = "client " if f.resource_type == "customer" else ""
        title = f"Who read {kind}{f.resource}"
    else:
        title = "Decision log"
    return render_template(
        "admin/decisions.html",
        title=title,
        f=f,
        page=logs.decisions_page(db, f, page_arg()),
        readers=logs.readers(db, f) if f.one_record else None,
        args=args,
        decisions=logs.DECISIONS,
        zone=str(clock.zone()),
    )


@bp.get("/decisions.csv")
@requires("export")
def decisions_csv():
    f = logs.decision_filter(**_args(DECISION_ARGS))
    return _csv(logs.export_decisions_csv(services().db, f, actor()), "decisions")
