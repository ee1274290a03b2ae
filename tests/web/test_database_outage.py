"""A real database outage: requests are answered 503 JSON with Retry-After (never 500), /readyz
says so, and every decision record queued before or during the outage is written once the
database is back. PostgreSQL: a dedicated throwaway server stopped and started again. SQLite:
another connection holds the write lock while the writer's busy timeout is short."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event

from accessd import accounts, create_app
from accessd.db import Database
from accessd.pdp import revisions, tokens
from tests.support.api import evaluation
from tests.support.decision_log import count_rows, entry, wait_for
from tests.support.postgres import PostgresServer

TESTS = Path(__file__).resolve().parents[1]
POLICY_DIR = TESTS.parent / "policies"


class StoppablePostgres(PostgresServer):
    """A throwaway server that can be stopped and started again on the same data and port."""

    def options(self) -> str:
        return f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"

    def pause(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(
            pg_ctl, "-D", str(self.data), "-o", self.options(), "-w", "-l", str(self.root / "log"), "start"
        )


def prepared(url: str) -> tuple[Database, str, str]:
    """A migrated database with the demo policy, reception employee r.schmidt and two tokens."""
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        revisions.load_dir(s, POLICY_DIR, "test")
        account = accounts.upsert(s, subject_id="r.schmidt", username="r.schmidt", region="north")
        accounts.grant(s, account, "reception")
        used, unused = tokens.create(s, "crm", "decide"), tokens.create(s, "other", "decide")
    return db, used, unused


def service(url: str, tmp_path, **log_settings):
    settings = {"heartbeat_seconds": 0.2, "flush_seconds": 0.2, **log_settings}
    app = create_app(
        {
            "database_url": url,
            "instance_path": str(tmp_path / "instance"),
            "secret_key": "test-secret-key-not-for-production",
            "decision_log": settings,
        }
    )
    return app, app.test_client()


def ask(client, token):
    return client.post(
        "/access/v1/evaluation",
        json=evaluation("r.schmidt", field="email"),
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.is_json and answer.json["error"] in ("database_unavailable", "unavailable")
    assert int(answer.headers["Retry-After"]) >= 1


@pytest.fixture
def postgres():
    server = StoppablePostgres()
    server.start()
    server.execute("CREATE DATABASE outage")
    yield server
    server.stop()


def test_postgresql_outage_answers_503_and_writes_every_queued_record_once_it_is_back(postgres, tmp_path):
    db, token, unused_token = prepared(postgres.url("outage"))
    # records wait in the queue (no timed flush) until the outage makes the writer retry
    app, client = service(db.url, tmp_path, flush_seconds=60)
    writer = app.extensions["accessd"].decision_log
    answered = sum(ask(client, token).status_code == 200 for _ in range(5))
    assert answered == 5
    postgres.pause()
    try:
        for _ in range(10):  # answered from the caches while they are fresh, else 503
            answer = ask(client, token)
            if answer.status_code == 200:
                answered += 1
            else:
                assert_unavailable(answer)
        assert_unavailable(ask(client, unused_token))  # needs the database: 503, not 500
        writer.record_many([entry(i) for i in range(3)])  # a caller queueing during the outage
        wait_for(lambda: writer.stats()["last_error"], what="the writer noticing the outage")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["database"] == "unreachable"
        assert writer.stats()["queued"] == answered + 3
    finally:
        postgres.resume()
    wait_for(lambda: writer.stats()["written"] == answered + 3, seconds=60, what="the backlog written")
    assert count_rows(db) == answered + 3
    assert wait_for(lambda: client.get("/readyz").status_code == 200, what="ready again")
    assert ask(client, unused_token).status_code == 200
    app.extensions["accessd"].close()
    assert count_rows(db) == answered + 4
    db.dispose()


def test_sqlite_writes_failing_degrade_readiness_and_every_record_is_written_afterwards(tmp_path):
    db, token, _ = prepared(f"sqlite:///{tmp_path / 'accessd.sqlite3'}")
    app, client = service(db.url, tmp_path)
    engine = app.extensions["accessd"].db.engine
    # the writer gives up on a held lock after 0.1 s instead of 10 s (after the default pragmas)
    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA busy_timeout=100"))
    engine.dispose()
    writer = app.extensions["accessd"].decision_log
    answered = sum(ask(client, token).status_code == 200 for _ in range(3))
    wait_for(lambda: writer.stats()["written"] == 3, what="the first records written")
    blocker = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for _ in range(20):  # reads still work (WAL): decisions are answered, records queue up
            answer = ask(client, token)
            if answer.status_code == 200:
                answered += 1
            else:
                assert_unavailable(answer)
        wait_for(lambda: writer.stats()["last_error"], what="the writer failing")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json["reason"] == (
            "decision log: writing decision records fails in 1 worker(s) (OperationalError)"
        )
        assert writer.stats()["queued"] == answered - 3 > 0
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: writer.stats()["written"] == answered, seconds=60, what="the backlog written")
    assert count_rows(db) == answered
    assert wait_for(lambda: client.get("/readyz").status_code == 200, what="ready again")
    app.extensions["accessd"].close()
    db.dispose()
