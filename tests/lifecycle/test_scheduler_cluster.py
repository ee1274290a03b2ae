"""Several real `accessd scheduler` processes on one database (SQLite and PostgreSQL): exactly one
leads and runs the jobs while the others stand by naming it; killed with SIGKILL, it is replaced
within a minute; a job that missed fire times while nobody led runs once, not once per fire time,
and a run a dead process left unfinished runs again; a stopped leader hands over at once."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from accessd import accounts
from accessd.models import Account, LifecycleEvent, RunLock, SchedulerJob, utcnow

RETRY, LEASE = 0.5, 3  # seconds; production defaults are 5 and 30
TAKEOVER_BOUND = 60  # the bound ("within a minute"); with RETRY it takes about a second


def zone_near_noon() -> str:
    """A zone where it is now between 12:00 and 13:00: the daily jobs (03:30, 03:45 and 04:15
    there) cannot fall due on their own while the test runs, so every run counted is ours."""
    offset = 12 - dt.datetime.now(dt.UTC).hour  # -11 .. 12 hours from UTC
    return f"Etc/GMT{-offset:+d}"  # Etc/GMT-2 is UTC+2


class Scheduler:
    """One `accessd scheduler` process; its output goes to a file (``log``)."""

    def __init__(self, env: dict[str, str], path: Path):
        self.path = path
        out = open(path, "wb")  # noqa: SIM115 - closed below: the child writes to its own copy
        command = [sys.executable, "-m", "accessd", "scheduler"]
        self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        return self.path.read_text(errors="replace")

    def leads(self) -> bool:
        """Its last word on leadership says it leads."""
        said = re.findall(r"(leading: this process|no longer leading|standing by)", self.log)
        return bool(said) and said[-1] == "leading: this process"

    def stand_by_for(self) -> list[int]:
        """The pids it said it stood by for, in order."""
        return [int(pid) for pid in re.findall(r"standing by: [^:\s]+:(\d+) leads", self.log)]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not in {timeout} s: {what}"
        time.sleep(0.1)
    return result


def job_rows(db) -> dict[str, SchedulerJob]:
    with db.session() as s:
        return {row.id: row for row in s.scalars(select(SchedulerJob))}


def pid_of(owner: str | None) -> int | None:
    return int(owner.rsplit(":", 3)[1]) if owner else None


def leader_pid(db) -> int | None:
    with db.session() as s:
        return pid_of(s.scalar(select(RunLock.owner).where(RunLock.name == "scheduler")))


def leaver_events(db, subject: str) -> int:
    with db.session() as s:
        return s.scalar(
            select(func.count())
            .select_from(LifecycleEvent)
            .join(Account, Account.id == LifecycleEvent.account_id)
            .where(Account.subject_id == subject, LifecycleEvent.kind == "leaver")
        )


@pytest.fixture
def start(db, tmp_path):
    """``start(n)``: n schedulers on the test database; each is killed at teardown if still running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    env.update(
        ACCESSD_DATABASE_URL=db.url,
        ACCESSD_INSTANCE_PATH=str(tmp_path / "instance"),
        ACCESSD_TIMEZONE=zone_near_noon(),
        ACCESSD_SCHEDULER_RETRY_SECONDS=str(RETRY),
        ACCESSD_SCHEDULER_LEASE_SECONDS=str(LEASE),
    )
    started: list[Scheduler] = []

    def start_many(n: int) -> list[Scheduler]:
        new = [Scheduler(env, tmp_path / f"scheduler-{len(started) + i}.log") for i in range(n)]
        started.extend(new)
        return new

    yield start_many
    for scheduler in started:
        if scheduler.proc.poll() is None:
            scheduler.proc.kill()
            scheduler.proc.wait()
        print(f"--- scheduler {scheduler.pid}:\n{scheduler.log}")  # shown when the test failed


