"""Push delivery (RFC 8935): a thread per process POSTs each pending SET of an enabled push stream
to the receiver's ``endpoint_url``.

Where it runs. Every web worker has one (``Services.ssf``; it starts with the worker's first
request, at gunicorn's ``post_worker_init`` through :func:`start_all`, or when this process
queues an event -- never in ``create_app``), and so does ``accessd scheduler``. It wakes right
after a commit in this process that wrote outbox rows (:mod:`accessd.ssf.outbox` hooks the
session's ``after_commit``) and otherwise checks the outbox every ``ssf.outbox_poll_seconds``
for rows other processes wrote. ``close()`` (``Services.close``, and :func:`close_all` at exit)
stops it after the POST in flight.

Claiming. Any number of threads in any number of processes work on one outbox without
delivering a row twice: a row is taken by a conditional UPDATE that counts the attempt and
leases the row (``attempts = attempts + 1``, ``next_attempt_at = now + lease``) only if it is
still pending, due and at the attempt count the claimer read; the database lets exactly one
such UPDATE match. A process that dies mid-POST leaves the lease to expire, and the row is tried
again (``lease`` is longer than any POST can take).

Order. A row is due only when no older row of the same stream and person is pending: a
person's next event waits until the previous one is delivered or has failed for good.

An answer. Any 2xx is delivered (RFC 8935 asks receivers for 202). A 400 whose ``err`` says the
SET itself is unacceptable (``invalid_request``, ``invalid_key``, ``invalid_issuer``,
``invalid_audience``) fails the row at once: the same token would be refused again. Anything
else -- another status, a connection refused, a timeout, a redirect (never followed: the
Authorization header is not sent to another URL) -- is retried after ``ssf.retry_first_seconds``,
doubling up to ``ssf.retry_max_seconds``, until ``ssf.max_attempts`` attempts have failed; then
the row is ``failed`` and `accessd events` shows it with its last error.

De-duplication. Each row has its own ``jti`` and is marked delivered once. A receiver sees the
same ``jti`` twice only when it accepted a POST whose answer never reached accessd (a timeout
after the receiver's commit, a dropped connection) and the retry arrives; receivers discard such
repeats by their ``jti`` (RFC 8935 leaves duplicate detection to them).

Secrets. The stream's ``authorization_header`` goes into the request and nowhere else: log lines
and ``last_error`` name the stream, the event, the person and the failure, never the header or
the token.
"""

from __future__ import annotations

import atexit
import datetime as dt
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import weakref
from typing import NamedTuple

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import aliased

from accessd.models import SsfOutbox, SsfStream, utcnow
from accessd.ssf import events as ev

log = logging.getLogger("accessd.ssf")

#: RFC 8935 §2.4 errors that say the SET itself will not be accepted; others may pass later
PERMANENT_ERRORS = ("invalid_request", "invalid_key", "invalid_issuer", "invalid_audience")
BATCH = 50  # rows read per pass

_deliverers: weakref.WeakSet[Deliverer] = weakref.WeakSet()
_enqueued = threading.Condition()  # notified after a commit that wrote outbox rows (long polls wait)


def wake_all() -> None:
    """Something was queued in this process: start (if need be) and wake every deliverer, and
    wake the long polls waiting here."""
    with _enqueued:
        _enqueued.notify_all()
    for deliverer in list(_deliverers):
        deliverer.wake()


def wait_for_events(timeout: float) -> None:
    """Block until this process queues an event or ``timeout`` seconds pass (long polls)."""
    with _enqueued:
        _enqueued.wait(timeout)


def start_all() -> None:
    """Start every deliverer of this process (gunicorn's post_worker_init)."""
    for deliverer in list(_deliverers):
        deliverer.start()


def close_all() -> None:
    """Stop every deliverer of this process (atexit)."""
    for deliverer in list(_deliverers):
        deliverer.close()


def _after_fork() -> None:
    for deliverer in list(_deliverers):
        deliverer._process_state()


