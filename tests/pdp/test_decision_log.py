"""The decision log: written off the request path, nothing lost (bad rows are stored repaired, a
full queue holds callers back or refuses them whole), nothing lost on shutdown, answerable by
resource (CLI and admin endpoint), purged by retention. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accessd.cli import main
from accessd.config import DecisionLogSettings
from accessd.errors import Unavailable
from accessd.models import DecisionLog
from accessd.pdp import decision_queries
from accessd.pdp.decision_log import DecisionLogWriter
from accessd.pdp.decision_rows import RowWriter
from tests.support.api import CUSTOMER, evaluation
from tests.support.decision_log import entry, idle_writer, wait_for, writes_blocked


def rows(db):
    with db.session() as s:
        return s.scalars(select(DecisionLog).order_by(DecisionLog.id)).all()


def billing_reads_iban_of_123(client, auth):
    """b.huber reads customer 123's IBAN for billing (allowed): the decision the tests look up."""
    client.post(
        "/access/v1/evaluation",
        json=evaluation("b.huber", field="iban", purpose="billing", rid="123"),
        headers=auth,
    )


def test_every_decision_is_logged_without_attribute_values(app, client, auth, loaded_db):
    billing_reads_iban_of_123(client, auth)
    app.extensions["accessd"].decision_log.flush()
    [row] = rows(loaded_db)
    assert (row.client, row.subject_id, row.action, row.resource_type, row.resource_id) == (
        "crm",
        "b.huber",
        "read",
        "customer",
        "123",
    )
    assert (row.fields, row.purpose, row.decision, row.reason, row.revision) == (
        ["iban"],
        "billing",
        "allow",
        "allowed",
        1,
    )
    stored = json.dumps([getattr(row, c.name) for c in DecisionLog.__table__.columns], default=str)
    assert CUSTOMER["iban"] not in stored and "Lovelace" not in stored


def test_n_decisions_then_shutdown_leaves_n_rows(app, client, auth, loaded_db):
    n = 120
    for i in range(n):
        client.post(
            "/access/v1/evaluation", json=evaluation("r.schmidt", field="email", rid=str(i)), headers=auth
        )
    app.extensions["accessd"].close()  # what atexit / gunicorn worker_exit do
    with loaded_db.session() as s:
        assert s.scalar(select(func.count(DecisionLog.id))) == n


def test_field_mask_call_logs_one_row_per_record(app, client, auth, loaded_db):
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "action": {"name": "read"},
        "context": {"purpose": "care"},
        "records": [{"type": "customer", "id": f"c{i}", "properties": CUSTOMER} for i in range(3)],
    }
    client.post("/access/v1/fields", json=body, headers=auth)
    app.extensions["accessd"].decision_log.flush()
    logged = rows(loaded_db)
    assert [r.resource_id for r in logged] == ["c0", "c1", "c2"]
    assert (
        logged[0].decision == "partial" and "iban" in logged[0].fields and "diagnosis" not in logged[0].fields
    )


def test_rows_the_database_refuses_are_stored_repaired_and_their_batch_in_full(loaded_db):
    # one batch: good rows around values a driver or database refuses; nothing may be lost
    writer = idle_writer(loaded_db)
    writer.record_many(
        [
            entry(0),
            entry(1, resource_id="123\ud800"),  # lone surrogate: no UTF-8 encoding exists
            entry(2, subject_id="a\x00b"),  # NUL: PostgreSQL text cannot hold it
            entry(3, purpose="p" * 300),  # longer than the column (PostgreSQL refuses)
            entry(4, fields=["email", "x\udfff"]),
            entry(5, revision=2**40),  # beyond the integer column
            entry(6),
        ]
    )
    writer.close()
    stored = {r.decision_id: r for r in rows(loaded_db)}
    assert sorted(stored) == [f"d{i}" for i in range(7)]
    assert writer.stats()["written"] == 7 and writer.stats()["queued"] == 0
    assert stored["d1"].resource_id == "123\\ud800"  # escaped, still readable by an auditor
    assert stored["d2"].subject_id in ("a\x00b", "a\\x00b")  # SQLite stores NUL as it is
    assert stored["d3"].purpose in ("p" * 300, "p" * 64)  # SQLite does not enforce lengths
    assert stored["d4"].fields in (["email", "x\udfff"], ["email", "x\\udfff"])  # JSON escapes it
    assert stored["d5"].revision in (2**40, None)
    assert stored["d0"].resource_id == "0" and stored["d6"].resource_id == "6"


