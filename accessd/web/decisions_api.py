"""GET /api/v1/decisions: the decision log for auditors (admin scope).

``?resource=customer:123`` answers "who read this customer's data, when, for which purpose";
``subject``, ``since``, ``until``, ``limit`` (1-1000, default 100) and ``offset`` narrow it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd.errors import Invalid
from accessd.pdp import decision_queries
from accessd.pdp.requests import check_text
from accessd.web.auth import require
from accessd.web.responses import json_response

bp = Blueprint("decisions_api", __name__)


def _arg(name: str, max_len: int = 200) -> str | None:
    """A query parameter as checked text (no NUL, no lone surrogate, bounded length), or None."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    pointer = f"/query/{name}"
    check_text(raw, pointer)
    if len(raw) > max_len:
        raise Invalid(f"{name} may be at most {max_len} characters", pointer=pointer)
    return raw


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = _arg(name, 20)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Invalid(f"{name} must be an integer from {low} to {high}", pointer=f"/query/{name}")
    return value


@bp.get("/api/v1/decisions")
def decisions():
    require("admin")
    q = decision_queries.Query(limit=_int("limit", 100, 1, 1000), offset=_int("offset", 0, 0, 10**9))
    if resource := _arg("resource"):
        q.resource_type, q.resource_id = decision_queries.parse_resource(resource, "/query/resource")
    q.subject_id = _arg("subject")
    if since := _arg("since"):
        q.since = decision_queries.parse_time(since, "since", "/query/since")
    if until := _arg("until"):
        q.until = decision_queries.parse_time(until, "until", "/query/until")
    services = current_app.extensions["accessd"]
    rows = decision_queries.search(services.db, q)
    return json_response({"decisions": rows, "count": len(rows), "limit": q.limit, "offset": q.offset})
