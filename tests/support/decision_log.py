"""Helpers for the decision-log tests: rows as the decision service queues them, a writer that
writes only when asked, writes held up by a real lock, and waiting for a condition."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time

import psycopg
from sqlalchemy import func, select

from accessd.config import DecisionLogSettings
from accessd.models import DecisionLog
from accessd.pdp.decision_log import DecisionLogWriter


def entry(i, **changes) -> tuple:
    """A decision-log row as the decision service queues it (see decision_rows.COLUMNS)."""
    row = dict(
        at=dt.datetime(2025, 1, 1, 12, 0, 0),
        decision_id=f"d{i}",
        client="crm",
        subject_id="b.huber",
        action="read",
        resource_type="customer",
        resource_id=str(i),
        fields=["iban"],
        purpose="care",
        decision="allow",
        reason="allowed",
        revision=1,
    )
    row.update(changes)
    return tuple(row.values())


def idle_writer(db, **settings) -> DecisionLogWriter:
    """A writer whose thread writes nothing by itself during a test (huge batch, 60 s flush)
    unless a caller waits for room."""
    settings = {"batch_size": 10_000, "flush_seconds": 60, **settings}
    return DecisionLogWriter(db, DecisionLogSettings(**settings))


def count_rows(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(DecisionLog.id)))


@contextlib.contextmanager
def writes_blocked(db):
    """Another connection holds the write lock (SQLite) or the table lock (PostgreSQL): the
    writer's next transaction waits for it (and fails after the busy timeout on SQLite)."""
    if db.dialect == "sqlite":
        conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
    else:
        conn = psycopg.connect(db.url.replace("+psycopg", ""))
        conn.execute("LOCK TABLE decision_log IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def wait_for(condition, seconds: float = 10.0, what: str = "the condition"):
    """Poll until ``condition()`` is truthy (returned); fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.02)
