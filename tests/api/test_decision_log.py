"""The decision log: written off the request path, nothing lost on shutdown, overflow counted,
answerable by resource (CLI and admin endpoint), purged by retention."""

from __future__ import annotations

import datetime as dt
import json

from api_helpers import CUSTOMER, evaluation
from click.testing import CliRunner
from sqlalchemy import func, select

from accessd import decision_log
from accessd.cli import main
from accessd.config import DecisionLogSettings
from accessd.decision_log import DecisionLogWriter
from accessd.models import DecisionLog


def rows(db):
    with db.session() as s:
        return s.scalars(select(DecisionLog).order_by(DecisionLog.id)).all()


def test_every_decision_is_logged_without_attribute_values(app, client, auth, loaded_db):
    client.post(
        "/access/v1/evaluation",
        json=evaluation("b.huber", field="iban", purpose="billing", rid="123"),
        headers=auth,
    )
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


def test_overflow_is_counted_not_silent(loaded_db, caplog):
    writer = DecisionLogWriter(
        loaded_db, DecisionLogSettings(buffer_size=5, batch_size=1000, flush_seconds=60)
    )
    now = dt.datetime(2025, 1, 1)
    for i in range(8):
        writer.record(
            now, f"d{i}", "crm", "b.huber", "read", "customer", "1", None, "care", "allow", "allowed", 1
        )
    assert writer.stats()["dropped"] == 3
    assert "dropped" in caplog.text
    writer.close()
    assert writer.stats()["written"] == 5
    assert len(rows(loaded_db)) == 5


def test_readyz_reports_dropped_decisions(app, client):
    app.extensions["accessd"].decision_log.dropped = 7
    assert client.get("/readyz").json["decision_log"]["dropped"] == 7


def test_cli_lists_who_read_a_customer(app, client, auth, loaded_db):
    client.post(
        "/access/v1/evaluation",
        json=evaluation("b.huber", field="iban", purpose="billing", rid="123"),
        headers=auth,
    )
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
    client.post(
        "/access/v1/evaluation",
        json=evaluation("b.huber", field="iban", purpose="billing", rid="123"),
        headers=auth,
    )
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
        assert decision_log.purge(s, 30) == 1
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
