"""Sync run pages (/admin/sync, /admin/sync/<id>) and approving or rejecting a held run: only
with approve_sync (a forged POST included), with a confirmation, and a directory that cannot be
read is a message on the page while the run stays held -- never a 500."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from accessd.models import AuditEvent, SyncRun
from tests.console.test_syncs import _applied, _held
from tests.support import free_port
from tests.web.admin.conftest import csrf_from, make_admin, sign_in


def _status(db, run_id: int) -> str:
    with db.session() as s:
        return s.get(SyncRun, run_id).status


def _signed_in(app, db, role: str = "admin"):
    make_admin(db, f"{role}.sync", role)
    client = app.test_client()
    assert sign_in(client, f"{role}.sync").status_code == 302
    client.csrf = lambda: csrf_from(client.get("/admin/me").text)
    return client


def test_everyone_sees_the_runs_and_a_held_runs_plan(admin_client, demo_db):
    applied, held = _applied(demo_db, 3), _held(demo_db)
    client = admin_client("helpdesk")
    runs = client.get("/admin/sync")
    assert runs.status_code == 200
    assert f'href="/admin/sync/{held}"' in runs.text and f'href="/admin/sync/{applied}"' in runs.text
    assert "Review and approve" not in runs.text  # helpdesk may not approve
    report = client.get(f"/admin/sync/{held}")
    assert report.status_code == 200
    assert "Planned actions" in report.text and "disable p0: locked in the directory" in report.text
    assert "Approve…" not in report.text
    only = client.get(f"/admin/sync/{applied}?kind=revoke")
    assert "revoke billing from p0" in only.text and "join p1" not in only.text
    assert "pending approval" in client.get("/admin/sync?status=pending_approval").text


def test_an_auditor_may_not_approve_or_reject_even_with_a_forged_post(admin_client, demo_db):
    run_id = _held(demo_db)
    client = admin_client("auditor")
    token = client.csrf()
    for what in ("approve", "reject"):
        url = f"/admin/sync/{run_id}/{what}"
        assert client.get(url).status_code == 403
        assert client.post(url, data={"csrf_token": token}).status_code == 403
    assert _status(demo_db, run_id) == "pending_approval"


def test_an_admin_rejects_a_held_run_after_confirming(admin_client, demo_db):
    run_id = _held(demo_db)
    client = admin_client("admin")
    page = client.get(f"/admin/sync/{run_id}/reject")
    assert page.status_code == 200 and f"Reject sync run {run_id}?" in page.text
    assert client.post(f"/admin/sync/{run_id}/reject", data={}).status_code == 400  # no CSRF token
    assert _status(demo_db, run_id) == "pending_approval"

    answer = client.post(f"/admin/sync/{run_id}/reject", data={"csrf_token": csrf_from(page.text)})

    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/admin/sync/{run_id}")
    assert "rejected; nothing of it was applied" in client.get(answer.headers["Location"]).text
    assert _status(demo_db, run_id) == "rejected"
    with demo_db.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.actor, last.action) == ("admin:admin.user", "sync.reject")
    # once decided, the confirmation page sends back to the run
    again = client.get(f"/admin/sync/{run_id}/approve")
    assert again.status_code == 302
    late = client.post(f"/admin/sync/{run_id}/approve", data={"csrf_token": client.csrf()})
    assert late.status_code == 400 or late.status_code == 409


def test_approving_without_a_directory_is_a_message_and_the_run_stays_held(admin_client, demo_db):
    run_id = _held(demo_db)
    client = admin_client("admin")
    answer = client.post(f"/admin/sync/{run_id}/approve", data={"csrf_token": client.csrf()})
    assert answer.status_code == 400
    assert "no directory is configured" in answer.text
    assert _status(demo_db, run_id) == "pending_approval"


def test_an_unreachable_directory_is_a_message_and_the_run_stays_held(demo_db, make_app):
    run_id = _held(demo_db)
    app = make_app(ldap={"url": f"ldap://127.0.0.1:{free_port()}", "user_base": "ou=x", "timeout_seconds": 2})
    client = _signed_in(app, demo_db)
    answer = client.post(f"/admin/sync/{run_id}/approve", data={"csrf_token": client.csrf()})
    assert answer.status_code == 503
    assert f"sync run {run_id} stays pending approval" in answer.text
    assert "Traceback" not in answer.text
    assert _status(demo_db, run_id) == "pending_approval"


def test_approving_in_the_ui_applies_the_held_run_against_the_directory(
    people, sync, settings, demo_db, make_app
):
    for i in range(20):
        people.add(f"p{i}", employeeNumber=f"P{i:04d}")
    sync()
    for i in range(7):
        people.lock(people.dn(f"p{i}"))
    held = sync()
    assert held.status == "pending_approval"
    app = make_app(ldap=dataclasses.asdict(settings.ldap), sync=dataclasses.asdict(settings.sync))
    client = _signed_in(app, demo_db)
    page = client.get(f"/admin/sync/{held.run_id}/approve")
    assert page.status_code == 200 and "reads the directory again" in page.text

    answer = client.post(f"/admin/sync/{held.run_id}/approve", data={"csrf_token": csrf_from(page.text)})

    assert answer.status_code == 302
    shown = client.get(answer.headers["Location"])
    assert f"Run {held.run_id} approved and applied: leaver 7." in shown.text
    assert "Actions applied" in shown.text
    assert _status(demo_db, held.run_id) == "succeeded"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/admin/sync/1000000000000000000000000000000", 404),
        ("/admin/sync/999", 404),
        ("/admin/sync?page=-1", 400),
        ("/admin/sync?status=%00", 400),
        ("/admin/sync?status=%ED%A0%80", 400),
        ("/admin/sync?status=nonsense", 400),
    ],
)
def test_bad_addresses_are_4xx_pages(admin_client, url, status):
    assert admin_client("auditor").get(url).status_code == status


def test_a_bad_kind_or_page_of_a_run_is_a_400(admin_client, demo_db):
    run_id = _held(demo_db)
    client = admin_client("auditor")
    assert client.get(f"/admin/sync/{run_id}?kind=nonsense").status_code == 400
    assert client.get(f"/admin/sync/{run_id}?page=1e999").status_code == 400
    assert client.get(f"/admin/sync/{run_id}?page=2").status_code == 200  # past the end: empty
