"""The Shared Signals transmitter over HTTP (SSF 1.0; docs/ssf.md): the configuration document,
the JWKS, the stream management API (bearer token with scope ``ssf``) and the RFC 8936 poll
endpoint. Each view: authenticate, read the body, call :mod:`accessd.ssf`, render."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from accessd.errors import TooLarge, UnsupportedMediaType
from accessd.pdp.requests import parse_body
from accessd.ssf import events as ev
from accessd.ssf import keys, poll, streams
from accessd.web.auth import require
from accessd.web.responses import json_response

bp = Blueprint("ssf", __name__)

CONFIGURATION = "/ssf/streams"
STATUS = "/ssf/status"
ADD_SUBJECT = "/ssf/subjects:add"
REMOVE_SUBJECT = "/ssf/subjects:remove"
VERIFICATION = "/ssf/verify"
JWKS = "/ssf/jwks.json"


@bp.before_app_request
def _start_delivery():
    # the worker's push deliverer starts with its first request (never in create_app)
    current_app.extensions["accessd"].ssf.start()


def _services():
    return current_app.extensions["accessd"]


def _issuer() -> str:
    return _services().settings.effective_public_url


def _body(optional: bool = False) -> dict | None:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"request body is larger than {limit} bytes", pointer="")
    data = request.get_data(cache=False)
    if optional and not data:
        return None
    mimetype = request.mimetype
    # no Content-Type is read as JSON: SSF 1.0's own examples send none
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send JSON with 'Content-Type: application/json', not {mimetype!r}",
            pointer="/headers/Content-Type",
        )
    return parse_body(data)


def _answer(obj, status: int = 200):
    return json_response(obj, status, headers={"Cache-Control": "no-store"})


def _empty(status: int):
    return current_app.response_class(status=status, headers={"Cache-Control": "no-store"})


@bp.get("/.well-known/ssf-configuration")
def configuration():
    base = _issuer()
    return json_response(
        {
            "spec_version": "1_0",
            "issuer": base,
            "jwks_uri": base + JWKS,
            "delivery_methods_supported": list(ev.DELIVERY_METHODS),
            "configuration_endpoint": base + CONFIGURATION,
            "status_endpoint": base + STATUS,
            "add_subject_endpoint": base + ADD_SUBJECT,
            "remove_subject_endpoint": base + REMOVE_SUBJECT,
            "verification_endpoint": base + VERIFICATION,
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        }
    )


@bp.get(JWKS)
def jwks():
    services = _services()
    with services.db.session() as s:
        body = keys.jwks(s, services.settings.ssf.key_retention_days)
    # short: a receiver that meets an unknown kid fetches again anyway
    return json_response(body, headers={"Cache-Control": "public, max-age=300"})


@bp.route(CONFIGURATION, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
def stream_configuration():
    caller = require("ssf")
    db = _services().db
    if request.method == "POST":
        return _answer(streams.create(db, caller.name, _body(), _issuer()), 201)
    if request.method == "GET":
        return _answer(streams.read(db, caller.name, request.args.get("stream_id"), _issuer()))
    if request.method == "PATCH":
        return _answer(streams.update(db, caller.name, _body(), _issuer()))
    if request.method == "PUT":
        return _answer(streams.replace(db, caller.name, _body(), _issuer()))
    streams.delete_stream(db, caller.name, request.args.get("stream_id"))
    return _empty(204)


@bp.route(STATUS, methods=["GET", "POST"])
def stream_status():
    caller = require("ssf")
    db = _services().db
    if request.method == "GET":
        return _answer(streams.status(db, caller.name, request.args.get("stream_id")))
    return _answer(streams.set_status(db, caller.name, _body()))


@bp.post(ADD_SUBJECT)
def add_subject():
    caller = require("ssf")
    streams.add_subject(_services().db, caller.name, _body(), _issuer())
    return _empty(200)


@bp.post(REMOVE_SUBJECT)
def remove_subject():
    caller = require("ssf")
    streams.remove_subject(_services().db, caller.name, _body(), _issuer())
    return _empty(204)


@bp.post(VERIFICATION)
def verification():
    caller = require("ssf")
    streams.verify(_services().db, caller.name, _body(), _issuer())
    return _empty(204)


@bp.post("/ssf/poll/<stream_id>")
def poll_events(stream_id: str):
    caller = require("ssf")
    services = _services()
    return _answer(
        poll.poll(services.db, caller.name, stream_id, _body(optional=True), services.settings.ssf)
    )
