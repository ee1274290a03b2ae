"""The decision log: every decision, written off the request path in batches.

The request path only appends a tuple to a bounded in-memory buffer (``DecisionLogWriter.record``).
A background thread, started lazily by the first record in each process (never by
``create_app``), takes up to ``batch_size`` entries at a time and inserts them in one statement,
at least every ``flush_seconds``. When the buffer is full, new entries are dropped and counted;
the count is reported by ``stats()`` (served in ``/readyz``) and logged as a warning, never
silent. ``close()`` stops the thread and writes everything left; it runs at interpreter exit
(``atexit``, which also covers gunicorn workers) and from the gunicorn ``worker_exit`` hook.

The log holds who asked (client), about whom (subject), what (action, resource type and id,
fields), why (purpose), the answer, the reason code and the policy revision — never the values
of the record's other attributes.
"""

from __future__ import annotations

import atexit
import collections
import datetime as dt
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from accessd.errors import Invalid
from accessd.models import DecisionLog, utcnow

log = logging.getLogger("accessd.decision_log")

COLUMNS = (
    "at",
    "decision_id",
    "client",
    "subject_id",
    "action",
    "resource_type",
    "resource_id",
    "fields",
    "purpose",
    "decision",
    "reason",
    "revision",
)
_LIMITS = {
    "decision_id": 64,
    "client": 200,
    "subject_id": 200,
    "action": 64,
    "resource_type": 64,
    "resource_id": 200,
    "purpose": 64,
    "decision": 16,
    "reason": 64,
}

_writers: weakref.WeakSet[DecisionLogWriter] = weakref.WeakSet()


def close_all() -> None:
    """Flush and stop every writer of this process (atexit and gunicorn's worker_exit)."""
    for writer in list(_writers):
        writer.close()


class DecisionLogWriter:
    def __init__(self, db, settings):
        self.db = db
        self.enabled = settings.enabled
        self.batch_size = max(1, settings.batch_size)
        self.flush_seconds = settings.flush_seconds
        self.buffer_size = max(1, settings.buffer_size)
        self._buffer: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._last_drop_warning = 0.0
        _writers.add(self)

    # -- request path ---------------------------------------------------------------------------

    def record(self, *entry) -> None:
        """Queue one decision: the values of ``COLUMNS`` in order (a tuple append; no I/O)."""
        self.record_many((entry,))

    def record_many(self, rows: Sequence[tuple]) -> None:
        """Queue several decisions (same column order as ``record``)."""
        if not self.enabled or not rows:
            return
        if self._pid != os.getpid():
            self._start()
        room = self.buffer_size - len(self._buffer)
        if room < len(rows):
            self._overflow(len(rows) - max(room, 0))
            rows = rows[: max(room, 0)]
        self._buffer.extend(rows)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def _overflow(self, n: int) -> None:
        self.dropped += n
        now = time.monotonic()
        if now - self._last_drop_warning > 10:
            self._last_drop_warning = now
            log.warning(
                "decision log buffer full (%d entries): %d decisions dropped so far",
                self.buffer_size,
                self.dropped,
            )

    # -- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None:  # forked: the parent's thread and entries are not ours
                self._buffer.clear()
            self._pid = os.getpid()
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="accessd-decision-log", daemon=True)
            self._thread.start()
            atexit.register(close_all)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must survive a database outage
                log.exception("decision log: writing a batch failed")
                time.sleep(min(self.flush_seconds, 1.0))

    def flush(self) -> int:
        """Write everything buffered now (in batches); returns the number of rows written."""
        total = 0
        with self._write_lock:
            while self._buffer:
                batch = []
                try:
                    for _ in range(self.batch_size):
                        batch.append(self._buffer.popleft())
                except IndexError:
                    pass
                total += self._insert(batch)
        return total

    def _insert(self, batch: list[tuple]) -> int:
        params = [_params(entry, self._sqlite) for entry in batch]
        try:
            self._executemany(params)
        except Exception:  # noqa: BLE001 - retry one by one so one bad row loses only itself
            log.exception("decision log: batch of %d failed; retrying row by row", len(params))
            ok = 0
            for row in params:
                try:
                    self._executemany([row])
                    ok += 1
                except Exception:  # noqa: BLE001
                    self.failed += 1
            self.written += ok
            return ok
        self.written += len(params)
        return len(params)

    def _executemany(self, params: list[tuple]) -> None:
        """Insert through the DB-API driver directly: its executemany binds rows in C and
        releases the GIL while the database works, so the writer thread barely competes with
        request threads (SQLAlchemy's per-row processing cost ~40% of single-decision
        throughput under gunicorn's threaded workers)."""
        conn = self.db.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.executemany(self._sql, params)
            cur.close()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    @property
    def _sqlite(self) -> bool:
        return self.db.engine.dialect.name == "sqlite"

    @property
    def _sql(self) -> str:
        mark = "?" if self._sqlite else "%s"
        return f"INSERT INTO decision_log ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and write everything left. Safe to call more than once."""
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - at exit there is nobody to raise to
            log.exception("decision log: final flush failed; %d entries lost", len(self._buffer))
        self._thread = None
        self._pid = None

    def stats(self) -> dict:
        return {
            "enabled": self.enabled,
            "queued": len(self._buffer),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "buffer_size": self.buffer_size,
        }


