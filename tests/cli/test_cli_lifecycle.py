"""The lifecycle commands: offboard at an exact moment, suspend, resume, cancel a departure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from accessd import accounts
from accessd.cli import main


@pytest.fixture
def run(loaded_db, employees):
    def invoke(*args):
        return CliRunner(env={"ACCESSD_DATABASE_URL": loaded_db.url}).invoke(main, list(args))

    return invoke


def status(db, subject="b.huber"):
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject)
        return acc.status, acc.departure_at, sorted(acc.roles)


def test_offboard_at_an_exact_moment_schedules_it_and_a_time_without_a_zone_is_refused(run, loaded_db):
    bad = run("offboard", "b.huber", "--reason", "resigned", "--on", "2030-01-31T17:00")
    assert bad.exit_code == 2 and "has no time zone" in bad.output
    assert status(loaded_db)[:2] == ("active", None)

    out = run("offboard", "b.huber", "--reason", "resigned", "--on", "2030-01-31T17:00+01:00")
    assert out.exit_code == 0, out.output
    assert out.output == (
        "b.huber: departure scheduled: last working day 2030-01-31; access ends at 2030-01-31T16:00:00Z\n"
    )
    assert status(loaded_db)[1].isoformat() == "2030-01-31T16:00:00"

    out = run("account", "cancel-departure", "b.huber", "--reason", "stays")
    assert out.output == "b.huber: departure cancelled\n"
    assert status(loaded_db)[:2] == ("active", None)


def test_suspend_keeps_the_grants_and_resume_restores_access(run, loaded_db):
    assert run("account", "suspend", "b.huber", "--reason", "parental leave").output == "b.huber: suspended\n"
    assert status(loaded_db) == ("suspended", None, ["billing"])
    again = run("account", "suspend", "b.huber", "--reason", "parental leave")
    assert again.output == "b.huber: not active (status suspended); nothing changed\n"
    shown = run("account", "show", "b.huber").output
    assert "status:      suspended -- parental leave (source cli" in shown
    assert run("account", "resume", "b.huber", "--reason", "back").output == "b.huber: resumed\n"
    assert status(loaded_db) == ("active", None, ["billing"])
    missing = run("account", "suspend", "b.huber")
    assert missing.exit_code == 2 and "reason" in missing.output