atexit.register(close_all)
os.register_at_fork(after_in_child=_after_fork)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not instructions: the Authorization header stays with its URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _Job(NamedTuple):
    id: int
    attempts: int  # counting the one being made
    stream_id: str
    subject_id: str
    event: str
    jti: str
    token: str
    endpoint: str
    authorization: str | None


class Deliverer:
    """This process's push deliverer for one database (see the module docstring)."""

    def __init__(self, db, settings):
        self.db = db
        self.settings = settings
        self.timeout = settings.timeout_seconds
        # a POST is at most a connect, a send and a read, each bounded by the timeout
        self.lease = dt.timedelta(seconds=3 * settings.timeout_seconds + 10)
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._process_state()
        _deliverers.add(self)

    def _process_state(self) -> None:
        """Threads and events belong to one process: made anew after a fork."""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_failure_log = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once; a no-op when running or closed)."""
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=Deliverer._run, args=(weakref.ref(self),), name="accessd-ssf-delivery", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread once the POST in flight is done (it is retried later if cut short)."""
        self._closed = True
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=3 * self.timeout + 1)

    @staticmethod
    def _run(ref: weakref.ref) -> None:
        """The thread: drain what is due, then wait for a wake or the poll interval. It holds
        its deliverer only weakly while waiting, so a deliverer dropped without ``close()`` (an
        app a test threw away) ends its thread instead of polling a database forever."""
        while True:
            self = ref()
            if self is None or self._stopping.is_set():
                return
            self._wake.clear()
            try:
                while not self._stopping.is_set() and self.run_once():
                    pass
            except Exception as exc:  # noqa: BLE001 - the database may be down: keep trying
                now = time.monotonic()
                if now - self._last_failure_log > 60:
                    self._last_failure_log = now
                    log.warning("event delivery paused: %s; retrying", type(exc).__name__)
                self._stopping.wait(1.0)
            wake, interval = self._wake, self.settings.outbox_poll_seconds
            del self
            wake.wait(interval)

    def run_once(self, limit: int = BATCH) -> int:
        """One pass: claim the due rows (the first pending one per stream and person) in one
        statement, POST them, record the outcomes in one transaction; returns how many were
        attempted. (One claim and one write per pass, not per row: under load the database's
        write lock, not the POSTs, limits how fast events go out.)"""
        now = utcnow()
        with self.db.session() as s:
            due = s.execute(_DUE, {"now": now, "limit": limit}).all()
        claimed = self._claim({row.id: row.attempts for row in due})
        outcomes = []
        for row in due:
            if self._stopping.is_set():
                break
            if row.id in claimed:
                job = _Job(row.id, row.attempts + 1, *row[2:])
                outcomes.append((job, *self._post(job)))
        self._finish(outcomes)
        return len(outcomes)

    def _claim(self, seen: dict[int, int]) -> set[int]:
        """Take the rows still pending, due, first of their person and at the attempt count read
        (``seen``: id -> attempts); the ids taken. Another deliverer's claim of the same row
        matches nothing here: the database lets exactly one conditional UPDATE take a row."""
        if not seen:
            return set()
        now = utcnow()
        with self.db.session() as s:
            taken = s.execute(_CLAIM, {"ids": list(seen), "now": now, "until": now + self.lease}).all()
        return {row.id for row in taken if row.attempts == seen[row.id] + 1}

    def _post(self, job: _Job) -> tuple[bool, bool, str | None]:
        """POST the SET: (delivered, failed for good, error)."""
        headers = {"Content-Type": ev.MEDIA_TYPE, "Accept": "application/json"}
        if job.authorization:
            headers["Authorization"] = job.authorization
        request = urllib.request.Request(job.endpoint, data=job.token.encode("ascii"), headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
            return True, False, None
        except urllib.error.HTTPError as exc:
            err, description = _error_body(exc)
            text = (
                f"HTTP {exc.code}" + (f" {err}" if err else "") + (f": {description}" if description else "")
            )
            if 300 <= exc.code < 400:
                text += " (redirects are not followed)"
            return False, exc.code == 400 and err in PERMANENT_ERRORS, text
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout | TimeoutError):
                return False, False, f"no answer within {self.timeout:g} s"
            return False, False, f"{type(reason).__name__}: {reason}"[:200]

    def _finish(self, outcomes: list[tuple[_Job, bool, bool, str | None]]) -> None:
        """Record each POST's outcome: delivered, failed for good, or due again after a backoff."""
        if not outcomes:
            return
        now = utcnow()
        with self.db.session() as s:
            for job, delivered, permanent, error in outcomes:
                s.execute(
                    update(SsfOutbox)
                    .where(
                        SsfOutbox.id == job.id,
                        SsfOutbox.status == "pending",
                        SsfOutbox.attempts == job.attempts,
                    )
                    .values(**self._outcome(job, delivered, permanent, error, now)),
                    execution_options={"synchronize_session": False},
                )

    def _outcome(self, job: _Job, delivered: bool, permanent: bool, error: str | None, now) -> dict:
        what = f"{ev.short_name(job.event)} for {job.subject_id} on stream {job.stream_id} (jti {job.jti})"
        if delivered:
            log.debug("delivered %s", what)
            return {"status": "delivered", "delivered_at": now, "last_error": None}
        if permanent or job.attempts >= self.settings.max_attempts:
            log.warning("gave up delivering %s after %d attempts: %s", what, job.attempts, error)
            return {"status": "failed", "last_error": (error or "")[:300]}
        wait = min(
            self.settings.retry_max_seconds, self.settings.retry_first_seconds * 2 ** (job.attempts - 1)
        )
        log.info("delivery of %s failed (attempt %d): %s; next in %g s", what, job.attempts, error, wait)
        return {"next_attempt_at": now + dt.timedelta(seconds=wait), "last_error": (error or "")[:300]}


