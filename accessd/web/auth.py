"""Bearer-token authentication for the API blueprints (a cached look-up; no SQL here)."""

from __future__ import annotations

import json

from flask import abort, current_app, request

from accessd.tokens import Caller


def _deny(status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message, "pointer": "/headers/Authorization"})
    response = current_app.response_class(body, status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="accessd"'
    else:
        response.headers["WWW-Authenticate"] = 'Bearer realm="accessd", error="insufficient_scope"'
    abort(response)


def require(*scopes: str) -> Caller:
    """The calling client, or a 401 (missing/bad token) / 403 (wrong scope) JSON response."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        _deny(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token:
        _deny(401, "unauthorized", "the Authorization header must be 'Bearer <token>'")
    caller = current_app.extensions["accessd"].tokens.lookup(token)
    if caller is None:
        _deny(401, "unauthorized", "unknown or revoked token")
    if caller.scope not in scopes:
        _deny(
            403,
            "forbidden",
            f"a token with scope {caller.scope!r} may not call this endpoint; "
            f"it needs scope {' or '.join(repr(s) for s in scopes)}",
        )
    return caller


def json_response(obj, status: int = 200):
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return current_app.response_class(body, status=status, mimetype="application/json")
