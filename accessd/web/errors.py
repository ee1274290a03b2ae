"""Maps the exception tree once: JSON problem responses for APIs, an error page for the UI.

API paths get ``{"error": code, "message": ..., "pointer": "/member"}``; nothing else (no stack
trace, no exception text from unexpected errors) reaches the client.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, render_template_string, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from accessd.errors import AccessdError

log = logging.getLogger("accessd.web")

API_PREFIXES = (
    "/access/",
    "/.well-known/",
    "/scim/",
    "/hr/",
    "/hooks/",
    "/ssf/",
    "/api/",
    "/openapi.json",
    "/healthz",
    "/readyz",
)

DATABASE_RETRY_AFTER = 5  # seconds: a database restart or fail-over usually takes a few

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
    title = code.replace("_", " ")
    if request.path.startswith("/admin/"):
        try:
            return render_template("admin/error.html", status=status, title=title, message=message), status
        except Exception:  # noqa: BLE001 - an error page must never fail: the plain one below
            log.exception("the admin error page failed")
    return render_template_string(_PAGE, status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(AccessdError)
    def _accessd_error(exc: AccessdError):
        body, status = problem(exc.status, exc.code, exc.message, exc.pointer)
        response = app.make_response((body, status))
        response.headers.update(exc.headers)
        return response

    @app.after_request
    def _echo_request_id(response):
        # AuthZEN (and common practice): the caller's X-Request-ID comes back on every answer,
        # errors included, so it can match logs on both sides. Only a sane value is echoed.
        request_id = request.headers.get("X-Request-ID")
        if request_id and len(request_id) <= 200 and request_id.isprintable() and request_id.isascii():
            response.headers["X-Request-ID"] = request_id
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        message = {
            413: f"request body is larger than {app.config.get('MAX_CONTENT_LENGTH')} bytes",
        }.get(exc.code, exc.description or exc.name)
        response = app.make_response(problem(exc.code or 500, code, message))
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(exc: Exception):
        # an outage (or any driver error) is 503 + Retry-After, not 500. Logged as the driver's
        # error class and first message line: SQLAlchemy's text adds the statement's parameters.
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0][:200]
        log.error("database error on %s %s: %s: %s", request.method, request.path, type(orig).__name__, first)
        body, status = problem(503, "database_unavailable", "the database is unavailable; retry later")
        response = app.make_response((body, status))
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal_error", "internal error; the event was logged")
