"""A Shared Signals push receiver (RFC 8935) for the tests: a threading HTTP server on 127.0.0.1
that records every POST and answers as told, and the checks a real receiver makes on a SET.

``refuse`` answers the first N POSTs with a status (503 by default) before accepting, to prove
retries; every accepted SET is kept in ``sets`` (in arrival order) with its raw headers.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import KeySet

SET_TYPE = "application/secevent+jwt"


@dataclass
class Received:
    token: str
    headers: dict
    at: float  # time.monotonic() on arrival


@dataclass
class SetReceiver:
    """Start with ``with SetReceiver() as r:``; ``r.url`` is the endpoint."""

    refuse: int = 0  # answer this many POSTs with ``refuse_status`` first
    refuse_status: int = 503
    refuse_body: dict | None = None
    posts: list[Received] = field(default_factory=list)  # every POST, refused ones too
    sets: list[Received] = field(default_factory=list)  # accepted ones

    def __post_init__(self):
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                item = Received(body, dict(self.headers), time.monotonic())
                with receiver._arrived:
                    receiver.posts.append(item)
                    refused = len(receiver.posts) <= receiver.refuse
                    if not refused:
                        receiver.sets.append(item)
                    receiver._arrived.notify_all()
                if refused:
                    payload = json.dumps(receiver.refuse_body or {}).encode()
                    self.send_response(receiver.refuse_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SetReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """The first ``n`` accepted SETs, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.sets) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} SETs within {timeout} s, got {len(self.sets)}")
                self._arrived.wait(left)
            return list(self.sets)


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def verify(token: str, jwks: dict, *, issuer: str, audience: str | list) -> tuple[dict, dict]:
    """What a receiver checks (SSF 1.0 §4.1): the ES256 signature against the transmitter's
    JWKS, ``typ`` secevent+jwt, ``iss``, ``aud``, a ``jti``, one event, ``sub_id`` present and
    neither ``sub`` nor ``exp``. Returns (header, claims)."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    header, claims = decoded.header, decoded.claims
    assert header["typ"] == "secevent+jwt", header
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert claims["iss"] == issuer, (claims["iss"], issuer)
    assert claims["aud"] == audience, (claims["aud"], audience)
    assert isinstance(claims["jti"], str) and len(claims["jti"]) == 32
    assert isinstance(claims["iat"], int)
    assert "sub" not in claims and "exp" not in claims
    assert isinstance(claims["sub_id"], dict) and "format" in claims["sub_id"]
    assert len(claims["events"]) == 1
    return header, claims


def event_of(claims: dict) -> tuple[str, dict]:
    """(event type URI, event payload) of a SET's only event."""
    ((uri, payload),) = claims["events"].items()
    return uri, payload