def test_one_scheduler_of_three_runs_the_jobs_a_killed_leader_is_replaced_and_missed_runs_run_once(db, start):
    now = utcnow()
    with db.session() as s:
        leaver = accounts.upsert(s, subject_id="t.meyer", username="t.meyer")
        leaver.departure_at = now - dt.timedelta(hours=1)  # due an hour ago
        s.add_all(
            [
                # no scheduler led for two days: two nightly purges missed
                SchedulerJob(
                    id="decision-log-retention",
                    runs=4,
                    due_after=now - dt.timedelta(days=2),
                    status="succeeded",
                ),
                # the process running the sweep died a minute ago, before it finished
                SchedulerJob(
                    id="stale-sweep",
                    runs=2,
                    due_after=now - dt.timedelta(minutes=1),
                    status="running",
                    ran_by="elsewhere:4242:1:dead",
                ),
                # ran an hour ago: not due
                SchedulerJob(
                    id="event-outbox-retention",
                    runs=3,
                    due_after=now - dt.timedelta(hours=1),
                    status="succeeded",
                ),
            ]
        )

    schedulers = start(3)

    def settled():
        rows = job_rows(db)
        done = all(r.status == "succeeded" for r in rows.values()) and rows["stale-sweep"].runs == 3
        done = done and rows.get("departures") and rows["decision-log-retention"].runs == 5
        return done and all(s.leads() or s.stand_by_for() for s in schedulers)

    wait_for(settled, 60, "the jobs ran and every process said whether it leads")
    leaders = [s for s in schedulers if s.leads()]
    assert len(leaders) == 1, [s.log for s in schedulers]
    first = leaders[0]
    assert leader_pid(db) == first.pid
    for standby in schedulers:
        if standby is not first:
            assert standby.stand_by_for()[-1] == first.pid, standby.log
    rows = job_rows(db)
    ran = ("departures", "decision-log-retention", "stale-sweep")
    assert {pid_of(rows[job].ran_by) for job in ran} == {first.pid}
    assert rows["decision-log-retention"].runs == 5  # once, not once per missed night
    assert (rows["stale-sweep"].runs, rows["event-outbox-retention"].runs) == (3, 3)
    assert leaver_events(db, "t.meyer") == 1  # offboarded once, by the leader
    with db.session() as s:
        led_since = s.scalar(select(RunLock.acquired_at).where(RunLock.name == "scheduler"))
    # the departures ran at the first start (not at the next full minute)
    assert rows["departures"].started_at - led_since < dt.timedelta(seconds=10)

    first.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.proc.wait()
    with db.session() as s:  # nothing ran while nobody led, for two days
        s.execute(
            update(SchedulerJob)
            .where(SchedulerJob.id == "decision-log-retention")
            .values(due_after=utcnow() - dt.timedelta(days=2))
        )
    survivors = [s for s in schedulers if s is not first]

    second = wait_for(
        lambda: next((s for s in survivors if s.leads()), None), TAKEOVER_BOUND, "a standby took over"
    )
    took = time.monotonic() - killed_at
    print(f"takeover after SIGKILL: {took:.2f} s ({db.dialect})")
    wait_for(lambda: job_rows(db)["decision-log-retention"].runs == 6, 30, "the missed purge ran")
    time.sleep(3 * RETRY)  # long enough for a second leader or a second catch-up to show
    rows = job_rows(db)
    assert rows["decision-log-retention"].runs == 6
    assert pid_of(rows["decision-log-retention"].ran_by) == second.pid
    assert (rows["stale-sweep"].runs, rows["event-outbox-retention"].runs) == (3, 3)
    assert [s for s in survivors if s.leads()] == [second]
    assert leader_pid(db) == second.pid
    assert leaver_events(db, "t.meyer") == 1

    # a stopped leader (SIGTERM: systemd's stop) hands over at once: the last standby takes the lead
    last = next(s for s in survivors if s is not second)
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(30) == 0
    assert "no longer leading: this process stops" in second.log
    wait_for(last.leads, 5 * RETRY + 5, "the last standby took over")
    last.proc.send_signal(signal.SIGTERM)
    assert last.proc.wait(30) == 0
    assert leader_pid(db) is None  # the lead was handed back, not left to expire


def test_a_leader_whose_lock_connection_breaks_stops_leading(db, start):
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL: the advisory lock lives and dies with its connection")
    schedulers = start(2)
    leader = wait_for(lambda: next((s for s in schedulers if s.leads()), None), 60, "a leader")
    with db.session() as s:  # an administrator, or a failover, cuts the lock's connection
        cut = s.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).all()
    assert cut == [(True,)]

    wait_for(lambda: "no longer leading: the lock was lost" in leader.log, 10, "the leader noticed")
    # it stands by like any other process: one of the two leads again, and only one
    wait_for(
        lambda: leader_pid(db) in {s.pid for s in schedulers} and any(s.leads() for s in schedulers),
        10,
        "a leader again",
    )
    time.sleep(3 * RETRY)
    assert len([s for s in schedulers if s.leads()]) == 1, [s.log for s in schedulers]


def test_the_scheduler_refuses_a_lease_shorter_than_two_tries(tmp_path):
    from click.testing import CliRunner

    from accessd.cli import main

    env = {
        "ACCESSD_DATABASE_URL": f"sqlite:///{tmp_path / 'never-created.sqlite3'}",
        "ACCESSD_SCHEDULER_RETRY_SECONDS": "20",
    }
    out = CliRunner().invoke(main, ["scheduler"], env=env)

    assert out.exit_code == 2
    assert "scheduler.lease_seconds: must be at least twice scheduler.retry_seconds" in out.output
    assert not (tmp_path / "never-created.sqlite3").exists()


def test_interval_jobs_fire_at_the_same_times_in_every_process_and_a_catch_up_does_not_shift_them():
    from accessd.jobs import Every

    at = dt.datetime(2026, 12, 4, 10, 2, 17, tzinfo=dt.UTC)
    started_now, started_later = Every(minutes=5), Every(minutes=5)
    assert started_now.get_next_fire_time(None, at) == dt.datetime(2026, 12, 4, 10, 5, tzinfo=dt.UTC)
    assert started_later.get_next_fire_time(None, at + dt.timedelta(minutes=1)) == dt.datetime(
        2026, 12, 4, 10, 5, tzinfo=dt.UTC
    )
    # a catch-up run at 10:02:17 is followed by the regular 10:05, not by 10:07:17
    assert started_now.get_next_fire_time(at, at) == dt.datetime(2026, 12, 4, 10, 5, tzinfo=dt.UTC)
