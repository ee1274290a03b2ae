"""GET /api/v1/decisions: the decision log for auditors (admin scope).

``?resource=customer:123`` answers "who read this customer's data, when, for which purpose";
``subject``, ``since``, ``until``, ``limit`` (1-1000, default 100) and ``offset`` narrow it.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from accessd.pdp import decision_queries
from accessd.web.auth import require
from accessd.web.query import int_arg, text_arg
from accessd.web.responses import json_response

bp = Blueprint("decisions_api", __name__)


@bp.get("/api/v1/decisions")
def decisions():
    require("admin")
    q = decision_queries.Query(limit=int_arg("limit", 100, 1, 1000), offset=int_arg("offset", 0, 0, 10**9))
    if resource := text_arg("resource"):
        q.resource_type, q.resource_id = decision_queries.parse_resource(resource, "/query/resource")
    q.subject_id = text_arg("subject")
    if since := text_arg("since"):
        q.since = decision_queries.parse_time(since, "since", "/query/since")
    if until := text_arg("until"):
        q.until = decision_queries.parse_time(until, "until", "/query/until")
    services = current_app.extensions["accessd"]
    rows = decision_queries.search(services.db, q)
    return json_response({"decisions": rows, "count": len(rows), "limit": q.limit, "offset": q.offset})
