"""The ``accessd sync`` commands and the scheduler's jobs, end to end against slapd."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from sqlalchemy import select

from accessd import clock, jobs
from accessd.cli import main
from accessd.errors import Invalid
from accessd.lifecycle.locks import SyncLock
from accessd.models import Account, SyncRun


def test_sync_dry_run_prints_the_plan_and_changes_nothing(cli, people, db):
    people.group("billing", people.add("alice"))
    people.add("bob")

    out = cli("sync", "--dry-run")

    assert out.exit_code == 0, out.output
    assert "sync dry run 1: succeeded; 2 people read; join 2" in out.output
    assert "join alice (uid=alice," in out.output and "with billing" in out.output
    assert "... 2 directory entries read" in out.output  # the progress line
    with db.session() as s:
        assert s.scalars(select(Account)).all() == []


def test_sync_runs_lists_runs_and_approve_applies_once_with_a_clear_second_error(cli, people, db):
    dns = [people.add(f"p{i}") for i in range(20)]
    assert cli("sync").exit_code == 0
    for dn in dns[:7]:
        people.delete(dn)

    out = cli("sync")
    assert "pending_approval" in out.output and "accessd sync approve 2" in out.output

    listed = cli("sync", "runs").output.splitlines()
    assert listed[0].startswith("2\t") and "pending_approval" in listed[0] and "leave=7" in listed[0]
    assert listed[1].startswith("1\t") and "succeeded" in listed[1] and "join=20" in listed[1]
    assert "disable p0: directory: gone from the directory" in cli("sync", "show", "2").output

    first = cli("sync", "approve", "2")
    assert first.exit_code == 0 and "approved and applied: leave 7" in first.output
    second = cli("sync", "approve", "2")
    assert second.exit_code == 2
    assert "error: sync run 2 was already applied at" in second.output


def test_a_failed_sync_exits_1_with_the_reason(cli, people, db):
    people.add("alice")
    assert cli("sync").exit_code == 0
    people.delete(people.dn("alice"))

    out = cli("sync")

    assert out.exit_code == 1 and "returned no people" in out.output
    with db.session() as s:
        assert s.scalars(select(SyncRun.status).order_by(SyncRun.id)).all() == ["succeeded", "failed"]


def test_the_offboard_command_is_idempotent(cli, people, db):
    people.add("alice")
    cli("sync")
    assert "alice: offboarded" in cli("offboard", "alice", "--reason", "left").output
    assert "already offboarded" in cli("offboard", "alice", "--reason", "left").output
    assert cli("offboard", "nobody", "--reason", "x").exit_code == 2


def test_the_scheduler_registers_syncs_departures_and_retention(settings):
    sched = BackgroundScheduler(timezone="UTC")
    jobs.register(sched, settings)
    by_id = {j.id: j for j in sched.get_jobs()}
    assert {"ldap-incremental", "ldap-full", "departures", "decision-log-retention"} <= set(by_id)
    assert by_id["ldap-incremental"].trigger.interval == dt.timedelta(minutes=5)
    assert "hour='2'" in str(by_id["ldap-full"].trigger)
    # departures every minute, and once at start: what fell due while no scheduler ran
    assert by_id["departures"].trigger.interval == dt.timedelta(minutes=1)
    assert by_id["departures"].next_run_time is not None


def test_the_scheduled_sync_job_runs_the_same_sync_and_the_sweep_offboards_past_end_dates(
    settings, people, db
):
    people.add("alice")
    people.add("bob")
    assert jobs.directory_sync(db, settings, "full").counts == {"join": 2}
    assert jobs.directory_sync(db, settings, "incremental").counts == {}
    with db.session() as s:
        s.scalar(select(Account).where(Account.subject_id == "bob")).end_date = clock.today() - dt.timedelta(
            1
        )

    assert jobs.offboard_due_departures(db) == 1
    assert jobs.offboard_due_departures(db) == 0
    with db.session() as s:
        assert s.scalar(select(Account.status).where(Account.subject_id == "bob")) == "disabled"


def test_sync_runs_shows_where_each_run_came_from(cli, people, db, settings):
    people.add("alice")
    assert cli("sync").exit_code == 0
    assert cli("sync", "--incremental", "--source", "cron").exit_code == 0
    jobs.directory_sync(db, settings, "incremental")

    listed = [line.split("\t") for line in cli("sync", "runs").output.splitlines()]

    assert [(r[0], r[3], r[4]) for r in listed] == [
        ("3", "incremental", "scheduler"),
        ("2", "incremental", "cron"),
        ("1", "full", "cli"),
    ]
    assert "from cron" in cli("sync", "show", "2").output
    bad = cli("sync", "--source", "Cron Job")
    assert bad.exit_code == 2 and "--source" in bad.output


def test_offboard_on_a_future_date_says_it_scheduled_the_departure(cli, people, db):
    people.add("alice")
    cli("sync")
    last_day = (clock.today() + dt.timedelta(days=30)).isoformat()

    out = cli("offboard", "alice", "--reason", "resigned", "--on", last_day)

    assert out.exit_code == 0
    assert (
        out.output.strip()
        == f"alice: departure scheduled: last working day {last_day}; access ends after that day"
    )
    again = cli("offboard", "alice", "--reason", "resigned", "--on", last_day)
    assert again.output.strip() == f"alice: departure already scheduled for {last_day}; nothing changed"
    with db.session() as s:
        assert s.scalar(select(Account.status).where(Account.subject_id == "alice")) == "active"


def test_approve_exits_1_and_names_the_new_run_when_the_plan_grew_beyond_the_approval(cli, people, db):
    dns = [people.add(f"p{i}") for i in range(20)]
    cli("sync")
    for dn in dns[:7]:
        people.lock(dn)
    assert "pending_approval" in cli("sync").output
    people.lock(dns[7])

    out = cli("sync", "approve", "2")

    assert out.exit_code == 1
    assert (
        "run 2 not applied: the directory changed beyond what was approved; run 3 holds the new plan"
        in out.output
    )
    assert "run 3 approved and applied: leave 8\n" in cli("sync", "approve", "3").stdout


BUSY = re.compile(r"a sync is already running since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, run 7\n")


def test_a_held_sync_lock_is_its_one_line_and_exit_code_3_and_records_nothing(cli, people, db):
    people.add("alice")
    with SyncLock(db) as lock:
        lock.set_run(7)
        for args in (("sync",), ("sync", "--dry-run", "--incremental"), ("sync", "approve", "7")):
            out = cli(*args)
            assert out.exit_code == 3, args
            assert BUSY.fullmatch(out.stderr), out.stderr  # no "error: " prefix: it is not a failure
            assert out.stdout == ""
    with db.session() as s:
        assert s.scalars(select(SyncRun)).all() == []
    assert cli("sync").exit_code == 0, "released: the next run goes ahead"


def test_approve_with_the_directory_down_is_error_exit_2_and_the_run_stays_held(cli, cli_env, people, db):
    dns = [people.add(f"p{i}") for i in range(20)]
    cli("sync")
    for dn in dns[:7]:
        people.delete(dn)
    assert "pending_approval" in cli("sync").output
    env = {**cli_env, "ACCESSD_LDAP_BIND_PASSWORD": "wrong"}

    out = CliRunner(env=env).invoke(main, ["sync", "approve", "2"], catch_exceptions=False)

    assert out.exit_code == 2
    assert out.stderr.startswith(
        "error: sync run 2 stays pending approval: the directory could not be re-read: bind to ldap://"
    )
    assert "wrong" not in out.stderr and len(out.stderr.splitlines()) == 1
    with db.session() as s:
        assert s.get(SyncRun, 2).status == "pending_approval"


def test_run_sync_refuses_an_unknown_kind_as_invalid_and_records_nothing(sync, db):
    with pytest.raises(Invalid, match="kind must be full or incremental, not 'partial'"):
        sync("partial")
    with db.session() as s:
        assert s.scalars(select(SyncRun)).all() == []
