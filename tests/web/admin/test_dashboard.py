"""The console's front page (/admin/): every console role sees it; it shows people by state,
the sync runs held for approval with a link to them, departures due this week, undelivered
Shared Signals events."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from accessd import clock
from accessd.models import Account, SyncRun


def test_every_console_role_sees_the_dashboard_with_its_nav(admin_client):
    for role in ("admin", "helpdesk", "auditor"):
        page = admin_client(role).get("/admin/")
        assert page.status_code == 200, role
        assert "<h1>Dashboard</h1>" in page.text
        assert 'href="/admin/people"' in page.text and 'href="/admin/roles"' in page.text


def test_the_dashboard_shows_what_needs_attention(admin_client, demo_db):
    soon = clock.today() + dt.timedelta(days=3)
    with demo_db.session() as s:
        s.execute(update(Account).where(Account.subject_id == "a.lind").values(end_date=soon))
        s.add(SyncRun(kind="full", status="pending_approval", source="scheduler", reason="12 leavers"))
    page = admin_client("auditor").get("/admin/")
    text = page.text
    assert 'href="/admin/people?status=disabled">1</a>' in text
    assert "1 run waiting for approval" in text and 'href="/admin/sync?status=pending_approval"' in text
    assert 'href="/admin/people/a.lind"' in text and soon.isoformat() in text
    assert "Every event has been delivered" in text and "revision 1" in text


def test_signed_out_visitors_are_sent_to_sign_in(admin_client):
    client = admin_client("auditor").application.test_client()
    answer = client.get("/admin/")
    assert answer.status_code == 302 and "/admin/login" in answer.location