def test_whatever_a_caller_queues_is_written(loaded_db):
    writer = idle_writer(loaded_db)
    plus_one = dt.timezone(dt.timedelta(hours=1))
    writer.record_many(
        [
            (dt.datetime(2025, 1, 1, 13, 0, tzinfo=plus_one), *entry(0)[1:]),
            entry(1, at="yesterday", fields="iban", revision="1"),
            entry(2, subject_id=None, decision=None, client=42),
            ("only", "two"),
        ]
    )
    writer.close()
    stored = rows(loaded_db)
    assert len(stored) == 4
    assert stored[0].at == dt.datetime(2025, 1, 1, 12, 0)  # normalised to UTC
    assert stored[2].subject_id == "" and stored[2].client == "42"


def test_a_full_queue_makes_the_call_wait_until_the_writer_makes_room(loaded_db):
    writer = idle_writer(loaded_db, buffer_size=5, max_wait_seconds=60)
    writer.record_many([entry(i) for i in range(5)])
    outcome = []
    caller = threading.Thread(
        target=lambda: outcome.append(writer.record_many([entry(i) for i in range(5, 8)]) or "queued")
    )
    with writes_blocked(loaded_db):
        caller.start()
        wait_for(lambda: writer.stats()["waiting"] == 1)
        time.sleep(0.2)
        assert not outcome and writer.stats()["queued"] == 5  # held: neither dropped nor refused
    caller.join(30)  # the writer wrote the five; the three went in
    assert outcome == ["queued"]
    writer.close()
    assert len(rows(loaded_db)) == 8


def test_a_call_that_finds_no_room_in_time_is_refused_whole(loaded_db):
    writer = idle_writer(loaded_db, buffer_size=5, max_wait_seconds=0.2)
    writer.record_many([entry(i) for i in range(4)])
    with writes_blocked(loaded_db), pytest.raises(Unavailable) as refused:
        writer.record_many([entry(i) for i in range(4, 7)])  # 4 + 3 > 5
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
    assert writer.stats()["rejected"] == 1
    writer.close()
    assert [r.decision_id for r in rows(loaded_db)] == ["d0", "d1", "d2", "d3"]  # none of the three


def test_a_call_larger_than_the_queue_is_taken_into_an_empty_queue(loaded_db):
    writer = idle_writer(loaded_db, buffer_size=2, max_wait_seconds=0)
    writer.record_many([entry(i) for i in range(5)])
    writer.close()
    assert len(rows(loaded_db)) == 5


def test_the_writer_thread_writes_batches_without_being_asked(loaded_db):
    """Woken by a full batch, the writer writes what is queued. On SQLite, whole batches only
    (INSERTs of one size, so that SQLite need not compile a new one), and the rest follows at the
    next flush; PostgreSQL's COPY has no such unit."""
    writer = DecisionLogWriter(loaded_db, DecisionLogSettings(batch_size=3, flush_seconds=4))
    started = time.monotonic()
    writer.record_many([entry(i) for i in range(7)])  # 7 >= batch_size wakes the thread
    wait_for(lambda: writer.stats()["written"] >= 6)
    if time.monotonic() - started < 3:  # not past the flush already (a stalled machine)
        assert writer.stats()["written"] == (6 if loaded_db.engine.dialect.name == "sqlite" else 7)
    wait_for(lambda: writer.stats()["written"] == 7)
    assert len(rows(loaded_db)) == 7
    writer.close()


