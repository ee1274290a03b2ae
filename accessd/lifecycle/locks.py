"""Cluster-wide locks held in the database: one directory sync at a time across processes and
hosts (:class:`SyncLock`), and one leading ``accessd scheduler`` (:class:`Leadership`).

``with SyncLock(db) as lock: ...`` raises :class:`accessd.errors.SyncBusy` at once when another
process holds it; ``try_acquire()`` answers False instead, and ``renew()`` tells a holder whether
it still holds the lock.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept for
  the whole run. The server drops it when that connection ends, so a killed process never leaves
  it behind, whatever host it ran on.
* SQLite (one host by nature): a row in ``run_lock``, inserted atomically (``ON CONFLICT DO
  NOTHING``). The holder refreshes ``heartbeat_at`` every ``HEARTBEAT_SECONDS``; a row whose
  process no longer runs on this host, or whose heartbeat is older than ``STALE_SECONDS``, was
  left by a dead process and is taken over.

On PostgreSQL the lock's connection also asks the server to probe the client (TCP keepalives and
``tcp_user_timeout``, derived from the lock's ``stale_seconds``): a holder whose host vanished
without closing the connection loses the lock within about that time, not after the kernel's two
hours.

On both, the ``run_lock`` row says who holds the lock, since when and for which run, for the
message the second process prints. The lock does not block web workers: it is not a table lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from accessd.db import Database
from accessd.errors import SyncBusy
from accessd.models import RunLock, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
STALE_SECONDS = 120


@dataclass(frozen=True)
class Holder:
    owner: str
    run_id: int | None
    since: dt.datetime

    def describe(self, name: str) -> str:
        run = f", run {self.run_id}" if self.run_id else " (its run is starting)"
        return f"a {name} is already running since {self.since:%Y-%m-%d %H:%M:%S} UTC{run}"


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"accessd:{name}".encode()).digest()[:8], "big", signed=True)


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (tells a reused pid apart); '' off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive_here(owner: str) -> bool | None:
    """True/False when ``owner`` ran on this host and is (not) running; None for another host."""
    host, pid, start, _token = owner.rsplit(":", 3)
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _process_start(int(pid)) == start


class SyncLock:
    """The cluster-wide lock ``name`` (default ``sync``); use as a context manager.

    ``stale_seconds``: a holder not heard from for this long is gone (see the module docstring);
    ``heartbeat_seconds``: how often a thread refreshes an SQLite holder's row (None: no thread,
    the holder calls :meth:`renew` itself at least that often)."""

    def __init__(
        self,
        db: Database,
        name: str = "sync",
        *,
        stale_seconds: float = STALE_SECONDS,
        heartbeat_seconds: float | None = HEARTBEAT_SECONDS,
    ):
        self.db = db
        self.name = name
        self.stale_seconds = stale_seconds
        self.heartbeat_seconds = heartbeat_seconds
        pid = os.getpid()
        self.owner = f"{socket.gethostname()}:{pid}:{_process_start(pid)}:{secrets.token_hex(4)}"
        self._conn = None  # PostgreSQL: the connection holding the advisory lock
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # acquiring -----------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or left by a dead holder); False when another holds it."""
        try:
            self.acquire()
        except SyncBusy:
            return False
        return True

    def acquire(self) -> None:
        """Take the lock or raise SyncBusy naming the holder."""
        if self.db.dialect == "postgresql":
            self._acquire_advisory()
        elif not self._insert_row():
            holder = self.holder()
            if holder is None or not self._stale(holder) or not self._take_over(holder):
                raise SyncBusy(self._busy_text(holder))
        else:
            self._start_heartbeat()

    def _acquire_advisory(self) -> None:
        conn = self.db.engine.connect()
        try:
            self._probe_client(conn)
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_key(self.name)}
            ).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            raise SyncBusy(self._busy_text(self.holder()))
        self._conn = conn
        with self.db.session() as s:  # information only: the advisory lock decides
            s.execute(delete(RunLock).where(RunLock.name == self.name))
            s.add(RunLock(name=self.name, owner=self.owner, acquired_at=utcnow(), heartbeat_at=utcnow()))

    def _probe_client(self, conn) -> None:
        """Have the server drop this session (and the lock) within about ``stale_seconds`` of
        this host going silent: keepalive probes on an idle connection, a send timeout on a busy
        one. Ignored on a Unix socket, where a dead client is seen at once."""
        idle, interval = max(1, int(self.stale_seconds / 3)), max(1, int(self.stale_seconds / 6))
        conn.execute(text(f"SET tcp_keepalives_idle = {idle}"))
        conn.execute(text(f"SET tcp_keepalives_interval = {interval}"))
        conn.execute(text("SET tcp_keepalives_count = 3"))
        conn.execute(text(f"SET tcp_user_timeout = {int(self.stale_seconds * 1000)}"))

    def _insert_row(self) -> bool:
        now = utcnow()
        stmt = (
            sqlite_insert(RunLock)
            .values(name=self.name, owner=self.owner, acquired_at=now, heartbeat_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        with self.db.session() as s:
            return s.execute(stmt).rowcount == 1

    def _stale(self, holder: Holder) -> bool:
        alive = _alive_here(holder.owner)
        if alive is not None:
            return not alive
        with self.db.session() as s:
            beat = s.scalar(select(RunLock.heartbeat_at).where(RunLock.name == self.name))
        return beat is not None and utcnow() - beat > dt.timedelta(seconds=self.stale_seconds)

    def _take_over(self, holder: Holder) -> bool:
        """Replace a dead holder's row (compare-and-swap on its owner); False if someone was faster."""
        now = utcnow()
        with self.db.session() as s:
            done = s.execute(
                update(RunLock)
                .where(RunLock.name == self.name, RunLock.owner == holder.owner)
                .values(owner=self.owner, run_id=None, acquired_at=now, heartbeat_at=now)
            ).rowcount
        if done:
            log.info("took over the %s lock left by %s (no longer running)", self.name, holder.owner)
            self._start_heartbeat()
        return bool(done)

    def _busy_text(self, holder: Holder | None) -> str:
        if holder is None:
            return f"a {self.name} is already running (it started just now)"
        return holder.describe(self.name)

    # while held --------------------------------------------------------------------------------

    def holder(self) -> Holder | None:
        with self.db.session() as s:
            row = s.get(RunLock, self.name)
            return Holder(row.owner, row.run_id, row.acquired_at) if row else None

    def set_run(self, run_id: int) -> None:
        """Name the run this lock is held for (shown to a second process)."""
        with self.db.session() as s:
            s.execute(
                update(RunLock)
                .where(RunLock.name == self.name, RunLock.owner == self.owner)
                .values(run_id=run_id)
            )

    def renew(self) -> bool:
        """Whether this process still holds the lock; refreshes the SQLite row's heartbeat.

        False when it is lost: PostgreSQL, the lock's connection broke (the server has dropped the
        lock with it); SQLite, another process took the row over. A database error on SQLite is
        raised (the row may well still be ours: the caller decides how long to wait)."""
        if self.db.dialect == "postgresql":
            if self._conn is None:
                return False
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
            except Exception as exc:  # noqa: BLE001 - any failure: the session, and the lock, may be gone
                log.warning("the %s lock's database connection broke: %s", self.name, type(exc).__name__)
                conn, self._conn = self._conn, None
                conn.invalidate()
                conn.close()
                return False
            return True
        with self.db.session() as s:
            return (
                s.execute(
                    update(RunLock)
                    .where(RunLock.name == self.name, RunLock.owner == self.owner)
                    .values(heartbeat_at=utcnow())
                ).rowcount
                == 1
            )

    def _start_heartbeat(self) -> None:
        if self.heartbeat_seconds is None:
            return
        self._beat = threading.Thread(target=self._heartbeat, name=f"{self.name}-lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                with self.db.session() as s:
                    s.execute(
                        update(RunLock)
                        .where(RunLock.name == self.name, RunLock.owner == self.owner)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; staleness allows several
                log.debug("lock heartbeat failed: %s", exc)

    # releasing ---------------------------------------------------------------------------------

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        try:
            with self.db.session() as s:
                s.execute(delete(RunLock).where(RunLock.name == self.name, RunLock.owner == self.owner))
        finally:
            if self._conn is not None:
                self._unlock_advisory()

    def _unlock_advisory(self) -> None:
        conn, self._conn = self._conn, None
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_key(self.name)})
            conn.commit()
        except Exception:  # noqa: BLE001 - never return a connection that may still hold the lock
            conn.invalidate()
        finally:
            conn.close()


class Leadership:
    """Which one of several processes (on any hosts) leads: the one holding the lock ``name``.

    :meth:`start` runs a thread that, every ``retry_seconds``, either renews the lock (leading)
    or tries to take it (standing by). The lock is a :class:`SyncLock` whose holder is gone after
    ``lease_seconds`` without a word: on PostgreSQL a killed leader's connection, and with it the
    advisory lock, is dropped by the server at once (a vanished host's within about the lease);
    on SQLite its row is taken over as soon as its process is seen dead on this host (or its
    heartbeat is older than the lease). A standby therefore takes over within ``retry_seconds``
    of a leader's death, or about ``lease_seconds`` plus that when a host vanished.

    A leader stops leading at once when :meth:`confirm` or the thread finds the lock lost (its
    PostgreSQL connection broke, its SQLite row was taken over), and when it could not confirm
    the lock for ``lease_seconds`` (the database is unreachable: another process may lead by now).
    ``on_lead`` is called (in the thread) each time this process becomes leader. Each change of
    state, and each new leader seen while standing by, is logged."""

    def __init__(
        self,
        db: Database,
        name: str = "scheduler",
        *,
        lease_seconds: float,
        retry_seconds: float,
        on_lead=None,
    ):
        self.db = db
        self.name = name
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.on_lead = on_lead
        self._lock: SyncLock | None = None  # held while leading
        self._confirmed = 0.0  # time.monotonic() of the last renewal that succeeded
        self._mutex = threading.Lock()  # one renewal at a time: the PostgreSQL lock's connection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_leader: str | None = None
        self._problem: str | None = None  # the last failure logged (logged again when it changes)

    @property
    def owner(self) -> str | None:
        """This process's name in ``run_lock`` while it leads (host:pid:start:token)."""
        lock = self._lock
        return lock.owner if lock is not None else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying and hand the lead back (a standby takes it at its next try)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_seconds + 10)
        if not self._mutex.acquire(timeout=10):
            return  # a renewal hangs on a dead connection: it ends with this process
        try:
            if self._lock is not None:
                self._step_down("this process stops", logging.INFO)
        finally:
            self._mutex.release()

    def confirm(self) -> bool:
        """Whether this process leads, checked with the database now (before each job)."""
        with self._mutex:
            return self._renew()

    # the thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._mutex:
                    became = self._lock is None and self._try_lead()
                    if not became and self._lock is not None:
                        self._renew()
                if became and self.on_lead is not None:
                    self._begin()
                self._problem = None
            except Exception as exc:  # noqa: BLE001 - the database may be down: keep trying
                problem = f"{type(exc).__name__}: {exc}"
                if problem != self._problem:  # once, not every retry_seconds while it lasts
                    self._problem = problem
                    log.warning(
                        "%s leadership: %s; retrying every %g s", self.name, problem, self.retry_seconds
                    )
            self._stop.wait(self.retry_seconds)

    def _begin(self) -> None:
        """Call ``on_lead``; if it fails, hand the lead back, to be taken (and begun) again."""
        try:
            self.on_lead()
        except Exception:
            with self._mutex:
                if self._lock is not None:
                    self._step_down("could not begin leading; standing by")
            raise

    def _try_lead(self) -> bool:
        lock = SyncLock(self.db, self.name, stale_seconds=self.lease_seconds, heartbeat_seconds=None)
        if not lock.try_acquire():
            holder = lock.holder()
            leader = _process_name(holder.owner) if holder else "another process (starting)"
            if leader != self._seen_leader:
                self._seen_leader = leader
                since = f" since {holder.since:%Y-%m-%d %H:%M:%S} UTC" if holder else ""
                log.info("standing by: %s leads%s; trying every %g s", leader, since, self.retry_seconds)
            return False
        self._lock, self._confirmed, self._seen_leader = lock, time.monotonic(), None
        log.info("leading: this process (%s) runs the %s's jobs", _process_name(lock.owner), self.name)
        return True

    def _renew(self) -> bool:
        """Renew the held lock (under the mutex); step down when it is lost or unconfirmed."""
        lock = self._lock
        if lock is None:
            return False
        try:
            held = lock.renew()
        except Exception as exc:  # noqa: BLE001 - SQLite busy or unreachable: ours until the lease ends
            if time.monotonic() - self._confirmed < self.lease_seconds:
                log.warning("%s lease not renewed (%s); retrying", self.name, type(exc).__name__)
                return False
            self._step_down(
                f"lease not renewed for {self.lease_seconds:g} s ({type(exc).__name__}); standing by"
            )
            return False
        if not held:
            self._step_down("the lock was lost; standing by")
            return False
        self._confirmed = time.monotonic()
        return True

    def _step_down(self, why: str, level: int = logging.WARNING) -> None:
        lock, self._lock = self._lock, None
        log.log(level, "no longer leading: %s", why)
        try:
            lock.release()
        except Exception as exc:  # noqa: BLE001 - a broken lock releases itself (see SyncLock)
            log.debug("releasing the %s lock: %s", self.name, exc)


def _process_name(owner: str) -> str:
    """``host:pid`` of a lock owner (host:pid:start:token)."""
    return owner.rsplit(":", 2)[0]
