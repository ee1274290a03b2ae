"""The one lifecycle: suspension, departures at a moment, cancellation; each change recorded once
with its typed source and the event it came from, and decided on by the engine at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from accessd import accounts, jobs
from accessd.lifecycle import offboarding
from accessd.lifecycle.states import Source
from accessd.models import Account, LifecycleEvent
from tests.support.api import evaluation

BERLIN = "Europe/Berlin"


def ask(client, auth) -> tuple[bool, str]:
    """b.huber (billing) reads a client's IBAN for billing: allowed while the account is usable."""
    client.application.extensions["accessd"].feed.catch_up()  # what the worker's feed does
    body = evaluation("b.huber", field="iban", purpose="billing", explain=True)
    answer = client.post("/access/v1/evaluation", json=body, headers=auth).get_json()
    return answer["decision"], answer["context"]["reason"]


def events(db, subject="b.huber") -> list[tuple]:
    """(kind, source, event_ref) of the account's lifecycle events since it was created."""
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject)
        rows = s.execute(
            select(LifecycleEvent.kind, LifecycleEvent.source, LifecycleEvent.event_ref)
            .where(LifecycleEvent.account_id == acc.id, LifecycleEvent.kind != "joiner")
            .order_by(LifecycleEvent.id)
        )
        return [tuple(r) for r in rows]


@pytest.fixture(autouse=True)
def _clock(clock):
    """Every test here moves the clock (and the clock fixture puts it back)."""
    return clock


def change(db, routine, subject="b.huber", **kw) -> bool:
    """Run a lifecycle routine on the account of ``subject``."""
    with db.session() as s:
        return routine(s, accounts.get_by_subject_id(s, subject), actor="test", **kw)


def account(db, subject="b.huber") -> Account:
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject)
        s.expunge(acc)
        return acc


def test_a_leave_denies_keeps_the_grants_and_a_return_lifts_it(loaded_db, client, auth):
    db = loaded_db
    assert ask(client, auth) == (True, "allowed")
    assert change(db, offboarding.suspend, reason="parental leave", source=Source.HR, event_ref="hr:e1")
    assert ask(client, auth) == (False, "account_suspended")
    assert account(db).roles == {"billing"} and account(db).status == "suspended"
    # the same trigger again changes nothing and records nothing
    assert not change(db, offboarding.suspend, reason="parental leave", source=Source.HR, event_ref="hr:e1")
    assert change(db, offboarding.resume, reason="back", source=Source.HR, event_ref="hr:e2")
    assert ask(client, auth) == (True, "allowed")
    assert not change(db, offboarding.resume, reason="back", source=Source.HR)
    assert events(db) == [("suspended", "hr", "hr:e1"), ("resumed", "hr", "hr:e2")]


def test_a_departure_at_a_moment_denies_from_then_on_even_before_the_job_runs(
    loaded_db, client, auth, clock, make_app
):
    db = loaded_db
    app = make_app(timezone=BERLIN)
    client, moment = (
        app.test_client(),
        dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    clock.set(now=moment - dt.timedelta(hours=1))
    resign = {"reason": "resigned", "source": Source.HR, "effective": moment}
    assert change(db, offboarding.offboard, **resign, event_ref="hr:t1")
    acc = account(db)
    assert (acc.status, acc.end_date, acc.departure_at) == (
        "active",
        dt.date(2026, 12, 31),
        dt.datetime(2026, 12, 31, 16),
    )
    assert ask(client, auth) == (True, "allowed")
    # the same termination again: nothing new
    assert not change(db, offboarding.offboard, **resign)

    clock.set(now=moment)  # the moment has come; no job has run yet
    assert ask(client, auth) == (False, "account_ended")
    assert account(db).status == "active"

    # the scheduler was down at the due time: its first run catches up, exactly once
    clock.set(now=moment + dt.timedelta(days=3))
    assert jobs.offboard_due_departures(db) >= 1  # b.huber (and a demo leaver whose day passed too)
    assert jobs.offboard_due_departures(db) == 0
    assert ask(client, auth) == (False, "account_disabled")
    acc = account(db)
    assert (acc.status, acc.disabled_by, acc.roles) == ("disabled", "scheduler", frozenset())
    assert events(db) == [
        ("leaver_scheduled", "hr", "hr:t1"),
        ("leaver", "scheduler", "departure:2026-12-31T16:00:00Z"),
    ]
    app.extensions["accessd"].close()


def test_a_last_working_day_ends_at_midnight_in_the_practice_zone(loaded_db, employees, clock, make_app):
    make_app(timezone=BERLIN)  # configures the clock's zone
    clock.set(now=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))
    assert change(
        loaded_db,
        offboarding.offboard,
        reason="contract ends",
        source=Source.CLI,
        effective=dt.date(2026, 6, 30),
    )
    # midnight after 30 June in Berlin (summer time, UTC+2) is 22:00 UTC on 30 June
    assert account(loaded_db).departure_at == dt.datetime(2026, 6, 30, 22, 0)


def test_a_cancelled_departure_is_never_carried_out(loaded_db, client, auth, clock):
    db = loaded_db
    clock.set(now=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC))
    assert change(
        db, offboarding.offboard, reason="resigned", source=Source.HR, effective=dt.date(2026, 3, 15)
    )
    assert change(db, offboarding.cancel_departure, reason="stays after all", source=Source.HR)
    assert not change(db, offboarding.cancel_departure, reason="stays after all", source=Source.HR)
    clock.set(now=dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC))
    assert jobs.offboard_due_departures(db) == 0
    assert ask(client, auth) == (True, "allowed")
    assert [e[0] for e in events(db)] == ["leaver_scheduled", "departure_cancelled"]


def test_a_departure_time_without_a_zone_or_an_unknown_source_is_refused_and_changes_nothing(
    loaded_db, employees
):
    db = loaded_db
    with pytest.raises(ValueError, match="time zone"):
        change(db, offboarding.offboard, reason="x", source=Source.HR, effective=dt.datetime(2030, 1, 1, 17))
    with pytest.raises(ValueError, match="'hr-system'"):
        change(db, offboarding.offboard, reason="x", source="hr-system")
    with db.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(LifecycleEvent).where(LifecycleEvent.kind != "joiner"))
            == 0
        )
    assert account(db).status == "active"


def test_a_rehire_after_a_departure_is_active_again(loaded_db, client, auth):
    db = loaded_db
    assert change(db, offboarding.offboard, reason="left", source=Source.SCIM, event_ref="scim:1")
    assert ask(client, auth) == (False, "account_disabled")
    assert change(db, offboarding.reenable, reason="rehired", source=Source.HR, event_ref="hr:r1")
    assert account(db).status == "active"
    assert events(db) == [("leaver", "scim", "scim:1"), ("rehire", "hr", "hr:r1")]
