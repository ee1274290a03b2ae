"""Stale and orphan accounts: found with their evidence, listed by `accessd accounts stale`, and
suspended by the daily sweep only when configured and only on complete evidence."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from accessd import accounts, jobs
from accessd.config import load_settings
from accessd.lifecycle import offboarding, stale
from accessd.lifecycle.states import Source
from accessd.lifecycle.sync_plan import GONE
from accessd.models import Account, AdminUser, HrEvent, LifecycleEvent, SyncRun, utcnow
from tests.support.api import evaluation
from tests.support.cli import cli

DAY = dt.timedelta(days=1)
#: active demo employees; l.novak starts in 14 days, k.weber has left
ACTIVE = {
    "t.meyer",
    "j.okafor",
    "l.novak",
    "r.schmidt",
    "p.garcia",
    "b.huber",
    "m.rossi",
    "d.keller",
    "s.ito",
    "a.lind",
}


def settings(**stale_settings):
    return load_settings(env={}, overrides={"stale": stale_settings} if stale_settings else None)


def report(db, conf=None, days=None) -> stale.Report:
    with db.session() as s:
        return stale.find(s, conf or settings(), days)


@pytest.fixture
def start(clock, loaded_db, employees):
    """The moment the demo employees were created; the clock is set there."""
    with loaded_db.session() as s:
        moment = accounts.get_by_subject_id(s, "t.meyer").created_at.replace(tzinfo=dt.UTC)
    clock.set(now=moment)
    return moment


def decide(client, auth, app, subject):
    """A real decision about ``subject``, written to the decision log now."""
    body = evaluation(subject, field="iban", purpose="billing")
    assert client.post("/access/v1/evaluation", json=body, headers=auth).status_code == 200
    app.extensions["accessd"].decision_log.flush()


def test_accounts_without_a_decision_or_sign_in_for_the_configured_days_are_stale(
    app, client, auth, loaded_db, start, clock
):
    clock.set(now=start + 50 * DAY)
    decide(client, auth, app, "b.huber")
    with loaded_db.session() as s:
        ito = accounts.get_by_subject_id(s, "s.ito")
        s.add(
            AdminUser(username="ito", password_hash="x", account_id=ito.id, last_login_at=utcnow() + 30 * DAY)
        )

    clock.set(now=start + 91 * DAY)
    found = {f.subject_id: f for f in report(loaded_db).findings}
    # b.huber decided 41 days ago, s.ito signed in 11 days ago, l.novak started 77 days ago
    assert set(found) == ACTIVE - {"b.huber", "s.ito", "l.novak"}
    meyer = found["t.meyer"]
    assert (meyer.stale, meyer.orphan, meyer.idle_days, meyer.last_decision) == (True, None, 91, None)
    assert meyer.to_json()["idle_since"] == _iso(start) + "Z"

    # the evidence is shown for any idle limit; a longer one finds fewer
    found = {f.subject_id: f for f in report(loaded_db, days=30).findings}
    assert found["b.huber"].last_decision == (start + 50 * DAY).replace(tzinfo=None)
    assert "s.ito" not in found and "l.novak" in found
    assert report(loaded_db, days=92).findings == []


def test_the_sweep_reports_by_default_and_suspends_only_when_configured(
    app, client, auth, loaded_db, start, clock
):
    clock.set(now=start + 91 * DAY)
    result = stale.sweep(loaded_db, settings())
    assert len(result.report.stale) == len(ACTIVE) - 1 and result.suspended == []  # l.novak started later

    clock.set(now=start + 80 * DAY)
    decide(client, auth, app, "b.huber")
    clock.set(now=start + 91 * DAY)
    # most accounts look stale: not evidence enough to suspend anyone
    result = stale.sweep(loaded_db, settings(action="suspend"))
    assert result.suspended == [] and "stale.max_ratio" in result.refused
    off = load_settings(
        env={}, overrides={"stale": {"action": "suspend", "max_ratio": 1}, "decision_log": {"enabled": False}}
    )
    assert "decision log is off" in stale.sweep(loaded_db, off).refused

    result = stale.sweep(loaded_db, settings(action="suspend", max_ratio=1))
    assert sorted(result.suspended) == sorted(ACTIVE - {"b.huber", "l.novak"})
    assert stale.sweep(loaded_db, settings(action="suspend", max_ratio=1)).suspended == []  # once
    with loaded_db.session() as s:
        meyer = accounts.get_by_subject_id(s, "t.meyer")
        assert (meyer.status, meyer.disabled_by, meyer.roles) == (
            "suspended",
            "sweep",
            frozenset({"therapist"}),
        )
        ev = s.scalars(select(LifecycleEvent).where(LifecycleEvent.kind == "suspended")).first()
        assert (ev.source, ev.actor) == ("sweep", "system:sweep") and ev.reason.startswith("stale:")

    client.application.extensions["accessd"].feed.catch_up()  # what the worker's feed does
    answer = client.post(
        "/access/v1/evaluation", json=evaluation("m.rossi", explain=True), headers=auth
    ).get_json()
    assert answer["context"]["reason"] == "account_suspended"

    # back from a stale suspension: in use from now on, not stale again tomorrow
    with loaded_db.session() as s:
        offboarding.resume(
            s,
            accounts.get_by_subject_id(s, "m.rossi"),
            reason="still here",
            source=Source.CLI,
            actor="cli:it",
        )
    clock.advance(DAY.total_seconds())
    assert "m.rossi" not in {f.subject_id for f in report(loaded_db).findings}


def test_accounts_no_source_knows_any_more_are_orphans(loaded_db, employees, start):
    hr = {"sources": {"workday": "whsec_" + "d29ya2RheS1zZWNyZXQtMzItYnl0ZXMtbG9uZyEhISE="}}
    ldap = {"url": "ldap://ldap.example", "user_base": "ou=people,dc=example"}
    with loaded_db.session() as s:

        def add(subject, origin, key=None, number=None):
            acc = Account(subject_id=subject, origin=origin, directory_key=key, employee_number=number)
            s.add(acc)
            s.flush()
            return acc

        add("dir.nokey", "directory")
        gone = add("dir.gone", "directory", key="uuid-gone")
        add("dir.here", "directory", key="uuid-here")
        add("legacy.key", None, key="uuid-legacy")  # before origins: a key means the directory
        add("hr.known", "hr", number="H1")
        add("hr.dropped", "hr", number="H2")
        add("scim.user", "scim")
        add("by.hand", "cli")
        s.add_all(
            [
                HrEvent(source="workday", event_id="1", type="hire", employee_number="H1", status="applied"),
                HrEvent(source="bamboo", event_id="1", type="hire", employee_number="H2", status="applied"),
                SyncRun(
                    kind="full",
                    status="pending_approval",
                    plan={"actions": [{"action": "leave", "account_id": gone.id, "reason": GONE}]},
                ),
            ]
        )

    def orphans(**overrides):
        conf = load_settings(env={}, overrides=overrides)
        return {f.subject_id: f.orphan for f in report(loaded_db, conf).findings if f.orphan}

    run_id = _run_id(loaded_db)
    with_ldap = orphans(ldap=ldap, hr=hr)
    assert with_ldap == {
        "dir.nokey": "a directory account without a directory key",
        "dir.gone": f"not in the directory at the last full sync (run {run_id}, pending approval)",
        "hr.dropped": "its HR source (bamboo) is no longer configured (hr.sources)",
    }
    without_ldap = orphans(hr=hr)
    assert set(without_ldap) == {"dir.nokey", "dir.gone", "dir.here", "legacy.key", "hr.dropped"}
    assert without_ldap["dir.here"] == "no directory is configured (ldap.url is empty)"
    # demo accounts were made by hand (no directory key): never orphans, nor are SCIM's
    assert not set(without_ldap) & (ACTIVE | {"scim.user", "by.hand", "hr.known"})


def _iso(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _run_id(db) -> int:
    with db.session() as s:
        return s.scalar(select(SyncRun.id))


def test_accessd_accounts_stale_lists_the_evidence(loaded_db, employees, start, clock):
    clock.set(now=start + 91 * DAY)
    lines = cli(loaded_db.url, "accounts", "stale", "--json").stdout.splitlines()
    rows = {row["subject"]: row for row in map(json.loads, lines)}
    assert set(rows) == ACTIVE - {"l.novak"}
    assert rows["t.meyer"] == {
        "subject": "t.meyer",
        "stale": True,
        "orphan": None,
        "idle_days": 91,
        "idle_since": _iso(start) + "Z",
        "last_decision": None,
        "last_sign_in": None,
        "origin": "cli",
        "created_at": _iso(start) + "Z",
    }
    # the group's own name works too, and the text form has one tab-separated line per account
    result = cli(loaded_db.url, "account", "stale", "--days", "100")
    assert result.stdout == "" and "0 stale (idle 100+ days), 0 orphans of 10 active" in result.stderr
    text = cli(loaded_db.url, "account", "stale").stdout.splitlines()
    assert "t.meyer\tstale\t91\t-\t-\tcli\t-" in text


def test_the_scheduler_runs_the_sweep_daily_with_the_settings():
    conf = settings(action="suspend")
    sched = BackgroundScheduler(timezone="UTC")
    jobs.register(sched, conf, db=object())  # the database is only handed to the job
    job = {j.id: j for j in sched.get_jobs()}["stale-sweep"]
    assert job.func is stale.sweep and job.args[1] is conf
    assert "hour='4'" in str(job.trigger)
