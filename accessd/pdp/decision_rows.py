"""Decision-log rows as the database stores them: the column order the decision service queues
(``COLUMNS``), one transaction writing a batch through the DB-API driver (``RowWriter``), and a
refused row made storable (``storable``). The queue, the writer thread and its counters are
``accessd.pdp.decision_log``.

A row is a tuple of the values of ``COLUMNS`` in order: ``at`` a datetime (naive UTC or aware),
``fields`` a list of field names or None, ``revision`` an int, the rest text or None.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3

from accessd.models import utcnow

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
_ROW = f"({', '.join('?' * len(COLUMNS))})"
_NOT_NULL = {"decision_id", "subject_id", "action", "resource_type", "decision", "reason"}


class RowWriter:
    """Writes a batch of rows in one transaction on a DB-API connection: multi-row INSERTs on
    SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3's ``cursor.copy()``)."""

    def __init__(self, sqlite: bool):
        self._sqlite = sqlite
        self._copy_sql = f"COPY decision_log ({', '.join(COLUMNS)}) FROM STDIN"
        # rows per INSERT: as many as the driver's bound-parameter limit allows (2,730 with
        # SQLite's default 32,766); COPY has no such unit
        self.rows_per_statement = _sqlite_rows_per_insert() if sqlite else 1
        self._inserts: dict[int, str] = {}  # SQLite: rows -> INSERT text

    def insert(self, conn, rows: list) -> None:
        """Write and commit ``rows``; the driver's error is raised as is (the caller rolls back)."""
        cur = conn.cursor()
        try:
            if self._sqlite:
                self._insert_sqlite(cur, rows)
            else:
                with cur.copy(self._copy_sql) as copy:
                    for row in _pg_params(rows):
                        copy.write_row(row)
        finally:
            cur.close()
        conn.commit()

    def _insert_sqlite(self, cur, rows: list) -> None:
        """Multi-row INSERTs of ``rows_per_statement`` rows, the rest in INSERTs of powers of two.

        sqlite3 releases the GIL around each statement and must win it back after, which under a
        busy request thread takes up to the switch interval (5 ms): per row with executemany
        (about 200 rows/s), per statement here. Each connection keeps the statements it compiled
        (sqlite3 caches 128), and compiling one costs five times running it (7 ms for 2,730 rows),
        so only a few sizes are ever used: a cache of every size of rest held 190 MiB per connection.
        The decision-log writer under load hands over whole statements (``DecisionLogWriter``)."""
        width = len(COLUMNS)
        params = list(itertools.chain.from_iterable(_sqlite_params(rows)))
        start = 0
        while start < len(params):
            left = (len(params) - start) // width
            n = self.rows_per_statement if left >= self.rows_per_statement else 1 << (left.bit_length() - 1)
            sql = self._inserts.get(n)
            if sql is None:
                sql = self._inserts[n] = _sqlite_insert(n)
            cur.execute(sql, params[start : start + n * width])
            start += n * width


def _sqlite_insert(n: int) -> str:
    return f"INSERT INTO decision_log ({', '.join(COLUMNS)}) VALUES " + ", ".join([_ROW] * n)


def _sqlite_rows_per_insert() -> int:
    probe = sqlite3.connect(":memory:")
    try:
        return max(1, probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS))
    finally:
        probe.close()


# -- turning rows into driver parameters ---------------------------------------------------------

_START = object()
_fields_text: dict[tuple, str] = {}  # fields list -> JSON text; used by the writer thread only


def _json_fields(fields) -> str | None:
    if fields is None:
        return None
    key = tuple(fields)
    text = _fields_text.get(key)
    if text is None:
        if len(_fields_text) >= 4096:
            _fields_text.clear()
        text = _fields_text[key] = json.dumps(list(key))
    return text


def _naive_utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is None else at.astimezone(dt.UTC).replace(tzinfo=None)


def _sqlite_params(rows):
    """SQLite parameters: ``at`` in SQLAlchemy's SQLite DateTime text, ``fields`` as JSON text.
    The rows of one API call share their ``at`` object, so it is converted once."""
    last, at = _START, None
    for r in rows:
        if r[0] is not last:
            last = r[0]
            at = _naive_utc(last).isoformat(" ", "microseconds")
        yield (at, r[1], r[2], r[3], r[4], r[5], r[6], _json_fields(r[7]), r[8], r[9], r[10], r[11])


def _pg_params(rows):
    """COPY rows: ``at`` a naive UTC datetime, ``fields`` as JSON text."""
    last, at = _START, None
    for r in rows:
        if r[0] is not last:
            last = r[0]
            at = _naive_utc(last)
        yield (at, r[1], r[2], r[3], r[4], r[5], r[6], _json_fields(r[7]), r[8], r[9], r[10], r[11])


# -- a row the database refused ------------------------------------------------------------------


def storable(row) -> tuple:
    """The same decision with every value the database could refuse made storable: text with
    lone surrogates or NUL backslash-escaped (``"123\\ud800"`` -> ``"123\\\\ud800"``) and cut to
    its column; a missing required text ""; ``at`` not a datetime -> now; ``fields`` a list of
    such texts; ``revision`` not a 32-bit integer -> null; missing columns null, extra ignored."""
    try:
        values = list(row)
    except TypeError:
        values = [row]
    values = (values + [None] * len(COLUMNS))[: len(COLUMNS)]
    out = []
    for name, v in zip(COLUMNS, values, strict=True):
        if name == "at":
            v = _naive_utc(v) if isinstance(v, dt.datetime) else utcnow()
        elif name == "fields":
            if v is not None:
                v = [_text(f, 200) for f in (v if isinstance(v, list | tuple) else [v])]
        elif name == "revision":
            if not (isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31):
                v = None
        elif v is None:
            v = "" if name in _NOT_NULL else None
        else:
            v = _text(v, _LIMITS[name])
        out.append(v)
    return tuple(out)


def _text(value, limit: int) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - an object that cannot even print itself
        text = f"<{type(value).__name__}>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:limit]
