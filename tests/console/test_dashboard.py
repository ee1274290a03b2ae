"""The console's front page (accessd.console.dashboard.summary) on SQLite and PostgreSQL: counts
by state, the last sync run and held runs, departures due within a week in the practice's time
zone (overdue ones first), undelivered Shared Signals events."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from accessd import clock as accessd_clock
from accessd import demo
from accessd.console import dashboard, people_actions
from accessd.models import Account, SsfOutbox, SyncRun
from tests.support.admin import EVERYTHING

ACTOR = "admin:alice"


@pytest.fixture
def demo_db(loaded_db):
    with loaded_db.session() as s:
        demo.load_employees(s, "test")
    return loaded_db


def set_dates(db, subject_id: str, **values) -> None:
    with db.session() as s:
        s.execute(update(Account).where(Account.subject_id == subject_id).values(**values))


def test_an_empty_database_gives_an_empty_dashboard(db):
    d = dashboard.summary(db)
    assert d.people == {"active": 0, "suspended": 0, "disabled": 0, "pending": 0} and d.people_total == 0
    assert (d.last_sync, d.awaiting_approval, d.departures, d.departures_total) == (None, 0, [], 0)
    assert d.outbox == {"pending": 0, "failed": 0} and d.policy_revision is None


def test_people_are_counted_by_state(demo_db):
    people_actions.perform(demo_db, "r.schmidt", "suspend", actor=ACTOR, reason="leave", reach=EVERYTHING)
    d = dashboard.summary(demo_db)
    assert d.people == {"active": 9, "suspended": 1, "disabled": 1, "pending": 0}
    assert d.people_total == len(demo.EMPLOYEES) and d.policy_revision == 1


def test_the_last_real_sync_run_and_the_runs_held_for_approval(demo_db):
    with demo_db.session() as s:
        s.add_all(
            [
                SyncRun(kind="full", status="pending_approval", source="scheduler", reason="12 leavers"),
                SyncRun(kind="full", status="pending_approval", source="cli", reason="40% fewer people"),
                SyncRun(
                    kind="incremental",
                    status="succeeded",
                    source="scheduler",
                    counts={"joiner": 2, "leaver": 1},
                    finished_at=dt.datetime(2026, 5, 1, 3, 0),
                ),
                SyncRun(kind="full", status="succeeded", dry_run=True),  # a dry run changes nobody
            ]
        )
    d = dashboard.summary(demo_db)
    assert d.awaiting_approval == 2
    assert (d.last_sync.kind, d.last_sync.status, d.last_sync.counts) == (
        "incremental",
        "succeeded",
        {"joiner": 2, "leaver": 1},
    )
    assert d.last_sync.finished_at == dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)


def test_departures_due_within_seven_days_of_the_practices_calendar(demo_db, clock):
    # 10:30 UTC on 2 March is already 00:30 on 3 March in Kiritimati (UTC+14): "today" is the 3rd
    clock.configure("Pacific/Kiritimati")
    clock.set(now=dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC))
    today = dt.date(2026, 3, 3)
    set_dates(demo_db, "a.lind", end_date=today + dt.timedelta(days=6))  # last day Monday 9th: due
    set_dates(demo_db, "m.rossi", end_date=today + dt.timedelta(days=7))  # a week after: not yet
    set_dates(demo_db, "b.huber", end_date=today - dt.timedelta(days=1))  # passed, not disabled
    people_actions.perform(
        demo_db,
        "p.garcia",
        "schedule",
        actor=ACTOR,
        reason="resigned",
        effective=people_actions.parse_departure("2026-03-05", "12:00"),
        reach=EVERYTHING,
    )

    d = dashboard.summary(demo_db)

    assert [(x.subject_id, x.overdue) for x in d.departures] == [
        ("b.huber", True),
        ("p.garcia", False),
        ("a.lind", False),
    ]
    assert d.departures_total == 3
    garcia = d.departures[1]
    assert garcia.last_day == dt.date(2026, 3, 5)
    assert garcia.ends_at.isoformat() == "2026-03-05T12:00:00+14:00", "shown in the practice's zone"
    assert d.departures[2].ends_at.isoformat() == "2026-03-10T00:00:00+14:00"


def test_a_disabled_person_is_no_longer_a_departure_and_the_list_is_bounded(demo_db):
    today = accessd_clock.today()
    for sid in ("a.lind", "m.rossi", "s.ito"):
        set_dates(demo_db, sid, end_date=today + dt.timedelta(days=2))
    people_actions.perform(demo_db, "s.ito", "offboard", actor=ACTOR, reason="left early", reach=EVERYTHING)
    d = dashboard.summary(demo_db, limit=1)
    assert d.departures_total == 2 and [x.subject_id for x in d.departures] == ["a.lind"]


def test_undelivered_shared_signals_events_are_counted_by_status(demo_db):
    from accessd.ssf import streams

    streams.add_push_stream(
        demo_db,
        "http://127.0.0.1:9/events",
        ["session-revoked", "account-disabled"],
        audience=None,
        fmt="email",
        authorization=None,
        actor="test",
    )
    people_actions.perform(demo_db, "t.meyer", "offboard", actor=ACTOR, reason="left", reach=EVERYTHING)
    people_actions.perform(demo_db, "m.rossi", "offboard", actor=ACTOR, reason="left", reach=EVERYTHING)
    with demo_db.session() as s:
        first = s.scalars(select(SsfOutbox).order_by(SsfOutbox.id)).first()
        first.status = "failed"
        second = s.scalars(select(SsfOutbox).order_by(SsfOutbox.id).offset(1)).first()
        second.status = "delivered"
    assert dashboard.summary(demo_db).outbox == {"pending": 2, "failed": 1}