_older = aliased(SsfOutbox, name="older")
#: an older pending row of the same stream and person exists (it goes first)
_OLDER_PENDING = exists().where(
    _older.stream_id == SsfOutbox.stream_id,
    _older.subject_id == SsfOutbox.subject_id,
    _older.status == "pending",
    _older.id < SsfOutbox.id,
)
_DUE = (
    select(
        SsfOutbox.id,
        SsfOutbox.attempts,
        SsfOutbox.stream_id,
        SsfOutbox.subject_id,
        SsfOutbox.event_type,
        SsfOutbox.jti,
        SsfOutbox.token,
        SsfStream.endpoint_url,
        SsfStream.authorization_header,
    )
    .join(SsfStream, SsfStream.id == SsfOutbox.stream_id)
    .where(
        SsfOutbox.status == "pending",
        SsfOutbox.next_attempt_at <= bindparam("now"),
        SsfStream.status == "enabled",
        SsfStream.delivery_method == ev.PUSH,
        ~_OLDER_PENDING,
    )
    .order_by(SsfOutbox.id)
    .limit(bindparam("limit"))
)
_CLAIM = (
    update(SsfOutbox)
    .where(
        SsfOutbox.id.in_(bindparam("ids", expanding=True)),
        SsfOutbox.status == "pending",
        SsfOutbox.next_attempt_at <= bindparam("now"),
        ~_OLDER_PENDING,
    )
    .values(attempts=SsfOutbox.attempts + 1, next_attempt_at=bindparam("until"))
    .returning(SsfOutbox.id, SsfOutbox.attempts)
    .execution_options(synchronize_session=False)
)


def _error_body(exc: urllib.error.HTTPError) -> tuple[str | None, str | None]:
    """``err`` and ``description`` of an RFC 8935 error answer (or nothing)."""
    try:
        body = json.loads(exc.read(4096) or b"null")
    except (ValueError, OSError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    err, description = body.get("err"), body.get("description")
    return (
        err[:50] if isinstance(err, str) else None,
        description[:200] if isinstance(description, str) else None,
    )