_LIMIT_AT = tuple(_LIMITS.get(c) for c in COLUMNS)
_AT, _FIELDS = COLUMNS.index("at"), COLUMNS.index("fields")


def _params(entry: tuple, sqlite: bool) -> tuple:
    """One row's driver parameters: strings cut to their column size, ``fields`` as JSON text,
    ``at`` in SQLAlchemy's SQLite DateTime format on SQLite (a datetime for PostgreSQL)."""
    out = list(entry)
    for i, limit in enumerate(_LIMIT_AT):
        if limit and isinstance(out[i], str) and len(out[i]) > limit:
            out[i] = out[i][:limit]
    out[_FIELDS] = None if out[_FIELDS] is None else json.dumps(out[_FIELDS])
    if sqlite:
        out[_AT] = out[_AT].strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(out)


# -- reading and retention ----------------------------------------------------------------------


@dataclass
class Query:
    resource_type: str | None = None
    resource_id: str | None = None
    subject_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


def parse_resource(value: str) -> tuple[str, str | None]:
    """``customer:123`` -> ("customer", "123"); ``customer`` -> ("customer", None)."""
    rtype, sep, rid = value.partition(":")
    if not rtype:
        raise Invalid("resource must look like TYPE:ID (e.g. customer:123)", pointer="resource")
    return rtype, (rid if sep else None)


def parse_time(value: str, name: str = "since") -> dt.datetime:
    """An ISO date or date-time (UTC if no offset), or a relative ``30d`` / ``12h``."""
    value = value.strip()
    try:
        if value[-1:] in ("d", "h") and value[:-1].isdigit():
            delta = (
                dt.timedelta(days=int(value[:-1]))
                if value[-1] == "d"
                else dt.timedelta(hours=int(value[:-1]))
            )
            return utcnow() - delta
        parsed = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError) as exc:
        raise Invalid(
            f"{name} must be an ISO date/time or like 30d or 12h, not {value!r}", pointer=name
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def query(session: Session, q: Query) -> list[dict]:
    """Decisions matching ``q``, newest first, as plain dicts."""
    stmt = select(DecisionLog)
    if q.resource_type:
        stmt = stmt.where(DecisionLog.resource_type == q.resource_type)
    if q.resource_id is not None:
        stmt = stmt.where(DecisionLog.resource_id == q.resource_id)
    if q.subject_id:
        stmt = stmt.where(DecisionLog.subject_id == q.subject_id)
    if q.since:
        stmt = stmt.where(DecisionLog.at >= q.since)
    if q.until:
        stmt = stmt.where(DecisionLog.at < q.until)
    stmt = stmt.order_by(DecisionLog.at.desc(), DecisionLog.id.desc()).limit(q.limit).offset(q.offset)
    return [as_dict(r) for r in session.scalars(stmt)]


def search(db, q: Query) -> list[dict]:
    """``query`` in its own read transaction (for callers that hold a Database, not a Session)."""
    with db.session() as s:
        return query(s, q)


def as_dict(r: DecisionLog) -> dict:
    return {
        "at": r.at.isoformat(timespec="milliseconds") + "Z",
        "decision_id": r.decision_id,
        "client": r.client,
        "subject": r.subject_id,
        "action": r.action,
        "resource": {"type": r.resource_type, "id": r.resource_id},
        "fields": r.fields,
        "purpose": r.purpose,
        "decision": r.decision,
        "reason": r.reason,
        "revision": r.revision,
    }


def purge(session: Session, retention_days: int, now: dt.datetime | None = None) -> int:
    """Delete decisions older than ``retention_days``; returns how many were deleted."""
    if retention_days < 1:
        raise Invalid("retention must be at least 1 day", pointer="retention_days")
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    result = session.execute(delete(DecisionLog).where(DecisionLog.at < cutoff))
    return result.rowcount or 0
