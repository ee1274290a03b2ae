"""The people pages: list with search and paging, a person's page with effective access, new
person, and the actions (confirmation page, then a POST through the one lifecycle routine with
source admin); who may do what; 404 for an unknown subject, 400 for a bad date or reason."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import insert, select

from accessd import clock
from accessd.models import Account, SsfOutbox, utcnow
from accessd.ssf import streams
from tests.support.lifecycle import account, lifecycle_events

CLINICAL = ("presenting_issue", "diagnosis", "medication", "session_notes")


class _Rows(HTMLParser):
    """The text of each table row's cells (th and td), in document order."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows(html: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def post(client, url: str, **data):
    return client.post(url, data={"csrf_token": client.csrf(), **data})


# -- who may do what ------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(admin_client):
    client = admin_client("helpdesk").application.test_client()
    answer = client.get("/admin/people/t.meyer")
    assert answer.status_code == 302 and "/admin/login?next=/admin/people/t.meyer" in answer.location


def test_a_helpdesk_user_offboards_someone_through_the_one_routine(admin_client, demo_db):
    streams.add_push_stream(
        demo_db,
        "http://127.0.0.1:9/events",
        ["session-revoked", "account-disabled"],
        audience=None,
        fmt="email",
        authorization=None,
        actor="test",
    )
    client = admin_client("helpdesk")
    page = client.get("/admin/people/t.meyer")
    assert 'href="/admin/people/t.meyer/actions/offboard"' in page.text

    confirm = client.get("/admin/people/t.meyer/actions/offboard")
    assert confirm.status_code == 200
    assert "therapist (manual)" in confirm.text and "1 Shared Signals stream" in confirm.text
    assert account(demo_db, "t.meyer").status == "active", "a GET changes nothing"

    done = post(client, "/admin/people/t.meyer/actions/offboard", reason="left the practice")

    assert done.status_code == 302 and done.location.endswith("/admin/people/t.meyer")
    acc = account(demo_db, "t.meyer")
    assert (acc.status, acc.disabled_by, acc.status_reason) == ("disabled", "admin", "left the practice")
    assert ("leaver", "admin", "admin:helpdesk.user") in lifecycle_events(demo_db, "t.meyer")
    with demo_db.session() as s:
        assert s.scalars(select(SsfOutbox).where(SsfOutbox.subject_id == "t.meyer")).all()
    shown = client.get(done.location)
    assert "t.meyer: offboarded" in shown.text and "Re-enable" in shown.text


def test_an_auditor_may_look_but_not_offboard(admin_client, demo_db):
    client = admin_client("auditor")
    page = client.get("/admin/people/t.meyer")
    assert page.status_code == 200 and "/actions/" not in page.text, "no buttons an auditor may not use"
    assert client.get("/admin/people/t.meyer/actions/offboard").status_code == 403
    answer = post(client, "/admin/people/t.meyer/actions/offboard", reason="x")
    assert answer.status_code == 403
    assert account(demo_db, "t.meyer").status == "active"
    assert client.get("/admin/people/new").status_code == 403
    assert "New person" not in client.get("/admin/people").text


def test_helpdesk_can_neither_hand_out_nor_touch_admin_rights(admin_client, demo_db):
    from tests.web.admin.conftest import make_admin

    make_admin(demo_db, "ada", "admin")
    client = admin_client("helpdesk")
    form = client.get("/admin/people/t.meyer/actions/grant")
    offered = set(re.findall(r'<option value="(\w+)"', form.text))
    assert {"billing", "helpdesk"} <= offered and not offered & {"admin", "auditor"}
    for role in ("admin", "auditor"):
        assert post(client, "/admin/people/t.meyer/actions/grant", role=role).status_code == 403
        assert post(client, "/admin/people/helpdesk.user/actions/grant", role=role).status_code == 403
    assert account(demo_db, "t.meyer").roles == {"therapist"}
    assert account(demo_db, "helpdesk.user").roles == {"helpdesk"}
    # nor offboard, suspend or strip an administrator
    assert client.get("/admin/people/ada/actions/offboard").status_code == 403
    assert post(client, "/admin/people/ada/actions/offboard", reason="bye").status_code == 403
    assert post(client, "/admin/people/ada/actions/revoke", role="admin").status_code == 403
    assert account(demo_db, "ada").status == "active" and account(demo_db, "ada").roles == {"admin"}
    # an admin may
    boss = admin_client("admin")
    assert post(boss, "/admin/people/t.meyer/actions/grant", role="auditor").status_code == 302
    assert account(demo_db, "t.meyer").roles == {"therapist", "auditor"}


