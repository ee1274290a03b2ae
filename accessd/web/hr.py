"""POST /hr/v1/events[/<source>]: signed HR events (Standard Webhooks), handled by
:mod:`accessd.lifecycle.hr_events`. No bearer token: the signature is the credential."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd.errors import UnsupportedMediaType
from accessd.lifecycle import hr_events
from accessd.web.responses import json_response

bp = Blueprint("hr", __name__)


@bp.post("/hr/v1/events", defaults={"source": None})
@bp.post("/hr/v1/events/<source>")
def events(source: str | None):
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send JSON with 'Content-Type: application/json', not {mimetype or 'no content type'!r}",
            pointer="/headers/Content-Type",
        )
    services = current_app.extensions["accessd"]
    result = hr_events.handle(
        services.db, services.settings.hr.sources, source, request.headers, request.get_data(cache=False)
    )
    return json_response(result.to_json())
