"""SCIM 2.0 at /scim/v2 (docs/scim.md): hands each request to :class:`accessd.scim.server.ScimServer`
and writes its answer back. Resource URLs are built from ``public_url``, never from the request's
Host header. The server is built on the first SCIM request of a process, so that other
requests (and every command line) do not pay for loading the SCIM models."""

from __future__ import annotations

import json
import threading

from flask import Blueprint, current_app, request
from scim2_server.requests import ScimRequest  # a plain dataclass: no SCIM models loaded

bp = Blueprint("scim", __name__)

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_lock = threading.Lock()


def _server():
    server = current_app.extensions.get("accessd.scim")
    if server is None:
        with _lock:
            server = current_app.extensions.get("accessd.scim")
            if server is None:
                # here, not at the top: it loads the SCIM models (about a second), see above
                from accessd.scim.server import ScimServer

                services = current_app.extensions["accessd"]
                server = ScimServer(services.db, services.tokens, services.settings)
                current_app.extensions["accessd.scim"] = server
    return server


@bp.route("/scim/v2", defaults={"path": ""}, methods=_METHODS)
@bp.route("/scim/v2/<path:path>", methods=_METHODS)
def scim(path: str):
    server = _server()
    base_url = current_app.extensions["accessd"].settings.effective_public_url + "/scim/v2"
    scim_request = ScimRequest(
        method="GET" if request.method == "HEAD" else request.method,  # Flask drops a HEAD's body
        base_url=base_url,
        path=server.split_path("/" + path if path else ""),
        query=request.args.to_dict(flat=True),
        headers=list(request.headers.items()),
    )
    if request.content_length is not None and request.content_length > server.max_body_bytes:
        answer = server.finalize_response(scim_request, server.too_large())
    else:
        scim_request.body = request.get_data(cache=False)
        request_id = request.headers.get("X-Request-ID")
        if not (request_id and len(request_id) <= 200 and request_id.isascii() and request_id.isprintable()):
            request_id = None
        answer = server.serve(scim_request, request_id)
    body = b"" if answer.body is None else json.dumps(answer.body, ensure_ascii=False).encode()
    return current_app.response_class(body, status=answer.status.value, headers=answer.headers)
