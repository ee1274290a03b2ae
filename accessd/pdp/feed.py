"""Each worker's change feed: keeps the in-memory subjects, API tokens and policy current.

The contract:

* **Start-up.** The first read in a process (a decision, a token look-up) loads everything and
  waits for it; nothing else on the request path ever waits for the database.
* **Changes cost what changed.** A background thread asks "anything new?" by reading one row,
  the change counter (:mod:`accessd.changes`). When it moved, the thread re-reads only the
  accounts and API clients whose ``change_seq`` is above the sequence it holds, and the policy
  when a revision was stored; each cache swaps in its new state, so readers never lock.
* **Push where the database can.** On PostgreSQL the thread also LISTENs on
  ``accessd_changes``: the committing transaction's NOTIFY wakes every worker of every process
  on every host at once. Polling (``cache.poll_seconds``) stays: it is the SQLite path and the
  fallback when the listening connection is lost (it is re-opened).
* **Safety net.** Everything is read again every ``cache.full_reload_seconds``, when a change
  could not name its rows (``reload_seq``), and when the counter went backwards (a restored
  database). This catches rows edited by hand outside accessd.
* **Forks.** A forked worker starts its own thread and catches up before its first answer.

``lag_seconds()`` is how long ago this worker last knew it was current; ``/readyz`` fails above
``cache.max_lag_seconds``. The thread holds only a weak reference to the feed, so a feed that
is dropped without :meth:`close` (tests) stops its thread too.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from accessd import changes
from accessd.config import CacheSettings
from accessd.db import Database
from accessd.pdp.revisions import EngineHolder
from accessd.pdp.subjects import SubjectCache
from accessd.pdp.tokens import TokenCache

log = logging.getLogger("accessd.feed")
ERROR_LOG_SECONDS = 60  # a failing feed logs at most this often
FREEZE_AFTER = (0.0, 60.0, 300.0, 900.0)  # see ChangeFeed._freeze_when_due


def _without_gc(load, *args) -> None:
    """Run ``load`` with the cyclic garbage collector paused: building 100,000 subjects made it
    run full collections over and over (a full load took twice as long)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        load(*args)
    finally:
        if enabled:
            gc.enable()