def test_an_unknown_subject_is_a_404_page(admin_client):
    client = admin_client("helpdesk")
    for url in ("/admin/people/nobody", "/admin/people/nobody/actions/offboard"):
        answer = client.get(url)
        assert answer.status_code == 404 and "no account with subject id" in answer.text
    assert post(client, "/admin/people/nobody/actions/schedule", day="bad").status_code == 404
    assert client.get("/admin/people/t.meyer/actions/explode").status_code == 404


# -- actions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"day": "2026-02-30", "reason": "x"}, "is not a date"),
        ({"day": "31.12.2030", "reason": "x"}, "is not a date"),
        ({"day": "", "reason": "x"}, "date is required"),
        ({"day": "2030-12-31", "time": "25:61", "reason": "x"}, "is not a time"),
        ({"day": "2001-01-01", "reason": "x"}, "not in the future"),
        ({"day": "2030-12-31", "reason": " "}, "reason is required"),
    ],
)
def test_a_bad_departure_is_a_400_with_its_message_and_changes_nothing(admin_client, demo_db, data, message):
    client = admin_client("helpdesk")
    answer = post(client, "/admin/people/p.garcia/actions/schedule", **data)
    assert answer.status_code == 400 and message in answer.text
    acc = account(demo_db, "p.garcia")
    assert (acc.status, acc.end_date, acc.departure_at) == ("active", None, None)
    assert [k for k, _, _ in lifecycle_events(demo_db, "p.garcia")] == ["joiner"]


def test_scheduling_a_departure_with_a_time_in_the_practices_zone(admin_client, demo_db):
    client = admin_client("helpdesk")
    day = (clock.today() + dt.timedelta(days=10)).isoformat()
    answer = post(client, "/admin/people/p.garcia/actions/schedule", day=day, time="17:30", reason="resigned")
    assert answer.status_code == 302
    acc = account(demo_db, "p.garcia")
    assert acc.end_date.isoformat() == day and acc.status == "active"
    assert acc.departure_at == dt.datetime.fromisoformat(f"{day}T17:30"), "UTC: the tests' zone"
    page = client.get("/admin/people/p.garcia")
    assert "Departure scheduled" in page.text and "Cancel departure" in page.text
    assert post(client, "/admin/people/p.garcia/actions/cancel-departure", reason="stays").status_code == 302
    assert account(demo_db, "p.garcia").departure_at is None


def test_suspend_resume_and_an_action_that_no_longer_applies(admin_client, demo_db):
    client = admin_client("admin")
    assert post(client, "/admin/people/r.schmidt/actions/suspend", reason="leave").status_code == 302
    assert account(demo_db, "r.schmidt").status == "suspended"
    again = client.get("/admin/people/r.schmidt/actions/suspend")
    assert (
        again.status_code == 200 and "Nothing to do" in again.text and '/actions/suspend"' not in again.text
    )
    assert post(client, "/admin/people/r.schmidt/actions/resume", reason="back").status_code == 302
    assert account(demo_db, "r.schmidt").status == "active"
    kinds = [(k, src) for k, src, _ in lifecycle_events(demo_db, "r.schmidt")]
    assert kinds[-2:] == [("suspended", "admin"), ("resumed", "admin")]


def test_granting_a_catalogue_role_and_revoking_a_manual_grant(admin_client, demo_db):
    client = admin_client("helpdesk")
    form = client.get("/admin/people/s.ito/actions/grant")
    assert '<option value="billing">' in form.text and '<option value="it_support">' not in form.text

    assert post(client, "/admin/people/s.ito/actions/grant", role="billing").status_code == 302
    unknown = post(client, "/admin/people/s.ito/actions/grant", role="wizard")
    assert unknown.status_code == 400 and "unknown role" in unknown.text
    assert {g.role for g in account(demo_db, "s.ito").grants} == {"billing", "it_support"}

    assert post(client, "/admin/people/s.ito/actions/revoke", role="billing").status_code == 302
    assert {g.role for g in account(demo_db, "s.ito").grants} == {"it_support"}


def test_reenabling_a_person_who_left(admin_client, demo_db):
    client = admin_client("helpdesk")
    answer = post(client, "/admin/people/k.weber/actions/reenable", reason="rehired")
    assert answer.status_code == 302
    assert account(demo_db, "k.weber").status == "active"
    assert ("rehire", "admin", "admin:helpdesk.user") in lifecycle_events(demo_db, "k.weber")


# -- a person's page ------------------------------------------------------------------------


