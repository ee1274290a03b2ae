"""``accessd account ...``: accounts and manual grants without a directory, on SQLite and
PostgreSQL. The CLI runs in-process (click's CliRunner) against the test database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from accessd import accounts, audit
from accessd.models import Account, AuditEvent, LifecycleEvent, RoleGrant, utcnow
from accessd.policy.engine import Engine
from accessd.policy.policyset import MODEL_CONF, load_policy_dir
from tests.support.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def snapshot(db):
    """Everything an account command may change."""
    with db.session() as s:
        return (
            s.execute(
                select(
                    Account.subject_id,
                    Account.status,
                    Account.status_reason,
                    Account.email,
                    Account.start_date,
                    Account.end_date,
                    Account.attributes,
                    Account.session_epoch,
                    Account.updated_at,
                ).order_by(Account.subject_id)
            ).all(),
            s.execute(
                select(RoleGrant.account_id, RoleGrant.role, RoleGrant.source).order_by(
                    RoleGrant.account_id, RoleGrant.role, RoleGrant.source
                )
            ).all(),
            s.scalar(select(func.count(AuditEvent.id))),
            s.scalar(select(func.count(LifecycleEvent.id))),
        )


def account(db, subject_id: str) -> Account:
    with db.session() as s:
        return accounts.get_by_subject_id(s, subject_id)


@pytest.fixture
def url(loaded_db):
    """The database URL of a database with the demo policy in force."""
    return loaded_db.url


def test_an_account_is_created_listed_and_shown_without_a_directory(url, loaded_db):
    out = cli(
        url,
        "account", "add", "anna",
        "--name", "Anna Lind", "--email", "anna@practice.example", "--department", "Therapy",
        "--region", "north", "--start", "2025-01-06", "--end", "2031-12-31",
    ).stdout  # fmt: skip
    assert "anna: account created" in out
    acc = account(loaded_db, "anna")
    assert (acc.status, acc.display_name, acc.email, acc.department, acc.region) == (
        "active",
        "Anna Lind",
        "anna@practice.example",
        "Therapy",
        "north",
    )
    assert (acc.start_date, acc.end_date) == (dt.date(2025, 1, 6), dt.date(2031, 12, 31))
    cli(url, "account", "add", "bert")

    lines = cli(url, "account", "list").stdout.splitlines()
    assert lines == [
        "anna\tactive\t-\tAnna Lind\tanna@practice.example\tTherapy\tnorth\t2025-01-06\t2031-12-31",
        "bert\tactive\t-\t-\t-\t-\t-\t-\t-",
    ]
    rows = [json.loads(line) for line in cli(url, "account", "list", "--json").stdout.splitlines()]
    assert [r["subject"] for r in rows] == ["anna", "bert"] and rows[0]["end_date"] == "2031-12-31"

    shown = json.loads(cli(url, "account", "show", "anna", "--json").stdout)
    assert shown["status"] == "active" and shown["status_source"] == "cli"
    assert shown["attributes"]["email"] == "anna@practice.example"
    kinds = [(h["type"], h["what"]) for h in shown["history"]]
    assert kinds == [("event", "joiner"), ("audit", "account.create")]
    text = cli(url, "account", "show", "anna").stdout
    assert "status:      active (source cli" in text and "account.create" in text
    with loaded_db.session() as s:
        assert audit.verify(s) is None


def test_manual_grants_and_revokes_are_audited_and_reach_workers(url, loaded_db):
    cli(url, "account", "add", "rita", "--region", "north")
    before = account(loaded_db, "rita")

    assert "rita: granted reception" in cli(url, "account", "grant", "rita", "reception").stdout
    granted = account(loaded_db, "rita")
    assert granted.roles == {"reception"} and granted.updated_at > before.updated_at
    assert granted.session_epoch == before.session_epoch, "a grant does not end sessions"
    assert "nothing changed" in cli(url, "account", "grant", "rita", "reception").stdout

    assert "rita: revoked reception" in cli(url, "account", "revoke", "rita", "reception").stdout
    revoked = account(loaded_db, "rita")
    assert revoked.roles == frozenset() and revoked.updated_at > granted.updated_at
    assert revoked.session_epoch == before.session_epoch + 1, "a revoke ends sessions issued before"
    assert "nothing changed" in cli(url, "account", "revoke", "rita", "reception").stdout

    with loaded_db.session() as s:
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.target == "account:rita").order_by(AuditEvent.id)
        ).all()
        assert actions == ["account.create", "account.grant", "account.revoke"]
        assert audit.verify(s) is None
    shown = json.loads(cli(url, "account", "show", "rita", "--json").stdout)
    assert [h["what"] for h in shown["history"] if h["type"] == "audit"] == actions


def test_a_role_outside_the_catalogue_in_force_is_refused_naming_the_known_roles(url, loaded_db):
    cli(url, "account", "add", "rita")
    before = snapshot(loaded_db)
    err = cli(url, "account", "grant", "rita", "wizard", code=2).stderr
    assert err.startswith("error: unknown role 'wizard'") and "reception" in err and "therapist" in err
    assert snapshot(loaded_db) == before


def test_revoking_a_directory_grant_is_refused_since_the_next_sync_would_restore_it(url, loaded_db):
    group = "cn=therapists,ou=groups,dc=example,dc=org"
    with loaded_db.session() as s:
        acc = accounts.upsert(s, subject_id="tom", directory_key="uuid-tom")
        accounts.grant(s, acc, "therapist", source="directory", source_ref=group)
    before = snapshot(loaded_db)

    err = cli(url, "account", "revoke", "tom", "therapist", code=2).stderr
    assert "through the directory" in err and group in err and "next sync" in err
    assert snapshot(loaded_db) == before

    # a manual grant on top of the directory's is revocable; the role stays through the directory
    cli(url, "account", "grant", "tom", "therapist")
    out = cli(url, "account", "revoke", "tom", "therapist").stdout
    assert "still held through the directory" in out
    assert [(g.role, g.source) for g in account(loaded_db, "tom").grants] == [("therapist", "directory")]


def test_enable_re_enables_a_disabled_account_through_the_one_routine(url, loaded_db):
    cli(url, "account", "add", "karl")
    cli(url, "account", "grant", "karl", "therapist")
    cli(url, "offboard", "karl", "--reason", "left the practice")
    disabled = account(loaded_db, "karl")
    assert disabled.status == "disabled" and disabled.roles == frozenset()
    shown = json.loads(cli(url, "account", "show", "karl", "--json").stdout)
    assert (shown["status"], shown["status_reason"], shown["status_source"]) == (
        "disabled",
        "left the practice",
        "cli",
    )

    out = cli(url, "account", "enable", "karl", "--reason", "rehired").stdout
    assert "karl: re-enabled" in out
    enabled = account(loaded_db, "karl")
    assert enabled.status == "active" and enabled.updated_at > disabled.updated_at
    assert enabled.session_epoch > disabled.session_epoch
    with loaded_db.session() as s:
        ev = s.scalars(select(LifecycleEvent).order_by(LifecycleEvent.id.desc()).limit(1)).one()
        assert (ev.kind, ev.source, ev.reason) == ("rehire", "cli", "rehired")
        assert (
            s.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "account.reenable"
        )
    assert "nothing changed" in cli(url, "account", "enable", "karl", "--reason", "again").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["account", "show", "nobody"], "no account with subject id 'nobody'"),
        (["account", "grant", "nobody", "therapist"], "no account with subject id 'nobody'"),
        (["account", "revoke", "nobody", "therapist"], "no account with subject id 'nobody'"),
        (["account", "enable", "nobody", "--reason", "x"], "no account with subject id 'nobody'"),
        (["account", "add", "anna"], "an account with subject id 'anna' already exists"),
        (["account", "add", "bob", "--start", "2025-02-30"], "--start: '2025-02-30' is not a date"),
        (["account", "add", "bob", "--end", "31.12.2025"], "--end: '31.12.2025' is not a date"),
        (["account", "add", "bob", "--start", "2025-06-01", "--end", "2025-05-31"], "before start date"),
        (["account", "add", "bob", "--email", "not an address"], "is not an e-mail address"),
        (["account", "add", " bob"], "without leading or trailing spaces"),
        (["account", "add", "bob", "--attribute", "shoe_size=42"], "declares: region"),
        (["account", "add", "bob", "--attribute", "region"], "expected NAME=VALUE"),
        (["account", "enable", "anna", "--reason", "   "], "a reason is required"),
        (["account", "enable", "anna"], "a reason is required"),
        (["account", "revoke", "anna", "wizard"], "unknown role 'wizard'"),
        (["account", "list", "--status", "gone"], "'gone' is not one of"),
        (["account", "add"], "Missing argument 'SUBJECT'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_exit_2_and_changes_nothing(url, loaded_db, args, message):
    cli(url, "account", "add", "anna")
    cli(url, "offboard", "anna", "--reason", "left")
    before = snapshot(loaded_db)
    result = cli(url, *args, code=2)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert result.stdout == ""
    assert snapshot(loaded_db) == before


def test_list_streams_every_account_in_order_and_filters_by_status(url, loaded_db):
    n = 2500
    now = utcnow()
    with loaded_db.session() as s:
        s.execute(
            insert(Account),
            [
                {
                    "subject_id": f"u{i:05d}",
                    "display_name": "",
                    "attributes": {},
                    "status": "disabled" if i % 10 == 0 else "active",
                    "session_epoch": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        acc = accounts.get_by_subject_id(s, "u00001")
        accounts.grant(s, acc, "billing")
    lines = cli(url, "account", "list").stdout.splitlines()
    assert len(lines) == n and lines == sorted(lines)
    assert lines[1].startswith("u00001\tactive\tbilling\t")
    disabled = cli(url, "account", "list", "--status", "disabled", "--json").stdout.splitlines()
    assert len(disabled) == n // 10 and all(json.loads(x)["status"] == "disabled" for x in disabled)


def test_subject_attributes_are_the_account_fields_and_the_declared_extras():
    acc = Account(
        subject_id="anna",
        username="alind",
        employee_number="E7",
        display_name="Anna Lind",
        email="anna@practice.example",
        department="Therapy",
        title="Therapist",
        manager="uid=boss,ou=people",
        region=None,
        attributes={"cost_centre": "4711"},
        status="active",
    )
    assert accounts.subject_for(acc).attributes == {
        "username": "alind",
        "employee_number": "E7",
        "display_name": "Anna Lind",
        "email": "anna@practice.example",
        "department": "Therapy",
        "title": "Therapist",
        "manager": "uid=boss,ou=people",
        "cost_centre": "4711",
    }, "an absent value is left out, so the catalogue default applies"


CATALOGUE = """\
version: 1
purposes:
  support: Helping the customer.
