"""The audit trail and decision log pages (/admin/audit, /admin/decisions) and their CSV exports:
who may see and export them, filters refused with a 400 page, the data subject's view of the
reads made through the real AuthZEN API."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from accessd import audit
from accessd.models import AuditEvent
from accessd.pdp import tokens
from tests.support.api import evaluation

BAD_FILTERS = [
    ("action=a%00b", "NUL character"),
    ("action=%ED%A0%80", "not valid UTF-8"),
    ("since=1e999", "since must be"),
    ("since=0001-01-01T00:00:00%2B01:00", "since must be"),
    ("until=9999-12-31", "until must be"),
    ("page=-1", "page must be a whole number"),
    ("page=" + "1" + "0" * 30, "page may be at most"),
    ("page=1e999", "page must be a whole number"),
]


def _rows(answer) -> list[list[str]]:
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


def _record(db, actor: str, action: str, target: str) -> None:
    with db.session() as s:
        audit.record(s, actor, action, target, {"reason": "test"})


def test_an_auditor_reads_the_audit_trail_with_its_chain_check_and_filters(admin_client, demo_db):
    client = admin_client("auditor")
    _record(demo_db, "admin:zed", "role.grant", "account:7")
    _record(demo_db, "cli:yan", "sync.reject", "sync_run:3")
    page = client.get("/admin/audit?actor=ZED")
    assert page.status_code == 200
    assert "Hash chain verified" not in page.text and "Verify the hash chain" in page.text
    assert "Hash chain verified" in client.get("/admin/audit?actor=ZED&verify=1").text
    assert "admin:zed" in page.text and "cli:yan" not in page.text
    assert "Export CSV" in page.text  # the auditor may export
    assert 'name="actor" value="ZED"' in page.text


def test_the_audit_export_is_an_attachment_with_formulas_defused_and_is_itself_audited(admin_client, demo_db):
    client = admin_client("auditor")
    _record(demo_db, "=2+5", "role.grant", "@SUM(A1)")
    answer = client.get("/admin/audit.csv?action=role.grant")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="accessd-audit-')
    rows = _rows(answer)
    assert rows[0] == ["id", "at", "actor", "action", "target", "detail", "hash", "prev_hash"]
    assert rows[1][2:5] == ["'=2+5", "role.grant", "'@SUM(A1)"]
    with demo_db.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.actor, last.action) == ("admin:auditor.user", "audit.export")
    assert last.detail["filter"] == {"action": "role.grant"}


def test_helpdesk_may_not_read_or_export_logs(admin_client):
    client = admin_client("helpdesk")
    for url in ("/admin/audit", "/admin/audit.csv", "/admin/decisions", "/admin/decisions.csv"):
        assert client.get(url).status_code == 403, url
    assert "Audit" not in client.get("/admin/sync").text.split("<main", 1)[0]  # not in the nav


def test_signed_out_visitors_are_sent_to_sign_in(admin_client):
    client = admin_client("admin").application.test_client()
    answer = client.get("/admin/decisions?resource=customer:123")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


@pytest.mark.parametrize(("query", "message"), BAD_FILTERS)
def test_bad_filters_are_a_400_page_with_a_message(admin_client, query, message):
    client = admin_client("auditor")
    paths = ["/admin/audit", "/admin/decisions"]
    if not query.startswith("page="):  # an export has no pages
        paths += ["/admin/audit.csv", "/admin/decisions.csv"]
    for path in paths:
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, answer.text)
        assert message in answer.text and answer.mimetype == "text/html", path


def test_a_bad_decision_filter_says_what_is_wrong(admin_client):
    client = admin_client("auditor")
    for query, message in [
        ("decision=maybe", "decision must be one of"),
        ("resource=:123", "resource must look like TYPE:ID"),
        ("since=2026-05-02&until=2026-05-01", "since must be before until"),
    ]:
        answer = client.get(f"/admin/decisions?{query}")
        assert answer.status_code == 400 and message in answer.text, query


def test_who_read_a_client_lists_the_reads_made_through_the_authzen_api(admin_client, demo_db):
    client = admin_client("auditor")
    app = client.application
    with demo_db.session() as s:
        token = tokens.create(s, "crm", "decide")
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    for body in (
        evaluation("b.huber", field="iban", purpose="billing", rid="123"),
        evaluation("m.rossi", field="email", purpose="marketing", rid="123"),
        evaluation("r.schmidt", field="iban", purpose="care", rid="124"),
    ):
        assert api.post("/access/v1/evaluation", json=body, headers=auth).status_code == 200
    app.extensions["accessd"].decision_log.flush()

    page = client.get("/admin/decisions?resource=customer:123")

    assert page.status_code == 200
    assert "<h1>Who read client customer:123</h1>" in page.text
    assert "Bernd Huber" in page.text and "Marta Rossi" in page.text
    assert "Rita Schmidt" not in page.text  # read another client
    assert "iban" in page.text and "billing" in page.text and "marketing" in page.text
    rows = _rows(client.get("/admin/decisions.csv?resource=customer:123"))
    assert rows[0][:4] == ["at", "decision_id", "client", "subject"]
    assert sorted((r[3], r[7], r[8]) for r in rows[1:]) == [
        ("b.huber", "iban", "billing"),
        ("m.rossi", "email", "marketing"),
    ]
    with demo_db.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.action, last.target) == ("decisions.export", "customer:123")


def test_the_decision_log_pages_are_linked_with_their_filters(admin_client, demo_db):
    from tests.console.test_logs import _decision

    with demo_db.session() as s:
        for i in range(55):
            _decision(s, i, subject_id="t.meyer", purpose="care")
    client = admin_client("admin")
    first = client.get("/admin/decisions?subject=t.meyer")
    assert first.status_code == 200 and "Page 1 of 2 (55 in all)" in first.text
    assert "/admin/decisions?page=2&amp;subject=t.meyer" in first.text
    second = client.get("/admin/decisions?subject=t.meyer&page=2")
    assert "Page 2 of 2" in second.text