def test_a_billing_clerks_effective_access_lists_the_iban_for_billing_and_nothing_clinical(admin_client):
    page = admin_client("auditor").get("/admin/people/b.huber")
    assert page.status_code == 200
    access = [r for r in rows(page.text) if len(r) == 6 and r[0] in ("customer", "invoice")]
    iban = [r for r in access if r[:4] == ["customer", "read", "billing", "in full"] and "iban" in r[4]]
    assert iban and iban[0][5] == "allow unless retention-expired-read"
    assert any(r[:3] == ["customer", "update", "billing"] and "iban" in r[4] for r in access)
    assert not any(field in r[4] for r in access for field in CLINICAL)
    assert {r[2] for r in access} == {"billing"}
    assert [c for c in rows(page.text) if c and c[0] == "billing"][0][:3] == ["billing", "manual", "test"]


def test_a_therapists_conditional_access_names_the_rule(admin_client):
    page = admin_client("auditor").get("/admin/people/t.meyer")
    identity = [
        r
        for r in rows(page.text)
        if len(r) == 6 and r[:3] == ["customer", "read", "care"] and "first_name" in r[4]
    ]
    assert identity[0][5].startswith("allow if therapist-identity-own")


def test_subject_ids_with_slashes_and_odd_characters_have_pages(admin_client):
    client = admin_client("helpdesk")
    answer = post(client, "/admin/people/new", subject_id="ou/x y?%", display_name="Odd Id")
    assert answer.status_code == 302
    page = client.get(answer.location)
    assert page.status_code == 200 and "Odd Id" in page.text


# -- list and new person --------------------------------------------------------------------


def test_search_filters_and_paging(admin_client, demo_db):
    now = utcnow()
    with demo_db.session() as s:
        s.execute(
            insert(Account),
            [
                {
                    "subject_id": f"temp{i:03d}",
                    "display_name": f"Temp {i:03d}",
                    "status": "active",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(120)
            ],
        )
    client = admin_client("auditor")
    second = client.get("/admin/people?q=TEMP&page=2")
    listed = [r[0] for r in rows(second.text) if r and r[0].startswith("temp")]
    assert listed == [f"temp{i:03d}" for i in range(50, 100)]
    assert "People 51–100 of 120" in second.text and "page=3" in second.text and "q=TEMP" in second.text

    found = client.get("/admin/people?q=meyer")
    assert "t.meyer" in found.text and "b.huber" not in found.text
    desk = client.get("/admin/people?department=Front+desk&status=active")
    assert [r[0] for r in rows(desk.text)[1:]] == ["a.lind", "p.garcia", "r.schmidt"]


@pytest.mark.parametrize("query", ["page=0", "page=x", "status=retired", "q=a%00b"])
def test_bad_list_parameters_are_a_400(admin_client, query):
    assert admin_client("auditor").get(f"/admin/people?{query}").status_code == 400


def test_creating_a_person(admin_client, demo_db):
    client = admin_client("helpdesk")
    assert client.get("/admin/people/new").status_code == 200
    answer = post(
        client,
        "/admin/people/new",
        subject_id="n.new",
        display_name="Nina New",
        email="n.new@practice.example",
        department="Therapy",
        region="north",
        start_date="2030-01-02",
    )
    assert answer.status_code == 302 and answer.location.endswith("/admin/people/n.new")
    acc = account(demo_db, "n.new")
    assert (acc.origin, acc.region, acc.start_date) == ("admin", "north", dt.date(2030, 1, 2))
    assert lifecycle_events(demo_db, "n.new") == [("joiner", "admin", "admin:helpdesk.user")]

    taken = post(client, "/admin/people/new", subject_id="n.new")
    assert taken.status_code == 409 and "already exists" in taken.text
    bad = post(client, "/admin/people/new", subject_id="n.other", start_date="2030-02-31")
    assert bad.status_code == 400 and "is not a date" in bad.text and 'value="n.other"' in bad.text
    with demo_db.session() as s:
        assert s.scalar(select(Account.id).where(Account.subject_id == "n.other")) is None


# -- roles ----------------------------------------------------------------------------------


def test_roles_show_the_role_graph_and_holders(admin_client):
    client = admin_client("auditor")
    page = client.get("/admin/roles")
    assert page.status_code == 200
    by_role = {r[0]: r for r in rows(page.text)[1:]}
    assert by_role["senior_therapist"][2:6] == ["therapist", "—", "basis:clinical", "1"]
    assert by_role["therapist"][3] == "senior_therapist"
    assert by_role["auditor"][5] == "1", "the signed-in auditor holds it"


def test_a_roles_members_with_their_grant_source(admin_client):
    client = admin_client("auditor")
    page = client.get("/admin/roles/therapist")
    members = [r for r in rows(page.text) if len(r) == 3 and r[0] != "Person"]
    assert [m[0].split()[-1] for m in members] == ["k.weber", "l.novak", "t.meyer"]
    assert members[2][1:] == ["active", "manual by test"]
    assert client.get("/admin/roles/wizard").status_code == 404
    assert client.get("/admin/roles/therapist?page=0").status_code == 400
