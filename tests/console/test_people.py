"""The people services behind the admin UI (accessd.console.people), on SQLite and PostgreSQL:
search and paging stay bounded with 10,000 people, every action goes through the one lifecycle
routine with source admin, effective access is what the policy in force gives the role set."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import event, func, insert, select

from accessd import audit, demo
from accessd.console import people, people_actions, people_roles
from accessd.errors import Conflict, Invalid, NotFound
from accessd.models import Account, AuditEvent, DecisionLog, RoleGrant, SsfOutbox, utcnow
from accessd.ssf import streams
from tests.support.admin import EVERYTHING
from tests.support.lifecycle import account, lifecycle_events

ACTOR = "admin:alice"
CLINICAL = {"presenting_issue", "diagnosis", "medication", "session_notes"}


@pytest.fixture
def demo_db(loaded_db):
    with loaded_db.session() as s:
        demo.load_employees(s, "test")
    return loaded_db


def subjects(page) -> list[str]:
    return [p.subject_id for p in page.items]


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


class Statements:
    """Counts the SQL statements the engine runs while in the ``with`` block."""

    def __init__(self, db):
        self.engine, self.n = db.engine, 0

    def _count(self, *args):
        self.n += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)


# -- search ---------------------------------------------------------------------------------


def test_search_matches_a_case_insensitive_substring_of_id_username_name_or_email(demo_db):
    assert subjects(people.search(demo_db, "MEYER")) == ["t.meyer"]
    assert subjects(people.search(demo_db, "anna")) == ["a.lind"]  # display name
    assert subjects(people.search(demo_db, "S.ITO@PRACTICE")) == ["s.ito"]  # e-mail
    assert people.search(demo_db, "practice.example").total == len(demo.EMPLOYEES)
    assert people.search(demo_db, "nobody-like-this").items == []


def test_like_wildcards_in_a_search_match_only_themselves(demo_db):
    people.create(demo_db, actor=ACTOR, subject_id="x_100%", display_name="Percent Person")
    assert subjects(people.search(demo_db, "%")) == ["x_100%"]
    assert subjects(people.search(demo_db, "_")) == ["x_100%"]  # and not every name with a letter
    assert subjects(people.search(demo_db, "x_1")) == ["x_100%"]
    assert people.search(demo_db, "\\").items == []


def test_filters_by_status_role_and_department_combine(demo_db):
    assert subjects(people.search(demo_db, status="disabled")) == ["k.weber"]
    assert subjects(people.search(demo_db, role="therapist")) == ["k.weber", "l.novak", "t.meyer"]
    assert subjects(people.search(demo_db, department="Front desk")) == ["a.lind", "p.garcia", "r.schmidt"]
    assert subjects(people.search(demo_db, role="therapist", status="active")) == ["l.novak", "t.meyer"]
    assert subjects(people.search(demo_db, "garcia", department="Front desk")) == ["p.garcia"]
    row = people.search(demo_db, "b.huber").items[0]
    assert (row.roles, row.status, row.department, row.region) == (
        ("billing",),
        "active",
        "Accounts",
        "north",
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"status": "retired"}, {"page": 0}, {"q": "bad\x00text"}, {"q": "x" * 201}],
)
def test_bad_search_input_is_refused(demo_db, kwargs):
    with pytest.raises(Invalid):
        people.search(demo_db, **kwargs)


def test_paging_ten_thousand_people_takes_three_bounded_queries(loaded_db):
    now = utcnow()
    with loaded_db.session() as s:
        s.execute(
            insert(Account),
            [
                {
                    "subject_id": f"p{i:05d}",
                    "username": f"user{i:05d}",
                    "display_name": f"Person {i:05d}",
                    "email": f"p{i:05d}@example.org",
                    "department": "Billing" if i % 10 == 0 else "Care",
                    "status": "active",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(10_000)
            ],
        )
        ids = s.execute(select(Account.id, Account.subject_id)).all()
        s.execute(
            insert(RoleGrant),
            [
                {"account_id": i, "role": "billing", "source": "manual", "granted_at": now}
                for i, sid in ids
                if int(sid[1:]) % 10 == 0
            ],
        )

    started = time.perf_counter()
    with Statements(loaded_db) as sql:
        page = people.search(loaded_db, page=2)
    elapsed = time.perf_counter() - started

    assert subjects(page) == [f"p{i:05d}" for i in range(50, 100)]
    assert (page.total, page.pages, page.has_prev, page.has_next) == (10_000, 200, True, True)
    assert page.items[0].roles == ("billing",) and page.items[1].roles == ()
    assert sql.n <= 3, "a COUNT, a page of rows, the page's grants"
    assert elapsed < 3, f"page 2 of 10,000 people took {elapsed:.2f} s"

    assert subjects(people.search(loaded_db, "p0999")) == [f"p{i:05d}" for i in range(9990, 10_000)]
    billing = people.search(loaded_db, role="billing", page=3)
    assert billing.total == 1000 and subjects(billing)[0] == "p01000"
    assert people.search(loaded_db, page=201).items == [], "past the last page: an empty page"


def test_filter_choices_offer_catalogue_roles_and_existing_departments(demo_db):
    choices = people.filter_choices(demo_db)
    assert "billing" in choices["roles"] and "helpdesk" in choices["roles"]
    assert choices["departments"] == ["Accounts", "Front desk", "IT", "Legal", "Marketing", "Therapy"]
    assert choices["statuses"] == ["active", "suspended", "disabled", "pending"]


# -- create ---------------------------------------------------------------------------------


def test_creating_a_person_goes_through_accounts_add_with_source_admin(loaded_db):
    sid = people.create(
        loaded_db,
        actor=ACTOR,
        subject_id=" n.new ",
        username="n.new",
        display_name="Nina New",
        email="n.new@practice.example",
        department="Therapy",
        region="north",
        start_date=dt.date(2030, 1, 2),
    )
    assert sid == "n.new"
    acc = account(loaded_db, "n.new")
    assert (acc.status, acc.origin, acc.region, acc.start_date) == (
        "active",
        "admin",
        "north",
        dt.date(2030, 1, 2),
    )
    assert lifecycle_events(loaded_db, "n.new") == [("joiner", "admin", ACTOR)]
    with loaded_db.session() as s:
        rec = s.scalars(select(AuditEvent).where(AuditEvent.action == "account.create")).one()
        assert rec.actor == ACTOR and rec.detail["source"] == "admin"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"subject_id": "t.meyer"}, Conflict),
        ({"subject_id": ""}, Invalid),
        ({"subject_id": "x", "email": "not-an-address"}, Invalid),
        ({"subject_id": "x", "display_name": "bad\x07name"}, Invalid),
        ({"subject_id": "x", "region": "r" * 65}, Invalid),
    ],
)
def test_creating_a_person_with_bad_input_writes_nothing(demo_db, fields, error):
    before = (count(demo_db, Account), count(demo_db, AuditEvent))
    with pytest.raises(error):
        people.create(demo_db, actor=ACTOR, **fields)
    assert (count(demo_db, Account), count(demo_db, AuditEvent)) == before


@pytest.mark.parametrize("text", ["2026-13-01", "01.02.2026", "2026-1-1", "tomorrow"])
def test_a_date_that_is_not_yyyy_mm_dd_is_refused_with_a_message(text):
    with pytest.raises(Invalid, match="is not a date"):
        people.parse_day("start date", text)


# -- a person's page ------------------------------------------------------------------------


def test_a_persons_page_has_profile_grants_history_and_the_newest_decision(demo_db):
    with demo_db.session() as s:
        for at, action in ((dt.datetime(2026, 1, 1, 9), "read"), (dt.datetime(2026, 1, 2, 9), "update")):
            s.add(
                DecisionLog(
                    at=at,
                    decision_id=f"d-{action}",
                    subject_id="b.huber",
                    action=action,
                    resource_type="customer",
                    resource_id="C-1",
                    purpose="billing",
                    decision="allow",
                    reason="allowed",
                )
            )
    p = people.person(demo_db, "b.huber")
    assert (p.display_name, p.email, p.department, p.status) == (
        "Bernd Huber",
        "b.huber@practice.example",
        "Accounts",
        "active",
    )
    assert [(g.role, g.source, g.granted_by) for g in p.grants] == [("billing", "manual", "test")]
    assert p.history[-1]["what"] == "joiner", "history is newest first"
    assert p.last_decision.action == "update" and p.last_decision.decision == "allow"
    assert p.policy_revision == 1 and p.access_note is None
    assert "offboard" in p.actions and "reenable" not in p.actions and "resume" not in p.actions


def test_an_unknown_subject_is_not_found(demo_db):
    with pytest.raises(NotFound):
        people.person(demo_db, "nobody")
    with pytest.raises(NotFound):
        people_actions.preview(demo_db, "nobody", "offboard", EVERYTHING)
    with pytest.raises(NotFound):
        people_actions.perform(demo_db, "nobody", "offboard", actor=ACTOR, reason="x", reach=EVERYTHING)


def test_a_billing_clerk_may_read_and_change_the_iban_for_billing_and_nothing_clinical(demo_db):
    access = people.person(demo_db, "b.huber").access
    cells = {(r.rtype, r.action, r.purpose, f): r for r in access for f in r.fields}

    iban = cells["customer", "read", "billing", "iban"]
    assert (iban.level, iban.when) == ("allow", ()), "unconditional"
    assert iban.unless == ("retention-expired-read",), "but closed once retention has run out"
    assert cells["customer", "update", "billing", "iban"].level == "allow"
    assert cells["invoice", "read", "billing", "*"].level == "allow"
    assert not any(f in CLINICAL for r in access for f in r.fields if r.rtype == "customer")
    assert {r.purpose for r in access} == {"billing"}


def test_conditional_grants_name_their_rules(demo_db):
    access = people.person(demo_db, "t.meyer").access
    (identity,) = [
        r
        for r in access
        if (r.rtype, r.action, r.purpose) == ("customer", "read", "care") and "first_name" in r.fields
    ]
    assert identity.when == ("therapist-identity-own",)
    assert identity.fields == ("first_name", "last_name", "date_of_birth")
    assert identity.rules.startswith("if therapist-identity-own")
    (ids,) = [r for r in access if r.fields[:1] == ("client_id",) and r.purpose == "care"]
    assert ids.when == () and ids.level == "allow"


def test_a_reception_desk_sees_the_iban_masked(demo_db):
    access = people.person(demo_db, "r.schmidt").access
    (iban,) = [r for r in access if r.fields == ("iban",) and r.rtype == "customer"]
    assert (iban.level, iban.when) == ("mask", ("reception-iban-masked",))


def test_a_disabled_person_has_no_access_and_the_page_says_why(demo_db):
    p = people.person(demo_db, "k.weber")
    assert p.status == "disabled" and "disabled" in p.access_note
    assert "reenable" in p.actions and "suspend" not in p.actions
    future = people.person(demo_db, "l.novak")
    assert "starts on" in future.access_note and future.access, "the roles' access, from the start date"


# -- actions --------------------------------------------------------------------------------


def test_offboarding_from_the_console_is_the_one_routine_with_source_admin(demo_db):
    streams.add_push_stream(
        demo_db,
        "http://127.0.0.1:9/events",
        ["session-revoked", "account-disabled"],
        audience=None,
        fmt="email",
        authorization=None,
        actor="test",
    )
    before = people_actions.preview(demo_db, "t.meyer", "offboard", EVERYTHING)
    assert before.applies and any("therapist (manual)" in c for c in before.consequences)
    assert any("1 Shared Signals stream" in c for c in before.consequences)

    changed, message = people_actions.perform(
        demo_db, "t.meyer", "offboard", actor=ACTOR, reason="left the practice", reach=EVERYTHING
    )

    assert changed and message == "t.meyer: offboarded"
    acc = account(demo_db, "t.meyer")
    assert (acc.status, acc.disabled_by, acc.status_reason, acc.grants) == (
        "disabled",
        "admin",
        "left the practice",
        [],
    )
    assert ("leaver", "admin", ACTOR) in lifecycle_events(demo_db, "t.meyer")
    with demo_db.session() as s:
        sent = s.scalars(select(SsfOutbox.event_type).where(SsfOutbox.subject_id == "t.meyer")).all()
        assert len(sent) == 2 and all(e.startswith("https://schemas.openid.net/") for e in sent)
        assert audit.verify(s) is None
    again = people_actions.perform(
        demo_db, "t.meyer", "offboard", actor=ACTOR, reason="again", reach=EVERYTHING
    )
    assert again == (False, "t.meyer: already offboarded (status disabled); nothing changed")


def test_an_action_without_a_reason_is_refused_and_changes_nothing(demo_db):
    for reason in (None, "", "   "):
        with pytest.raises(Invalid, match="reason is required"):
            people_actions.perform(
                demo_db, "t.meyer", "suspend", actor=ACTOR, reason=reason, reach=EVERYTHING
            )
    assert account(demo_db, "t.meyer").status == "active"
    with pytest.raises(NotFound):
        people_actions.perform(demo_db, "t.meyer", "delete", actor=ACTOR, reason="x", reach=EVERYTHING)


def test_suspend_resume_offboard_and_reenable(demo_db):
    assert people_actions.perform(
        demo_db, "r.schmidt", "suspend", actor=ACTOR, reason="leave", reach=EVERYTHING
    )[0]
    assert account(demo_db, "r.schmidt").status == "suspended"
    assert people.person(demo_db, "r.schmidt").actions[:2] == ("offboard", "schedule")
    assert (
        people_actions.perform(
            demo_db, "r.schmidt", "suspend", actor=ACTOR, reason="leave", reach=EVERYTHING
        )[0]
        is False
    )
    assert people_actions.perform(
        demo_db, "r.schmidt", "resume", actor=ACTOR, reason="back", reach=EVERYTHING
    )[0]
    acc = account(demo_db, "r.schmidt")
    assert acc.status == "active" and {g.role for g in acc.grants} == {"reception"}
    people_actions.perform(demo_db, "r.schmidt", "offboard", actor=ACTOR, reason="left", reach=EVERYTHING)
    assert people_actions.perform(
        demo_db, "r.schmidt", "reenable", actor=ACTOR, reason="rehired", reach=EVERYTHING
    )[0]
    acc = account(demo_db, "r.schmidt")
    assert acc.status == "active" and acc.grants == [], "manual grants are not restored"
    kinds = [(k, src) for k, src, _ in lifecycle_events(demo_db, "r.schmidt")]
    assert kinds[-4:] == [
        ("suspended", "admin"),
        ("resumed", "admin"),
        ("leaver", "admin"),
        ("rehire", "admin"),
    ]


def test_scheduling_and_cancelling_a_departure(demo_db, clock):
    clock.configure("Europe/Berlin")
    clock.set(now=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC))
    effective = people_actions.parse_departure("2026-03-10", "17:30")
    assert effective == dt.datetime(2026, 3, 10, 17, 30, tzinfo=clock.zone())

    changed, message = people_actions.perform(
        demo_db, "p.garcia", "schedule", actor=ACTOR, reason="resigned", effective=effective, reach=EVERYTHING
    )

    assert changed and "access ends 2026-03-10 17:30 CET" in message
    acc = account(demo_db, "p.garcia")
    assert (acc.status, acc.end_date, acc.departure_at) == (
        "active",
        dt.date(2026, 3, 10),
        dt.datetime(2026, 3, 10, 16, 30),
    )
    p = people.person(demo_db, "p.garcia")
    assert p.departure_at.isoformat() == "2026-03-10T17:30:00+01:00" and "cancel-departure" in p.actions
    assert ("leaver_scheduled", "admin", ACTOR) in lifecycle_events(demo_db, "p.garcia")

    assert people_actions.perform(
        demo_db, "p.garcia", "cancel-departure", actor=ACTOR, reason="stays", reach=EVERYTHING
    )[0]
    acc = account(demo_db, "p.garcia")
    assert (acc.end_date, acc.departure_at) == (None, None)


@pytest.mark.parametrize(
    ("day", "time", "match"),
    [
        ("", "", "date is required"),
        ("2026-02-30", "", "is not a date"),
        ("2026-03-10", "25:00", "is not a time"),
        ("2026-03-10", "5pm", "is not a time"),
        ("2026-03-01", "", "not in the future"),
        ("2026-03-02", "09:00", "not in the future"),
    ],
)
def test_a_bad_or_past_departure_is_refused(clock, day, time, match):
    clock.set(now=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC))
    with pytest.raises(Invalid, match=match):
        people_actions.parse_departure(day, time)


@pytest.mark.parametrize(
    "effective", [dt.date(2026, 3, 1), dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), dt.datetime(2026, 3, 9)]
)
def test_scheduling_a_past_or_zoneless_moment_is_refused_and_changes_nothing(demo_db, clock, effective):
    clock.set(now=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC))
    with pytest.raises(Invalid):
        people_actions.perform(
            demo_db, "p.garcia", "schedule", actor=ACTOR, reason="x", effective=effective, reach=EVERYTHING
        )
    acc = account(demo_db, "p.garcia")
    assert (acc.status, acc.end_date, acc.departure_at) == ("active", None, None)


def test_the_last_working_day_today_is_still_ahead(clock):
    clock.set(now=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC))
    assert people_actions.parse_departure("2026-03-02") == dt.date(2026, 3, 2)


def test_granting_and_revoking_roles(demo_db):
    preview = people_actions.preview(demo_db, "s.ito", "grant", EVERYTHING)
    assert "it_support" not in preview.roles and "billing" in preview.roles

    assert people_actions.perform(
        demo_db, "s.ito", "grant", actor=ACTOR, role="billing", reach=EVERYTHING
    ) == (
        True,
        "s.ito: granted billing",
    )
    assert (
        people_actions.perform(demo_db, "s.ito", "grant", actor=ACTOR, role="billing", reach=EVERYTHING)[0]
        is False
    )
    with pytest.raises(Invalid, match="unknown role"):
        people_actions.perform(demo_db, "s.ito", "grant", actor=ACTOR, role="wizard", reach=EVERYTHING)
    with pytest.raises(Invalid, match="choose a role"):
        people_actions.perform(demo_db, "s.ito", "grant", actor=ACTOR, role="", reach=EVERYTHING)
    assert people_actions.preview(demo_db, "s.ito", "revoke", EVERYTHING).roles == ("billing", "it_support")

    assert people_actions.perform(
        demo_db, "s.ito", "revoke", actor=ACTOR, role="billing", reach=EVERYTHING
    ) == (
        True,
        "s.ito: revoked billing",
    )
    assert {g.role for g in account(demo_db, "s.ito").grants} == {"it_support"}
    assert (
        people_actions.perform(demo_db, "s.ito", "revoke", actor=ACTOR, role="dpo", reach=EVERYTHING)[0]
        is False
    )


def test_a_directory_grant_cannot_be_revoked_from_the_console(demo_db):
    with demo_db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == "m.rossi"))
        s.add(RoleGrant(account_id=acc.id, role="dpo", source="directory", source_ref="cn=dpo,ou=groups"))
    with pytest.raises(Conflict, match="through the directory"):
        people_actions.perform(demo_db, "m.rossi", "revoke", actor=ACTOR, role="dpo", reach=EVERYTHING)
    p = people.person(demo_db, "m.rossi")
    assert ("dpo", "directory", "cn=dpo,ou=groups") in [(g.role, g.source, g.source_ref) for g in p.grants]


# -- roles ----------------------------------------------------------------------------------


def test_roles_show_the_role_graph_and_active_holders(demo_db):
    by_name = {r.name: r for r in people_roles.roles(demo_db)}
    assert list(by_name)[:3] == ["reception", "therapist", "senior_therapist"], "catalogue order"
    senior = by_name["senior_therapist"]
    assert (senior.inherits, senior.bases, senior.holders) == (("therapist",), ("basis:clinical",), 1)
    therapist = by_name["therapist"]
    assert therapist.inherited_by == ("senior_therapist",)
    assert therapist.holders == 1, "t.meyer; l.novak has not started, k.weber has left"
    assert by_name["billing"].bases == ("basis:insurance_billing",)
    assert by_name["helpdesk"].holders == 0


def test_a_role_held_but_not_declared_is_listed_as_unknown(demo_db):
    with demo_db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == "d.keller"))
        s.add(RoleGrant(account_id=acc.id, role="retired_role", source="directory"))
    (ghost,) = [r for r in people_roles.roles(demo_db) if not r.known]
    assert (ghost.name, ghost.holders) == ("retired_role", 1)
    info, members = people_roles.role(demo_db, "retired_role")
    assert not info.known and [m.subject_id for m in members.items] == ["d.keller"]


def test_a_roles_members_are_paged_with_their_grant_sources(demo_db):
    info, page = people_roles.role(demo_db, "therapist", per_page=2)
    assert info.holders == 1 and page.total == 3 and page.pages == 2
    assert [(m.subject_id, m.status) for m in page.items] == [("k.weber", "disabled"), ("l.novak", "active")]
    assert [g.source for g in page.items[0].grants] == ["manual"]
    _, second = people_roles.role(demo_db, "therapist", page=2, per_page=2)
    assert [m.subject_id for m in second.items] == ["t.meyer"]
    with pytest.raises(NotFound):
        people_roles.role(demo_db, "wizard")
