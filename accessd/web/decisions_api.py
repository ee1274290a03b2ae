"""GET /api/v1/decisions: the decision log for auditors (admin scope).

``?resource=customer:123`` answers "who read this customer's data, when, for which purpose";
``subject``, ``since``, ``until``, ``limit`` (1-1000, default 100) and ``offset`` narrow it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd import decision_log
from accessd.errors import Invalid
from accessd.web.auth import json_response, require

bp = Blueprint("decisions_api", __name__)


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer from {low} to {high}", pointer=f"/query/{name}") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be an integer from {low} to {high}", pointer=f"/query/{name}")
    return value


@bp.get("/api/v1/decisions")
def decisions():
    require("admin")
    args = request.args
    q = decision_log.Query(limit=_int("limit", 100, 1, 1000), offset=_int("offset", 0, 0, 10**9))
    if args.get("resource"):
        try:
            q.resource_type, q.resource_id = decision_log.parse_resource(args["resource"])
        except Invalid as exc:
            raise Invalid(exc.message, pointer="/query/resource") from None
    q.subject_id = args.get("subject") or None
    for name in ("since", "until"):
        if args.get(name):
            try:
                setattr(q, name, decision_log.parse_time(args[name], name))
            except Invalid as exc:
                raise Invalid(exc.message, pointer=f"/query/{name}") from None
    services = current_app.extensions["accessd"]
    rows = decision_log.search(services.db, q)
    return json_response({"decisions": rows, "count": len(rows), "limit": q.limit, "offset": q.offset})
