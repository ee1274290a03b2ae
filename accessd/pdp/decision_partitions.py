"""The decision log's monthly partitions on PostgreSQL (SQLite keeps one plain table).

``decision_log`` is partitioned by RANGE on ``at`` (naive UTC), one partition per calendar month,
``decision_log_partitions.decision_log_YYYY_MM`` holding ``[YYYY-MM-01, next month)``. The
partitions live in a schema of their own so that the ``public`` schema holds exactly the tables
the models declare (what Alembic and the schema test compare).

There is no DEFAULT partition: a row in a default partition would forbid creating its month's
partition later (PostgreSQL refuses a new partition while the default one holds rows of its
range), and every new partition would have to scan the default one. Instead partitions are made
ahead (``ensure``: this month and the next ``MONTHS_AHEAD``) by every decision-log writer when
it starts and by the daily retention job, and a batch that still meets a month without one
(``is_missing_partition``) has its months created and is written again by the writer.

Every function takes a DB-API connection of psycopg 3 (the writer's raw connection, or a
session's ``connection().connection``) and works inside the caller's transaction; the caller
commits. Creating and dropping partitions is serialised across processes by a transaction-level
advisory lock and waits at most ``LOCK_TIMEOUT`` for the table lock PostgreSQL takes for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

SCHEMA = "decision_log_partitions"
MONTHS_AHEAD = 2  # partitions made ahead of the current month
LOCK_KEY = 0x61636365_73736470  # advisory lock for partition maintenance ("accessdp")
LOCK_TIMEOUT = "10s"  # creating or dropping a partition locks decision_log; never wait longer
_NAME = re.compile(r"^decision_log_(\d{4})_(\d{2})$")


def month_start(at: dt.datetime) -> dt.datetime:
    """The first instant of ``at``'s month (naive UTC; an aware ``at`` is converted)."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return dt.datetime(at.year, at.month, 1)


def next_month(month: dt.datetime) -> dt.datetime:
    return dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: dt.datetime) -> str:
    return f"decision_log_{month.year:04d}_{month.month:02d}"


def months_of(values) -> set[dt.datetime]:
    """The months of the datetimes among ``values`` that a partition can bound (not December
    9999, whose end Python cannot represent); other values are ignored."""
    months = set()
    for at in values:
        if isinstance(at, dt.datetime):
            try:
                month = month_start(at)
                next_month(month)
            except (ValueError, OverflowError):
                continue
            months.add(month)
    return months


def existing(conn) -> dict[dt.datetime, str]:
    """The partitions of ``decision_log``: month start -> qualified name (ours only: a partition
    named otherwise, made by hand, is left alone)."""
    cur = conn.cursor()
    try:
        cur.execute(
            "SELECT n.nspname, c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = 'decision_log'::regclass"
        )
        found = {}
        for schema, name in cur.fetchall():
            m = _NAME.match(name)
            if m and schema == SCHEMA:
                found[dt.datetime(int(m[1]), int(m[2]), 1)] = f"{SCHEMA}.{name}"
        return found
    finally:
        cur.close()


def ensure(conn, now: dt.datetime, months_ahead: int = MONTHS_AHEAD, also: Iterable[dt.datetime] = ()) -> int:
    """Make sure partitions exist for ``now``'s month, the ``months_ahead`` after it and the months
    of the instants in ``also``; returns how many were created. Idempotent, and safe when several
    processes run it at once (advisory lock, then ``CREATE TABLE IF NOT EXISTS``)."""
    month = month_start(now)
    wanted = {month}
    for _ in range(months_ahead):
        month = next_month(month)
        wanted.add(month)
    wanted.update(month_start(at) for at in also)
    if not wanted - existing(conn).keys():
        return 0  # the common case: no lock taken at all
    cur = conn.cursor()
    try:
        _lock(cur)
        missing = sorted(wanted - existing(conn).keys())  # again: another process may have made them
        for month in missing:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{partition_name(month)} PARTITION OF decision_log "
                f"FOR VALUES FROM ('{month.isoformat(' ')}') TO ('{next_month(month).isoformat(' ')}')"
            )
        return len(missing)
    finally:
        cur.close()


def drop_before(conn, cutoff: dt.datetime) -> tuple[int, int]:
    """Drop every partition whose whole month is before ``cutoff``; returns (partitions, rows).
    The rows are counted first and the partitions dropped after: a drop locks ``decision_log``
    until the caller commits, so nothing slow runs after the first one."""
    cur = conn.cursor()
    try:
        _lock(cur)
        old = [name for month, name in sorted(existing(conn).items()) if next_month(month) <= cutoff]
        rows = 0
        for name in old:
            cur.execute(f"SELECT count(*) FROM {name}")
            rows += cur.fetchone()[0]
        for name in old:
            cur.execute(f"DROP TABLE {name}")
        return len(old), rows
    finally:
        cur.close()


def _lock(cur) -> None:
    cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


def is_missing_partition(exc: BaseException) -> bool:
    """Whether ``exc`` may be PostgreSQL refusing a row because no partition covers its ``at``:
    a check violation (23514), the only one ``decision_log`` can raise -- it has no CHECK
    constraints. The message is not looked at: the server may translate it."""
    exc = getattr(exc, "orig", None) or exc
    return getattr(exc, "sqlstate", None) == "23514"
