"""Integrations as the admin UI manages them (accessd.console.integrations), on SQLite and
PostgreSQL: API clients (a token returned once, audited without it), HR sources without their
secrets, HR events, SCIM groups and mapping, Shared Signals streams without their authorization
header."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from accessd.config import load_settings
from accessd.console import integrations
from accessd.errors import Conflict, Invalid, NotFound
from accessd.models import Account, ApiClient, AuditEvent, HrEvent, ScimGroup, ScimGroupMember, SsfStream
from accessd.pdp import tokens
from accessd.ssf import streams

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
HEADER = "Bearer very-secret-value"


def _audits(db, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _caller(db, token: str):
    with db.session() as s:
        row = s.scalar(select(ApiClient).where(ApiClient.token_hash == tokens.hash_token(token)))
        return (row.name, row.scope, row.revoked_at is None) if row else None


def test_a_client_is_created_with_its_token_returned_once_and_audited_without_it(loaded_db):
    issued = integrations.create_client(loaded_db, " crm ", "decide", "billing", "admin:alice")
    assert issued.token.startswith("acd_") and issued.token not in repr(issued)
    assert (issued.client.name, issued.client.scope, issued.client.default_purpose) == (
        "crm",
        "decide",
        "billing",
    )
    assert _caller(loaded_db, issued.token) == ("crm", "decide", True)
    [record] = _audits(loaded_db, "client.create")
    assert (record.actor, record.target) == ("admin:alice", "api_client:crm")
    assert issued.token not in str(record.detail)
    assert [c.name for c in integrations.list_clients(loaded_db)] == ["crm"]


@pytest.mark.parametrize(
    ("name", "scope", "purpose", "error", "message"),
    [
        ("", "decide", None, Invalid, "name is required"),
        ("a\x00b", "decide", None, Invalid, "control characters"),
        ("x" * 201, "decide", None, Invalid, "at most 200"),
        ("crm", "root", None, Invalid, "scope must be one of"),
        ("crm", "decide", "gossip", Invalid, "is not declared"),
        ("taken", "decide", None, Conflict, "already exists"),
    ],
)
def test_a_bad_client_is_refused_and_nothing_is_written(loaded_db, name, scope, purpose, error, message):
    with loaded_db.session() as s:
        tokens.create(s, "taken", "decide")
    with pytest.raises(error, match=message):
        integrations.create_client(loaded_db, name, scope, purpose, "admin:alice")
    assert [c.name for c in integrations.list_clients(loaded_db)] == ["taken"]
    assert _audits(loaded_db, "client.create") == []


def test_rotating_replaces_the_token_and_revoking_twice_is_a_conflict(loaded_db):
    first = integrations.create_client(loaded_db, "crm", "decide", None, "admin:alice")
    second = integrations.rotate_client(loaded_db, first.client.id, "admin:alice")
    assert second.token != first.token and second.client.name == "crm"
    assert _caller(loaded_db, first.token) == (f"crm (replaced #{first.client.id})", "decide", False)
    assert _caller(loaded_db, second.token) == ("crm", "decide", True)
    listed = integrations.list_clients(loaded_db)
    assert [(c.name, c.active) for c in listed] == [
        ("crm", True),
        (f"crm (replaced #{first.client.id})", False),
    ]

    integrations.revoke_client(loaded_db, second.client.id, "admin:bob")
    assert _caller(loaded_db, second.token)[2] is False
    with pytest.raises(Conflict, match="already revoked"):
        integrations.revoke_client(loaded_db, second.client.id, "admin:bob")
    with pytest.raises(Conflict, match="is revoked"):
        integrations.rotate_client(loaded_db, second.client.id, "admin:bob")
    assert [r.actor for r in _audits(loaded_db, "client.revoke")] == ["admin:bob"]
    assert len(_audits(loaded_db, "client.rotate")) == 1
    for bad in (0, 10**30, 999):
        with pytest.raises(NotFound):
            integrations.revoke_client(loaded_db, bad, "admin:bob")


def test_hr_sources_are_names_and_whether_a_secret_is_set_never_the_secret():
    settings = load_settings(env={}, overrides={"hr": {"sources": {"workday": SECRET}}})
    listed = integrations.hr_sources(settings)
    assert listed == [{"name": "workday", "path": "/hr/v1/events/workday", "secret_configured": True}]
    assert SECRET not in repr(listed)


def test_hr_events_are_paged_newest_first(db):
    with db.session() as s:
        for i in range(55):
            s.add(
                HrEvent(
                    source="workday",
                    event_id=f"e{i}",
                    type="hire",
                    employee_number=f"E{i}",
                    status="applied",
                    received_at=dt.datetime(2026, 5, 1, 9),
                    detail={"subject_id": f"p{i}"},
                )
            )
    first = integrations.hr_events(db)
    second = integrations.hr_events(db, page=2)
    assert first.total == 55 and first.items[0]["event_id"] == "e54" and first.items[0]["subject_id"] == "p54"
    assert [e["event_id"] for e in second.items] == [f"e{i}" for i in range(4, -1, -1)]
    with pytest.raises(Invalid):
        integrations.hr_events(db, page=0)


def test_scim_shows_groups_with_members_and_the_roles_they_map_to(db):
    with db.session() as s:
        s.add_all([Account(subject_id=f"p{i}", display_name=f"P {i}") for i in range(3)])
        s.add_all([ScimGroup(id="g1", display_name="billing team"), ScimGroup(id="g2", display_name="Other")])
        s.flush()
        ids = s.scalars(select(Account.id)).all()
        s.add_all([ScimGroupMember(group_id="g1", account_id=i) for i in ids])
        tokens.create(s, "workday", "hr")
    settings = load_settings(env={}, overrides={"scim": {"group_roles": {"Billing Team": ["billing"]}}})
    scim = integrations.scim_overview(db, settings)
    assert scim["enabled"] and scim["clients"] == ["workday"]
    assert scim["group_roles"] == [{"group": "Billing Team", "roles": ["billing"]}]
    assert scim["groups"] == [
        {"name": "Other", "members": 0, "roles": []},
        {"name": "billing team", "members": 3, "roles": ["billing"]},
    ]
    assert scim["members"] == 3


def test_streams_are_listed_without_their_header_and_paused_enabled_and_removed(db):
    made = streams.add_push_stream(
        db,
        "https://receiver.example/events",
        ["session-revoked"],
        audience=None,
        fmt="email",
        authorization=HEADER,
        actor="test",
    )
    [row] = integrations.list_streams(db)
    assert (row.id, row.owner, row.method, row.status) == (made.id, "administrator", "push", "enabled")
    assert row.authorization_set and row.events == ["session-revoked"]
    assert row.deliveries == {"pending": 0, "delivered": 0, "failed": 0}
    assert "very-secret" not in repr(row)

    paused = integrations.set_stream_status(db, made.id, "paused", "admin:alice", "receiver upgrade")
    assert (paused.status, paused.status_reason) == ("paused", "receiver upgrade")
    assert integrations.set_stream_status(db, made.id, "enabled", "admin:alice").status == "enabled"
    records = _audits(db, "ssf.stream.status")
    assert [(r.actor, r.detail["to"]) for r in records] == [
        ("admin:alice", "paused"),
        ("admin:alice", "enabled"),
    ]
    with pytest.raises(Invalid, match="status must be one of"):
        integrations.set_stream_status(db, made.id, "disabled", "admin:alice")
    with pytest.raises(NotFound):
        integrations.set_stream_status(db, "nope", "paused", "admin:alice")

    integrations.remove_stream(db, made.id, "admin:alice")
    with db.session() as s:
        assert s.get(SsfStream, made.id) is None
    with pytest.raises(NotFound, match="no stream"):
        integrations.remove_stream(db, made.id, "admin:alice")
    with pytest.raises(Invalid):
        integrations.remove_stream(db, "a\x00", "admin:alice")
