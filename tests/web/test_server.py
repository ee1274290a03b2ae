"""The HTTP server as ``accessd serve`` runs it (the ``serve`` fixture starts the same command line).

* Under either server, a graceful stop (SIGTERM) writes every decision record still queued: the
  records are held in the workers' queues until the stop (the writer is told to wait 10 minutes),
  so the count shows what the stop itself wrote.
* Under the default server, clients that are slow to send their request line or headers, that
  connect and send nothing, or that keep an idle connection open hold no Python worker: normal
  requests are answered promptly while more such clients are connected than the server has
  workers and threads (and than granian's per-worker connection limit would allow if it were
  low). The bound is generous (2 s for an answer that takes milliseconds); gunicorn's sync
  workers do not meet it (two such clients stall them), which is why it is not the default.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from accessd import servers
from accessd.models import DecisionLog
from tests.support.api import CUSTOMER, evaluation, post_json

PROMPT_SECONDS = 2.0  # generous: an answer takes milliseconds; a stalled worker takes forever


def batch(n: int) -> dict:
    return {
        "subject": {"type": "user", "id": "r.schmidt"},
        "action": {"name": "read", "properties": {"field": "email"}},
        "context": {"purpose": "care"},
        "evaluations": [
            {"resource": {"type": "customer", "id": str(i), "properties": dict(CUSTOMER, client_id=f"C-{i}")}}
            for i in range(n)
        ],
    }


@pytest.mark.parametrize("server", servers.NAMES)
def test_a_graceful_stop_writes_every_queued_decision_record(server, serve, loaded_db, employees, token):
    base, proc = serve(
        loaded_db.url,
        server=server,
        # hold every record in the workers' queues until the stop
        ACCESSD_DECISION_LOG_FLUSH_SECONDS="600",
        ACCESSD_DECISION_LOG_BATCH_SIZE="1000000",
    )
    per_call, calls = 50, 40

    def call(_):
        answer = post_json(base + "/access/v1/evaluations", token, batch(per_call))
        assert len(answer["evaluations"]) == per_call
        return per_call

    with ThreadPoolExecutor(4) as pool:  # concurrent calls: both workers take some
        answered = sum(pool.map(call, range(calls)))
    with loaded_db.session() as s:
        assert s.scalar(select(func.count(DecisionLog.id))) == 0  # all still queued

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    with loaded_db.session() as s:
        assert s.scalar(select(func.count(DecisionLog.id))) == answered == per_call * calls


class SlowClients:
    """Connections that hold no request a server could answer: ``kinds`` of each, kept open (and
    trickling one piece a second) until :meth:`close`."""

    KINDS = ("request_line", "headers", "silent", "idle")

    def __init__(self, port: int, each: int):
        self.port = port
        self.socks: list[tuple[str, socket.socket]] = []
        self.stop = threading.Event()
        for kind in self.KINDS:
            for _ in range(each):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if kind == "request_line":
                    sock.sendall(b"GE")
                elif kind == "headers":
                    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                elif kind == "idle":  # a keep-alive client that made one request and went quiet
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
                sock.settimeout(None)  # blocking, so that a MSG_DONTWAIT peek never waits
                self.socks.append((kind, sock))
        self.trickler = threading.Thread(target=self._trickle, daemon=True)
        self.trickler.start()

    def _trickle(self) -> None:
        n = 0
        while not self.stop.wait(1):
            n += 1
            for kind, sock in self.socks:
                try:
                    if kind == "request_line":  # "GET /aaaa...", a byte a second
                        sock.sendall(b"T /"[n - 1 : n] or b"a")
                    elif kind == "headers":
                        sock.sendall(f"X-Slow-{n}: yes\r\n".encode())
                except OSError:
                    pass  # closed by the server: open_kinds() reports it

    def open_kinds(self) -> set[str]:
        """The kinds whose connections are all still open (no EOF or reset from the server)."""
        closed = set()
        for kind, sock in self.socks:
            try:
                if sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                    closed.add(kind)
            except BlockingIOError:
                pass  # nothing to read: open
            except OSError:
                closed.add(kind)
        return set(self.KINDS) - closed

    def close(self) -> None:
        self.stop.set()
        self.trickler.join()
        for _, sock in self.socks:
            sock.close()


def answered_promptly(base: str, token: str) -> list[str]:
    """GET /healthz and one AuthZEN evaluation, three times each on new connections; the ones
    not answered correctly within PROMPT_SECONDS."""
    late = []
    for attempt in range(3):
        for name in ("healthz", "evaluation"):
            started = time.monotonic()
            try:
                if name == "healthz":
                    with urllib.request.urlopen(base + "/healthz", timeout=PROMPT_SECONDS) as r:
                        ok = json.load(r)["status"] == "ok"
                else:
                    body = evaluation("r.schmidt", field="email")
                    ok = post_json(base + "/access/v1/evaluation", token, body)["decision"] is True
            except OSError as exc:
                ok, name = False, f"{name} ({exc})"
            took = time.monotonic() - started
            if not ok or took > PROMPT_SECONDS:
                late.append(f"{name} #{attempt + 1}: {took:.2f} s")
    return late


def check_slow_clients_hold_no_worker(serve, database_url: str, token: str, server: str) -> None:
    base, _ = serve(database_url, workers=2, server=server)
    port = int(base.rsplit(":", 1)[1])
    # 24 connections: far more than 2 workers x 1 thread, and than 2 x 8 connection permits
    clients = SlowClients(port, each=6)
    try:
        time.sleep(1.5)  # the tricklers have sent more: every slow client is mid-request
        late = answered_promptly(base, token)
        still_open = clients.open_kinds()
    finally:
        clients.close()
    assert not late, f"not answered within {PROMPT_SECONDS} s while slow clients were connected: {late}"
    assert still_open == set(SlowClients.KINDS), "the server closed slow clients before the check"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the subject is HTTP
def test_slow_and_stalled_clients_hold_no_worker(serve, database_url, employees, token):
    check_slow_clients_hold_no_worker(serve, database_url, token, servers.DEFAULT)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stop_right_after_the_start_is_prompt(serve, database_url):
    """A SIGTERM while a worker still loads the app is not lost (granian would otherwise kill
    that worker after its 30 s timeout, or wait forever without one)."""
    for _ in range(3):
        _, proc = serve(database_url, workers=2)  # returns once one worker answers
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - started < 15, "a worker missed the stop signal"
