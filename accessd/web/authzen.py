"""AuthZEN 1.0 endpoints (/access/v1/*, /.well-known/authzen-configuration) and the
field-mask call. Each view: authenticate, read the body, call the decision service, render."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd.authzen import DecisionService, parse_body
from accessd.errors import TooLarge
from accessd.web.auth import json_response, require

bp = Blueprint("authzen", __name__)


def _call(method_name: str):
    caller = require("decide")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"request body is larger than {limit} bytes", pointer="")
    body = parse_body(request.get_data(cache=False))
    service: DecisionService = current_app.extensions["accessd"].decisions
    result = getattr(service, method_name)(body, caller.name)
    response = json_response(result)
    decision_id = result.get("decision_id") or result.get("context", {}).get("decision_id")
    if decision_id:
        response.headers["X-Decision-Id"] = decision_id
    request_id = request.headers.get("X-Request-ID")
    if request_id and len(request_id) <= 200:
        response.headers["X-Request-ID"] = request_id  # AuthZEN: echo the caller's request id
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
    return json_response(DecisionService.configuration(request.host_url))
