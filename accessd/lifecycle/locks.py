"""One directory sync at a time across processes and hosts: a lock held in the database.

``with SyncLock(db) as lock: ...`` raises :class:`accessd.errors.SyncBusy` at once when another
process holds it.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept for
  the whole run. The server drops it when that connection ends, so a killed process never leaves
  it behind, whatever host it ran on.
* SQLite (one host by nature): a row in ``run_lock``, inserted atomically (``ON CONFLICT DO
  NOTHING``). The holder refreshes ``heartbeat_at`` every ``HEARTBEAT_SECONDS``; a row whose
  process no longer runs on this host, or whose heartbeat is older than ``STALE_SECONDS``, was
  left by a dead process and is taken over.

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
    """The cluster-wide lock ``name`` (default ``sync``); use as a context manager."""

    def __init__(self, db: Database, name: str = "sync"):
        self.db = db
        self.name = name
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
        return beat is not None and utcnow() - beat > dt.timedelta(seconds=STALE_SECONDS)

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

    def _start_heartbeat(self) -> None:
        self._beat = threading.Thread(target=self._heartbeat, name=f"{self.name}-lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
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