def test_sqlite_inserts_come_in_a_few_sizes(loaded_db):
    """SQLite keeps every statement a connection compiled (sqlite3 caches 128), and a 2,730-row
    INSERT's program is large: 128 INSERTs of different sizes held 190 MiB. Batches of any size
    use whole statements and powers of two, so a few sizes only."""
    if loaded_db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL takes the rows by COPY")
    writer = RowWriter(sqlite=True)
    full = writer.rows_per_statement
    sizes = [1, 2, 3, 5, 6, 7, 9, 11, 13, 77, 100, 333, 1000, 1001, full - 1, full, full + 1, 2 * full + 14]
    statements: set[str] = set()

    class Recording:  # the real connection and cursor, with the statements they run noted
        def __init__(self, raw):
            self.raw = raw

        def cursor(self):
            self.cur = self.raw.cursor()
            return self

        def execute(self, sql, params=()):
            statements.add(sql)
            return self.cur.execute(sql, params)

        def close(self):
            self.cur.close()

        def commit(self):
            self.raw.commit()

    raw = loaded_db.engine.raw_connection()
    try:
        for n in sizes:
            writer.insert(Recording(raw), [entry(i) for i in range(n)])
    finally:
        raw.close()
    assert len(rows(loaded_db)) == sum(sizes)
    assert len(statements) <= full.bit_length() + 1, sorted(s.count("(") for s in statements)


def test_cli_lists_who_read_a_customer(app, client, auth, loaded_db):
    billing_reads_iban_of_123(client, auth)
    client.post("/access/v1/evaluation", json=evaluation("r.schmidt", field="email", rid="123"), headers=auth)
    client.post("/access/v1/evaluation", json=evaluation("r.schmidt", field="email", rid="999"), headers=auth)
    app.extensions["accessd"].decision_log.flush()
    runner = CliRunner()
    env = {"ACCESSD_DATABASE_URL": loaded_db.url}
    result = runner.invoke(main, ["decisions", "--resource", "customer:123"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "r.schmidt" in lines[0] and "purpose=care" in lines[0]
    assert "b.huber" in lines[1] and "iban" in lines[1] and "purpose=billing" in lines[1]
    as_json = runner.invoke(
        main, ["decisions", "--resource", "customer:123", "--subject", "b.huber", "--json"], env=env
    )
    [entry] = [json.loads(line) for line in as_json.output.splitlines()]
    assert entry["client"] == "crm" and entry["fields"] == ["iban"]


def test_admin_endpoint_answers_the_same_question(app, client, auth, admin_token):
    billing_reads_iban_of_123(client, auth)
    app.extensions["accessd"].decision_log.flush()
    r = client.get(
        "/api/v1/decisions?resource=customer:123&since=1d", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert r.status_code == 200
    [entry] = r.json["decisions"]
    assert entry["subject"] == "b.huber" and entry["purpose"] == "billing" and entry["decision"] == "allow"
    bad = client.get(
        "/api/v1/decisions?since=yesterday-ish", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert bad.status_code == 400 and bad.json["pointer"] == "/query/since"


def test_purge_deletes_only_entries_past_retention(loaded_db):
    old = dt.datetime(2020, 1, 1)
    new = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    writer = DecisionLogWriter(loaded_db, DecisionLogSettings())
    for at in (old, new):
        writer.record(at, "d", "crm", "b.huber", "read", "customer", "1", None, "care", "allow", "allowed", 1)
    writer.close()
    with loaded_db.session() as s:
        assert decision_queries.purge(s, 30) == 1
    assert [r.at for r in rows(loaded_db)] == [new]
    result = CliRunner().invoke(
        main, ["decisions", "purge", "--days", "1"], env={"ACCESSD_DATABASE_URL": loaded_db.url}
    )
    assert result.exit_code == 0 and "deleted 0" in result.output


def test_the_scheduled_retention_job_purges_old_decisions(loaded_db):
    from accessd import jobs

    writer = DecisionLogWriter(loaded_db, DecisionLogSettings())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for at, decision_id in ((dt.datetime(2020, 1, 1), "old"), (now, "new")):
        writer.record(
            at, decision_id, "crm", "b.huber", "read", "customer", "1", None, "care", "allow", "allowed", 1
        )
    writer.close()
    assert jobs.purge_decision_log(loaded_db, retention_days=400) == 1
    assert [r.decision_id for r in rows(loaded_db)] == ["new"]
