"""AuthZEN 1.0 endpoints (/access/v1/*, /.well-known/authzen-configuration) and the
field-mask call. Each view: authenticate, read the body, call the decision service, render."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd import metrics
from accessd.errors import TooLarge, UnsupportedMediaType
from accessd.pdp.requests import parse_body
from accessd.pdp.service import DecisionService
from accessd.web.auth import require
from accessd.web.responses import json_response

bp = Blueprint("authzen", __name__)


def _call(method_name: str):
    caller = require("decide")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge(f"request body is larger than {limit} bytes", pointer="")
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send JSON with 'Content-Type: application/json', not {mimetype or 'no content type'!r}",
            pointer="/headers/Content-Type",
        )
    service: DecisionService = current_app.extensions["accessd"].decisions
    with metrics.latency(method_name).time():  # parsing and deciding; not the HTTP server's share
        # with a known length (checked above), read it from the server's stream at once;
        # werkzeug's get_data copies it through a length-limiting wrapper in 8 KiB reads
        data = request.get_data(cache=False) if length is None else request.environ["wsgi.input"].read(length)
        body = parse_body(data)
        result = getattr(service, method_name)(body, caller.name, getattr(caller, "default_purpose", None))
    response = json_response(result)
    decision_id = result.get("decision_id") or result.get("context", {}).get("decision_id")
    if decision_id:
        response.headers["X-Decision-Id"] = decision_id
    return response


@bp.post("/access/v1/evaluation")
def evaluation():
    return _call("evaluation")


@bp.post("/access/v1/evaluations")
def evaluations():
    return _call("evaluations")


@bp.post("/access/v1/fields")
def fields():
    return _call("fields")


@bp.post("/access/v1/search/subject")
def search_subject():
    return _call("search_subject")


@bp.post("/access/v1/search/resource")
def search_resource():
    return _call("search_resource")


@bp.post("/access/v1/search/action")
def search_action():
    return _call("search_action")


@bp.get("/.well-known/authzen-configuration")
def configuration():
    settings = current_app.extensions["accessd"].settings
    return json_response(DecisionService.configuration(settings.effective_public_url))