roles:
  agent: Answers tickets.
subject_attributes:
  email: {type: string}
  cost_centre: {type: string}
resource_types:
  ticket:
    description: A support ticket.
    actions: [read]
    properties:
      owner_email: {type: string}
      cost_centre: {type: string}
    fields:
      body: {category: user.content, sensitivity: confidential, mask: redact}
"""

RULES = """\
p, agent, ticket, read, body, support, r.sub.email != "" && r.obj.owner_email != "" && r.obj.owner_email == r.sub.email, allow, full, own-tickets
p, agent, ticket, read, body, support, r.sub.cost_centre != "" && r.obj.cost_centre != "" && r.obj.cost_centre == r.sub.cost_centre, allow, mask, cost-centre-tickets
"""  # noqa: E501


def test_catalogue_conditions_on_subject_attributes_decide_by_the_account(database_url, db, tmp_path):
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "model.conf").write_text(MODEL_CONF)
    (policy / "policy.csv").write_text(RULES)
    (policy / "catalogue.yaml").write_text(CATALOGUE)
    cli(database_url, "policy", "load", str(policy))
    cli(
        database_url,
        "account",
        "add",
        "sub-8f3a",
        "--email",
        "morty@example.org",
        "--attribute",
        "cost_centre=4711",
    )
    cli(database_url, "account", "add", "sub-91bc", "--attribute", "email=summer@example.org")
    for sid in ("sub-8f3a", "sub-91bc"):
        cli(database_url, "account", "grant", sid, "agent")
    assert account(db, "sub-8f3a").attributes == {"cost_centre": "4711"}
    assert account(db, "sub-91bc").email == "summer@example.org", "a column-backed attribute fills its column"

    engine = Engine(load_policy_dir(policy))
    morty, summer = (accounts.subject_for(account(db, s)) for s in ("sub-8f3a", "sub-91bc"))

    def decide(subject, **props):
        return engine.decide(subject, "ticket", "read", "body", "support", props).effect

    assert decide(morty, owner_email="morty@example.org") == "allow"
    assert decide(summer, owner_email="morty@example.org") == "deny"
    assert decide(summer, owner_email="summer@example.org") == "allow"
    assert decide(morty, owner_email="rick@example.org", cost_centre="4711") == "mask"
    assert decide(summer, owner_email="rick@example.org", cost_centre="4711") == "deny"

    err = cli(database_url, "account", "add", "x", "--attribute", "title=boss", code=2).stderr
    assert "unknown subject attribute 'title'" in err and "cost_centre, email" in err
