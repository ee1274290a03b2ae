"""The decision log: every decision, written off the request path, none ever lost.

Request path. ``record_many`` appends the rows of one API call to this process's in-memory queue
(a deque extend; no I/O): all of them, or none. While ``buffer_size`` rows are queued, it waits up
to ``max_wait_seconds`` for the writer to make room, then raises ``Unavailable`` (503 with
Retry-After) and queues none of the call's rows -- backpressure instead of dropping evidence.
While writing is failing (the database refuses writes) it does not wait: waiting could not help.
A call with more rows than ``buffer_size`` is taken when the queue is empty.

Writer. A thread per process (started by the first record, never by ``create_app``; a forked
child starts its own) wakes when ``batch_size`` rows are queued and at least every
``flush_seconds``, and writes up to ``batch_size`` rows per transaction through the DB-API
driver (``decision_rows.RowWriter``: multi-row INSERTs on SQLite, ``COPY ... FROM STDIN`` on
PostgreSQL). Woken by the queue, it writes whole INSERT statements only (on SQLite, 2,730 rows
each, or ``batch_size`` if smaller: a statement of a new size is compiled first, which costs more
than running it); the remainder waits for the next flush.

Partitions (PostgreSQL). ``decision_log`` has one partition per month
(``decision_partitions``). The writer makes sure this month's and the next two exist when its
thread starts; a batch refused because a row's month has no partition has the missing months
created and is written again (creating them failing counts as the database refusing: the rows
stay queued and are retried).

Failures. A batch refused because the database is unavailable (the driver's OperationalError or
InterfaceError: connection lost, database locked, disk full, table missing) goes back to the
front of the queue and is retried with backoff (0.5 s doubling to 10 s) until it is written. Any
other failure is a bad row: the batch is bisected until each bad row is alone, and such a row is
written with its offending values made storable (``decision_rows.storable``: lone surrogates and
NUL backslash-escaped, over-long strings cut to the column, unusable values replaced). If even
that is refused, the database is treated as unavailable and the rows stay queued.

Readiness. Every ``heartbeat_seconds`` (and at close) the writer upserts its counters into
``decision_log_worker`` (one row per process, ``host:pid:start``).
``decision_queries.health()`` adds up the rows updated within the last 5 heartbeats and this
process's live counters: older rows belong to workers that stopped or cannot reach the database
(this worker sees that failure itself), so a crashed worker never keeps /readyz degraded.
Rows older than a day are deleted by the next writer that starts. Hosts' clocks must agree to
within a heartbeat or two.

Shutdown. ``close()`` stops the thread and writes everything queued, retrying a refused write
for up to its timeout; it runs at interpreter exit (``atexit``) and from gunicorn's
``worker_exit`` hook.

The log holds who asked (client), about whom (subject), what (action, resource type and id,
fields), why (purpose), the answer, the reason code and the policy revision -- never the values
of the record's other attributes.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import itertools
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Sequence

from sqlalchemy import exc as sa_exc

from accessd.errors import Unavailable
from accessd.models import utcnow
from accessd.pdp import decision_partitions
from accessd.pdp.decision_rows import RowWriter, storable

log = logging.getLogger("accessd.decision_log")

_RETRY_FIRST, _RETRY_MAX = 0.5, 10.0  # seconds between attempts while the database refuses
STALE_HEARTBEATS = 5  # a worker's row counts for readiness while younger than this many heartbeats
_FORGET = dt.timedelta(days=1)  # worker rows older than this are deleted

_writers: weakref.WeakSet[DecisionLogWriter] = weakref.WeakSet()
_sequence = itertools.count(1)


def close_all() -> None:
    """Flush and stop every writer of this process (atexit and gunicorn's worker_exit)."""
    for writer in list(_writers):
        writer.close()


def _after_fork() -> None:
    for writer in list(_writers):
        writer._forked()


atexit.register(close_all)
os.register_at_fork(after_in_child=_after_fork)


class _Refused(Exception):
    """The database refused a write for a reason other than the rows; ``rows`` are not written."""

    def __init__(self, rows: list, cause: BaseException):
        super().__init__(str(cause))
        self.rows = rows
        self.cause = cause


class DecisionLogWriter:
    """The per-process queue and writer thread (see the module docstring for the contract)."""

    def __init__(self, db, settings):
        self.db = db
        self.enabled = settings.enabled
        self.batch_size = max(1, settings.batch_size)
        self.flush_seconds = max(0.01, settings.flush_seconds)
        self.buffer_size = max(1, settings.buffer_size)
        self.max_wait = max(0.0, settings.max_wait_seconds)
        self.heartbeat_seconds = max(0.1, settings.heartbeat_seconds)
        self.ready_max_queued = settings.ready_max_queued
        self._sqlite = db.engine.dialect.name == "sqlite"
        self._rows = RowWriter(self._sqlite)
        self._unit = min(self.batch_size, self.buffer_size, self._rows.rows_per_statement)  # see _drain
        mark = "?" if self._sqlite else "%s"
        self._upsert_sql = (
            "INSERT INTO decision_log_worker (worker, queued, written, failed_batches, waiting, "
            f"rejected, last_error, updated_at) VALUES ({', '.join([mark] * 8)}) "
            "ON CONFLICT (worker) DO UPDATE SET queued = excluded.queued, written = excluded.written, "
            "failed_batches = excluded.failed_batches, waiting = excluded.waiting, "
            "rejected = excluded.rejected, last_error = excluded.last_error, "
            "updated_at = excluded.updated_at"
        )
        self._forget_sql = f"DELETE FROM decision_log_worker WHERE updated_at < {mark}"
        dbapi = db.engine.dialect.loaded_dbapi
        self._outage_errors = (
            sa_exc.OperationalError,
            sa_exc.InterfaceError,
            sa_exc.TimeoutError,
            *(getattr(dbapi, n) for n in ("OperationalError", "InterfaceError") if hasattr(dbapi, n)),
        )
        self._buffer: collections.deque = collections.deque()
        self._process_state()
        _writers.add(self)

    def _process_state(self) -> None:
        """Threads, locks and counters belong to one process: made anew after a fork."""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._room = threading.Condition()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._started = False
        self._inflight = 0
        self.worker_id = f"{socket.gethostname()[:120]}:{os.getpid()}:{int(time.time())}.{next(_sequence)}"
        self.written = 0
        self.repaired = 0
        self.failed_batches = 0
        self.waiting = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._retry_delay = 0.0  # > 0 while the database refuses writes
        self._last_report = 0.0
        self._reported = False
        self._last_reject_warning = 0.0

    def _forked(self) -> None:
        self._buffer.clear()  # the parent's rows: the parent writes them
        self._process_state()

    # -- request path ---------------------------------------------------------------------------

    def record(self, *entry) -> None:
        """Queue one decision: the values of ``decision_rows.COLUMNS`` in order."""
        self.record_many((entry,))

    def record_many(self, rows: Sequence[tuple]) -> None:
        """Queue the decisions of one API call (same column order as ``record``): all of them,
        or none and ``Unavailable`` when the queue stays full for ``max_wait_seconds``."""
        if not self.enabled or not rows:
            return
        if not self._running:
            self._start()
        if not isinstance(rows, list | tuple):
            rows = list(rows)
        buffer = self._buffer
        if len(buffer) + self._inflight + len(rows) > self.buffer_size and (buffer or self._inflight):
            self._wait_for_room(len(rows))
        buffer.extend(rows)  # one C call: the writer never sees half of a call's rows
        if len(buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _wait_for_room(self, n: int) -> None:
        deadline = time.monotonic() + self.max_wait
        buffer = self._buffer
        with self._room:
            self.waiting += 1
            try:
                while (buffer or self._inflight) and len(buffer) + self._inflight + n > self.buffer_size:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._retry_delay:
                        self._reject(len(buffer) + self._inflight)
                    self._wake.set()
                    self._room.wait(left)
            finally:
                self.waiting -= 1

    def _reject(self, queued: int):
        self.rejected += 1
        retry_after = math.ceil(self._retry_delay) if self._retry_delay else 1
        now = time.monotonic()
        if now - self._last_reject_warning > 10:
            self._last_reject_warning = now
            log.warning(
                "decision log full (%d records queued%s): %d requests answered 503 so far",
                queued,
                ", the database refuses writes" if self._retry_delay else "",
                self.rejected,
            )
        raise Unavailable(
            f"the decision log cannot take more decisions now ({queued} queued"
            + (", the database refuses writes" if self._retry_delay else "")
            + f"); this call was not answered, retry in {retry_after} s",
            retry_after=retry_after,
        )

    # -- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._running:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="accessd-decision-log", daemon=True)
            self._thread.start()
            self._running = self._started = True

    def _run(self) -> None:
        if not self._sqlite:
            self._ensure_partitions()
        next_flush = time.monotonic() + self.flush_seconds
        more = False  # rows were left queued to send a heartbeat in between
        while not self._stopping.is_set():
            if self._retry_delay:  # refused: wait out the backoff, not for more rows
                self._stopping.wait(self._retry_delay)
                due = True
            elif more:
                due = True
            else:
                next_report = self._last_report + self.heartbeat_seconds
                timeout = min(next_flush, next_report) - time.monotonic()
                due = self._wake.wait(max(timeout, 0)) or time.monotonic() >= next_flush
                self._wake.clear()
            if self._stopping.is_set():
                break  # close() writes what is left
            more = False
            try:
                if due:
                    flushing = time.monotonic() >= next_flush
                    if flushing:
                        next_flush = time.monotonic() + self.flush_seconds
                    # under sustained load the queue never empties: stop for the heartbeat
                    whole = not (flushing or self.waiting)  # requests held by backpressure: write all
                    self._drain(until=self._last_report + self.heartbeat_seconds, whole=whole)
                    more = len(self._buffer) >= self._unit
                if self._retry_delay or time.monotonic() - self._last_report >= self.heartbeat_seconds:
                    self.report()
            except Exception:  # noqa: BLE001 - recorded by _failed; the rows stay queued
                pass

    def flush(self) -> int:
        """Write everything queued now; returns the number of rows written. If the database
        refuses, the rows stay queued and its error is raised."""
        return self._drain()

    def _drain(self, until: float | None = None, whole: bool = False) -> int:
        """Write batches until the queue is empty (or the monotonic time ``until`` passed). With
        ``whole``, only batches of whole statements (``_unit`` rows): the rest waits for the
        flush, at most ``flush_seconds``, instead of costing a statement of a new size."""
        total = 0
        least = self._unit if whole else 1
        with self._write_lock:
            if len(self._buffer) < least:
                return 0
            conn = self._connect()
            try:
                while len(self._buffer) >= least:
                    total += self._write(conn, self._take(whole))
                    if until is not None and time.monotonic() >= until:
                        break
            except _Refused as refused:
                self._buffer.extendleft(reversed(refused.rows))
                self._inflight = 0
                self._failed(refused.cause, conn)
                raise refused.cause from None
            finally:
                conn.close()
        self._succeeded()
        return total

    def _connect(self):
        """A DB-API connection from the pool; a failure to get one counts as a failed write."""
        try:
            return self.db.engine.raw_connection()
        except Exception as exc:
            self._failed(exc)
            raise

    def _take(self, whole: bool = False) -> list:
        buffer = self._buffer
        n = min(len(buffer), self.batch_size)
        if whole:
            n -= n % self._unit
        self._inflight = n  # still counted as queued until written
        return [buffer.popleft() for _ in range(n)]

    def _write(self, conn, rows: list) -> int:
        """Write ``rows``, each part in a transaction of its own; a part that fails for its
        content is bisected down to single rows, and a single bad row is stored repaired.
        Raises _Refused with every row not written when the database itself refuses."""
        pending = [(rows, False)]  # a stack of (rows, repaired); the last is next
        written = 0
        while pending:
            part, repaired = pending.pop()
            try:
                self._rows.insert(conn, part)
            except Exception as exc:  # noqa: BLE001 - classified below; nothing is dropped
                _rollback(conn)
                if not self._sqlite and decision_partitions.is_missing_partition(exc):
                    try:
                        created = self._create_partitions(conn, part)
                    except Exception as failure:  # noqa: BLE001 - the database refuses: retried
                        _rollback(conn)
                        rest = [row for later, _ in reversed(pending) for row in later]
                        raise _Refused(part + rest, failure) from failure
                    if created:  # each retry creates at least one: this ends
                        pending.append((part, repaired))
                        continue
                if repaired or isinstance(exc, self._outage_errors):
                    rest = [row for later, _ in reversed(pending) for row in later]
                    raise _Refused(part + rest, exc) from exc
                if len(part) == 1:
                    log.warning(
                        "decision log: a record cannot be stored as is (%s); storing it with the "
                        "offending values escaped",
                        _describe(exc),
                    )
                    pending.append(([storable(part[0])], True))
                else:
                    half = len(part) // 2
                    pending.append((part[half:], False))
                    pending.append((part[:half], False))
                continue
            written += len(part)
            self.written += len(part)
            self._inflight -= len(part)
            if repaired:
                self.repaired += 1
            if self.waiting:  # room for the requests held by backpressure
                with self._room:
                    self._room.notify_all()
        return written

    def _create_partitions(self, conn, rows: list) -> int:
        """Create the missing partitions for the months of ``rows`` (and the ones made ahead)."""
        months = decision_partitions.months_of(r[0] for r in rows if isinstance(r, tuple | list) and r)
        created = decision_partitions.ensure(conn, utcnow(), also=months)
        conn.commit()
        if created:
            log.info("decision log: created %d monthly partitions for a batch that needed them", created)
        return created

    def _ensure_partitions(self) -> None:
        """This month's partition and the next ones (PostgreSQL), when the thread starts; a
        failure is logged only: a batch that needs a partition creates it."""
        try:
            conn = self.db.engine.raw_connection()
        except Exception as exc:  # noqa: BLE001 - the first write will report the outage
            log.warning("decision log: cannot check the monthly partitions (%s)", _describe(exc))
            return
        try:
            decision_partitions.ensure(conn, utcnow())
            conn.commit()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            _rollback(conn)
            if isinstance(exc, self._outage_errors):
                conn.invalidate()  # a broken connection must not go back to the pool
            log.warning("decision log: cannot create the monthly partitions ahead (%s)", _describe(exc))
        finally:
            conn.close()

    def _failed(self, exc: BaseException, conn=None) -> None:
        self.failed_batches += 1
        self.last_error = _describe(exc)
        self._retry_delay = min(_RETRY_MAX, self._retry_delay * 2) if self._retry_delay else _RETRY_FIRST
        if conn is not None and isinstance(exc, self._outage_errors):
            conn.invalidate()  # a broken connection must not go back to the pool
        log.warning(
            "decision log: the database refused a write (%s); %d records queued, retrying in %.1f s",
            self.last_error,
            len(self._buffer),
            self._retry_delay,
        )
        if self.waiting:  # requests waiting for room get their 503 now
            with self._room:
                self._room.notify_all()

    def _succeeded(self) -> None:
        if self._retry_delay:
            log.warning("decision log: writing again; %d records queued", len(self._buffer))
        self._retry_delay = 0.0
        self.last_error = None

    def report(self) -> None:
        """Upsert this worker's counters into ``decision_log_worker`` (for /readyz)."""
        s = self.stats()
        now = utcnow()
        stamp = now.isoformat(" ", "microseconds") if self._sqlite else now
        params = (
            self.worker_id,
            s["queued"],
            s["written"],
            s["failed_batches"],
            s["waiting"],
            s["rejected"],
            s["last_error"],
            stamp,
        )
        self._last_report = time.monotonic()
        conn = self._connect()
        try:
            cur = conn.cursor()
            if not self._reported:
                old = now - _FORGET
                cur.execute(self._forget_sql, (old.isoformat(" ", "microseconds") if self._sqlite else old,))
            cur.execute(self._upsert_sql, params)
            cur.close()
            conn.commit()
        except Exception as exc:
            _rollback(conn)
            self._failed(exc, conn)
            raise
        finally:
            conn.close()
        self._reported = True
        self._succeeded()

    def close(self, timeout: float = 20.0) -> None:
        """Stop the thread and write everything queued, retrying for up to ``timeout`` seconds
        while the database refuses. Safe to call more than once; a later record restarts."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self._running = False
        while True:
            try:
                self._drain()
                break
            except Exception:  # noqa: BLE001 - recorded by _failed
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error(
                        "decision log: the database refused writes until shutdown; %d records "
                        "could not be written",
                        len(self._buffer),
                    )
                    break
                time.sleep(min(self._retry_delay or _RETRY_FIRST, left))
        if self._started:
            with contextlib.suppress(Exception):  # recorded by _failed; the rows are what matter
                self.report()

    def stats(self) -> dict:
        """This process's counters (``decision_queries.health()`` adds up every worker's)."""
        return {
            "enabled": self.enabled,
            "worker": self.worker_id,
            "queued": len(self._buffer) + max(self._inflight, 0),
            "written": self.written,
            "repaired": self.repaired,
            "failed_batches": self.failed_batches,
            "waiting": self.waiting,
            "rejected": self.rejected,
            "last_error": self.last_error,
            "buffer_size": self.buffer_size,
        }


def _rollback(conn) -> None:
    with contextlib.suppress(Exception):  # a dead connection; the caller invalidates it
        conn.rollback()


def _describe(exc: BaseException) -> str:
    """Error class and the first line of the driver's message: SQLAlchemy's wrapper adds the
    statement and its parameters, which must not reach logs or readiness answers."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]
