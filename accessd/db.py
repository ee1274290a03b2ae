"""Engine and session setup (SQLite by default, PostgreSQL via psycopg 3) and migrations.

``Database(url)`` owns one SQLAlchemy engine and a session factory. Services receive a
``Session`` (or the ``Database``) as an argument; nothing here reads Flask globals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x61636365_73736D31  # PostgreSQL advisory lock key for migrations ("accessm1")
MIGRATION_WAIT_SECONDS = 600  # SQLite: how long a second upgrade waits for the first
SQLITE_BUSY_MS = 10000


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.close()


class Database:
    def __init__(self, url: str):
        from accessd import changes  # noqa: F401 -- registers the change-sequence session events

        self.url = normalise_url(url)
        if self.url.startswith("sqlite:///"):
            Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration (all heads).

        Concurrent upgrades (two `accessd init` on an empty database, a sync starting while
        another process upgrades) run one after the other: the migration transaction first takes
        a lock -- a transaction-level advisory lock on PostgreSQL, the database's write lock
        (``BEGIN IMMEDIATE``, waiting up to MIGRATION_WAIT_SECONDS) on SQLite -- and only then
        reads the schema version, so the second finds the schema current and does nothing.
        """
        from alembic import command  # only here: importing alembic costs every command ~0.5 s

        with self.engine.begin() as conn:
            _lock_for_migration(conn)
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "heads")
            finally:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")

    def ping(self) -> None:
        """Raise if the database cannot be reached (readiness checks)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _lock_for_migration(conn) -> None:
    """Serialise migrations across processes and hosts (see ``Database.upgrade``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout={MIGRATION_WAIT_SECONDS * 1000}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str):
    from alembic.config import Config  # see Database.upgrade

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