class ChangeFeed:
    def __init__(
        self,
        db: Database,
        settings: CacheSettings,
        subjects: SubjectCache,
        tokens: TokenCache,
        engines: EngineHolder,
    ):
        self.db = db
        self.settings = settings
        self.subjects, self.tokens, self.engines = subjects, tokens, engines
        for cache in (subjects, tokens, engines):
            cache.ensure = self.ensure
        self.seq: int | None = None  # the change sequence applied; None: nothing loaded yet
        self.listening = False  # a LISTEN connection is open (PostgreSQL)
        self.changes_applied = 0  # rows re-read since start (diagnostics and metrics)
        self.reporter: Callable[[int], None] | None = None  # told the sequence after each catch-up
        self.freeze_heap = False  # see _freeze_when_due
        self._process_state()

    def _process_state(self) -> None:
        """Threads and locks belong to one process: made anew after a fork."""
        self._pid = os.getpid()
        self._lock = threading.Lock()  # one catch-up at a time
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded_at = float("-inf")  # time.monotonic() of the last full load
        self._current_at = float("-inf")  # ... of the last time we knew we were current
        self._freezes: list[float] = []  # seconds after the last full load to freeze the heap at

    def ensure(self) -> None:
        """Before a read: make sure this process has loaded and its thread runs."""
        if self._thread is not None and self._pid == os.getpid():
            return
        self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid != os.getpid():  # a forked worker: its parent's thread did not come along
                self.db.engine.dispose(close=False)  # nor may its parent's connections be shared
                self._process_state()
            if self._thread is not None or self._stopping.is_set():
                return
            self.catch_up()  # start-up: the first reader waits for the load
            thread = threading.Thread(
                target=_run, args=(weakref.ref(self),), name="accessd-change-feed", daemon=True
            )
            thread.start()
            self._thread = thread

    def catch_up(self, full: bool = False) -> None:
        """Apply what changed since the sequence held (everything when due or ``full``)."""
        with self._lock, self.db.session() as s:
            seq, reload_seq = changes.counter(s)
            held = self.seq
            if (
                full
                or held is None
                or reload_seq > held
                or seq < held
                or time.monotonic() - self._loaded_at > self.settings.full_reload_seconds
            ):
                _without_gc(self.subjects.load_all, s)
                self.tokens.clear()
                self._loaded_at = time.monotonic()
                self._freezes = list(FREEZE_AFTER)
                changed = True
            elif seq != held:
                self.changes_applied += self.subjects.apply_changes(s, held)
                self.changes_applied += self.tokens.forget_changed(s, held)
                changed = True
            else:
                changed = False
            self.seq = seq
            if changed:
                self.engines.refresh()
            self._current_at = time.monotonic()
        if self.reporter is not None:
            self.reporter(seq)
        self._freeze_when_due()

    def _freeze_when_due(self) -> None:
        """Move what the process holds for good out of the garbage collector's sight.

        A worker with 100,000 subjects and the engine's per-role-set tables tracks ~900,000
        objects; every full collection walked them all, holding the GIL for 0.3-0.9 s
        (bench/scale.py). ``gc.freeze()`` after a full load, and again a few times as the
        engine's tables fill, leaves full collections only the objects made since. A young
        collection first, so that little garbage is frozen with them. Only in server workers
        (``freeze_heap``, set by ``accessd.servers.warm_up``): a process that makes and drops
        many apps (the tests) would keep every frozen one."""
        if self.freeze_heap and self._freezes and time.monotonic() - self._loaded_at >= self._freezes[0]:
            self._freezes.pop(0)
            gc.collect(1)
            gc.freeze()

    def lag_seconds(self) -> float:
        """Seconds since this worker last knew it was current (inf before the first load)."""
        return time.monotonic() - self._current_at

    def close(self) -> None:
        """Stop the thread (tests and shutdown)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(self.settings.poll_seconds + 5)

    # -- the background thread -------------------------------------------------------------------

    def _listen(self):
        """A psycopg connection LISTENing on the change channel, or None (SQLite)."""
        if self.db.dialect != "postgresql":
            return None
        import psycopg  # PostgreSQL only

        url = self.db.engine.url.set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        conn.execute(f"LISTEN {changes.CHANNEL}")
        self.listening = True
        return conn

    def _wait(self, conn) -> None:
        """Until a change is announced or the poll interval passes."""
        if conn is None:
            self._stopping.wait(self.settings.poll_seconds)
            return
        until = time.monotonic() + self.settings.poll_seconds
        while not self._stopping.is_set() and (left := until - time.monotonic()) > 0:
            # in slices of at most a second, so that close() is not kept waiting
            if any(True for _ in conn.notifies(timeout=min(left, 1.0), stop_after=1)):
                return


def _run(ref: weakref.ref[ChangeFeed]) -> None:
    conn, failed_at = None, float("-inf")
    try:
        while (feed := ref()) is not None and not feed._stopping.is_set():
            try:
                if conn is None and feed.db.dialect == "postgresql":
                    conn = feed._listen()
                    feed.catch_up()  # a change announced while we were not listening
                feed._wait(conn)
                if not feed._stopping.is_set():
                    feed.catch_up()
            except Exception as exc:  # the database went away: keep trying, keep what we have
                if time.monotonic() - failed_at > ERROR_LOG_SECONDS:
                    log.warning("change feed: %s; retrying every %.1f s", exc, feed.settings.poll_seconds)
                    failed_at = time.monotonic()
                conn = _close(conn)
                feed.listening = False
                feed._stopping.wait(feed.settings.poll_seconds)
            del feed  # only a weak reference between rounds
    finally:
        _close(conn)


def _close(conn) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken: nothing to release
            log.debug("change feed: closing the listening connection failed", exc_info=True)
    return None
