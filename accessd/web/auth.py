"""Bearer-token authentication for the API blueprints (a cached look-up; no SQL here)."""

from __future__ import annotations

from flask import current_app, request

from accessd.errors import Forbidden, Unauthorized
from accessd.pdp.tokens import Caller

_CHALLENGE = 'Bearer realm="accessd"'


def require(*scopes: str) -> Caller:
    """The calling client; raises Unauthorized (missing, malformed, unknown or revoked token) or
    Forbidden (a scope this endpoint does not accept), both answered by the one error map."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    caller = current_app.extensions["accessd"].tokens.lookup(token)
    if caller is None:
        raise _unauthorized("unknown or revoked token")
    if caller.scope not in scopes:
        raise Forbidden(
            f"a token with scope {caller.scope!r} may not call this endpoint; "
            f"it needs scope {' or '.join(repr(s) for s in scopes)}",
            pointer="/headers/Authorization",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
        )
    return caller


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, pointer="/headers/Authorization", headers={"WWW-Authenticate": _CHALLENGE})
