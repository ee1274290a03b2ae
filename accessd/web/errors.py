"""Maps the exception tree once: JSON problem responses for APIs, an error page for the UI.

API paths get ``{"error": code, "message": ..., "pointer": "/member"}``; nothing else (no stack
trace, no exception text from unexpected errors) reaches the client.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from accessd.errors import AccessdError

log = logging.getLogger("accessd.web")

API_PREFIXES = (
    "/access/",
    "/.well-known/",
    "/scim/",
    "/hooks/",
    "/api/",
    "/openapi.json",
    "/healthz",
    "/readyz",
)

_PAGE = """<!doctype html><title>{{ status }} {{ title }}</title>
<h1>{{ status }} {{ title }}</h1><p>{{ message }}</p>"""


def is_api() -> bool:
    return request.path.startswith(API_PREFIXES)


def problem(status: int, code: str, message: str, pointer: str | None = None):
    if is_api():
        body = {"error": code, "message": message}
        if pointer is not None:
            body["pointer"] = pointer
        return jsonify(body), status
    return render_template_string(_PAGE, status=status, title=code.replace("_", " "), message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(AccessdError)
    def _accessd_error(exc: AccessdError):
        return problem(exc.status, exc.code, exc.message, exc.pointer)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        message = {
            413: f"request body is larger than {app.config.get('MAX_CONTENT_LENGTH')} bytes",
        }.get(exc.code, exc.description or exc.name)
        response = problem(exc.code or 500, code, message)
        if exc.code == 405 and exc.valid_methods:
            body, status = response
            body.headers["Allow"] = ", ".join(exc.valid_methods)
            return body, status
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal_error", "internal error; the event was logged")
