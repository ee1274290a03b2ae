"""Integration pages: API clients (a token shown once, never again, never logged; rotate,
revoke), HR sources and SCIM (no secret shown), Shared Signals streams (no authorization header;
pause, enable, remove). Changes need manage_integrations, a forged POST included."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from accessd.models import ApiClient, AuditEvent, HrEvent, SsfStream
from accessd.ssf import streams
from tests.support.api import evaluation
from tests.web.admin.conftest import csrf_from, make_admin, sign_in

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"  # base64 of 27 bytes
TOKEN = re.compile(r'<code class="wrap" id="new-token">(acd_[^<]+)</code>')


def _create(client, name="billing-app", scope="decide", purpose="billing"):
    page = client.get("/admin/clients/new")
    data = {"csrf_token": csrf_from(page.text), "name": name, "scope": scope, "default_purpose": purpose}
    return client.post("/admin/clients/new", data=data)


def _evaluate(app, token: str) -> int:
    body = evaluation("b.huber", field="iban", purpose="billing", rid="123")
    return (
        app.test_client()
        .post("/access/v1/evaluation", json=body, headers={"Authorization": f"Bearer {token}"})
        .status_code
    )


def test_a_new_clients_token_is_shown_once_and_works_and_is_never_logged(admin_client, demo_db, caplog):
    caplog.set_level(logging.DEBUG)
    client = admin_client("admin")
    answer = _create(client)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    token = TOKEN.search(answer.text).group(1)
    assert "shown only this once" in answer.text
    assert _evaluate(client.application, token) == 200

    listing = client.get("/admin/clients")
    assert "billing-app" in listing.text and token not in listing.text
    assert token not in client.get("/admin/audit").text
    with demo_db.session() as s:
        row = s.scalar(select(ApiClient).where(ApiClient.name == "billing-app"))
        assert (row.scope, row.default_purpose) == ("decide", "billing")
        records = s.scalars(select(AuditEvent).where(AuditEvent.action == "client.create")).all()
        assert [(r.actor, r.target) for r in records] == [("admin:admin.user", "api_client:billing-app")]
        assert token not in str(records[0].detail)
    assert token not in caplog.text


def test_a_taken_name_or_an_unknown_purpose_re_renders_the_form_with_the_reason(admin_client, demo_db):
    client = admin_client("admin")
    assert _create(client, name="crm").status_code == 200
    taken = _create(client, name="crm")
    assert taken.status_code == 409 and "already exists" in taken.text
    unknown = _create(client, name="other", purpose="gossip")
    assert unknown.status_code == 400 and 'id="name"' in unknown.text
    with demo_db.session() as s:
        assert s.scalars(select(ApiClient.name)).all() == ["crm"]


def test_rotating_shows_a_new_token_and_the_old_one_stops_working(admin_client, demo_db, clock):
    client = admin_client("admin")
    old = TOKEN.search(_create(client).text).group(1)
    with demo_db.session() as s:
        client_id = s.scalar(select(ApiClient.id).where(ApiClient.name == "billing-app"))
    page = client.get(f"/admin/clients/{client_id}/rotate")
    assert page.status_code == 200 and "Rotate the token of billing-app?" in page.text

    answer = client.post(f"/admin/clients/{client_id}/rotate", data={"csrf_token": csrf_from(page.text)})

    new = TOKEN.search(answer.text).group(1)
    assert new != old and "The previous token no longer works" in answer.text
    client.application.extensions["accessd"].feed.catch_up()  # what every worker's feed does
    assert _evaluate(client.application, old) == 401
    assert _evaluate(client.application, new) == 200


def test_revoking_a_client_after_confirming(admin_client, demo_db, clock):
    client = admin_client("admin")
    token = TOKEN.search(_create(client).text).group(1)
    with demo_db.session() as s:
        client_id = s.scalar(select(ApiClient.id).where(ApiClient.name == "billing-app"))
    answer = client.post(f"/admin/clients/{client_id}/revoke", data={"csrf_token": client.csrf()})
    assert answer.status_code == 302
    assert "Revoked billing-app" in client.get("/admin/clients").text
    client.application.extensions["accessd"].feed.catch_up()
    assert _evaluate(client.application, token) == 401
    again = client.post(f"/admin/clients/{client_id}/revoke", data={"csrf_token": client.csrf()})
    assert again.status_code == 409 and "already revoked" in again.text


def test_an_auditor_sees_clients_but_may_not_create_rotate_or_revoke(admin_client, demo_db):
    client = admin_client("auditor")
    listing = client.get("/admin/clients")
    assert listing.status_code == 200 and "New API client" not in listing.text
    token = client.csrf()
    assert client.get("/admin/clients/new").status_code == 403
    forged = {"csrf_token": token, "name": "sneaky", "scope": "admin", "default_purpose": ""}
    assert client.post("/admin/clients/new", data=forged).status_code == 403
    with demo_db.session() as s:
        assert s.scalars(select(ApiClient)).all() == []
    for what in ("rotate", "revoke"):
        assert client.post(f"/admin/clients/1/{what}", data={"csrf_token": token}).status_code == 403
    assert admin_client("admin").get("/admin/clients/10000000000000000000000/revoke").status_code == 404


def test_hr_sources_show_names_never_secrets_with_their_events_and_scim(demo_db, make_app):
    from datetime import datetime

    app = make_app(
        hr={"sources": {"workday": SECRET}},
        scim={"group_roles": {"Billing": ["billing"], "Front Desk": ["reception"]}},
    )
    with demo_db.session() as s:
        s.add(
            HrEvent(
                source="workday",
                event_id="evt-42",
                type="termination",
                employee_number="E1006",
                status="scheduled",
                received_at=datetime(2026, 5, 1, 9),
                effective_at=datetime(2026, 5, 31, 22),
                detail={"subject_id": "b.huber", "sha256": "x"},
            )
        )
    make_admin(demo_db, "auditor.src", "auditor")
    client = app.test_client()
    assert sign_in(client, "auditor.src").status_code == 302
    page = client.get("/admin/sources")
    assert page.status_code == 200
    assert "workday" in page.text and "/hr/v1/events/workday" in page.text and "configured" in page.text
    assert SECRET not in page.text and "whsec_" not in page.text
    assert "evt-42" in page.text and "termination" in page.text and "b.huber" in page.text
    assert "Billing" in page.text and "reception" in page.text
    assert "no active API client of scope hr" in page.text
    assert client.get("/admin/sources?page=0").status_code == 400


def test_streams_show_no_authorization_header_and_an_admin_pauses_enables_and_removes_one(
    admin_client, demo_db
):
    made = streams.add_push_stream(
        demo_db,
        "https://receiver.example/events",
        ["session-revoked", "account-disabled"],
        audience=None,
        fmt="email",
        authorization="Bearer very-secret-value",
        actor="test",
    )
    auditor = admin_client("auditor")
    page = auditor.get("/admin/streams")
    assert page.status_code == 200 and "https://receiver.example/events" in page.text
    assert "very-secret-value" not in page.text and "authorization header: set" in page.text
    assert "session-revoked" in page.text and "Pause" not in page.text
    assert (
        auditor.post(f"/admin/streams/{made.id}/pause", data={"csrf_token": auditor.csrf()}).status_code
        == 403
    )

    client = admin_client("admin")
    confirm = client.get(f"/admin/streams/{made.id}/pause")
    assert confirm.status_code == 200 and "Events are held" in confirm.text
    token = csrf_from(confirm.text)
    paused = client.post(
        f"/admin/streams/{made.id}/pause", data={"csrf_token": token, "reason": "receiver upgrade"}
    )
    assert paused.status_code == 302
    with demo_db.session() as s:
        assert (s.get(SsfStream, made.id).status, s.get(SsfStream, made.id).status_reason) == (
            "paused",
            "receiver upgrade",
        )
    assert client.post(f"/admin/streams/{made.id}/enable", data={"csrf_token": token}).status_code == 302
    with demo_db.session() as s:
        assert s.get(SsfStream, made.id).status == "enabled"
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "admin:admin.user")).all()
    assert actions.count("ssf.stream.status") == 2
    assert client.post(f"/admin/streams/{made.id}/remove", data={"csrf_token": token}).status_code == 302
    with demo_db.session() as s:
        assert s.get(SsfStream, made.id) is None
    assert client.get(f"/admin/streams/{made.id}/remove").status_code == 404
    assert client.get("/admin/streams/%00/pause").status_code in (400, 404)
