"""One clock: every date comparison uses today in ``settings.timezone`` (accessd.clock).

The instants below are where a zone's date differs from the UTC date: at 2026-01-31 11:00 UTC it
is already 1 February on Kiritimati (UTC+14); at 2026-02-01 09:00 UTC it is still 31 January in
Pago Pago (UTC-11). An employee whose last working day is 31 January has left in the first case
and still works in the second -- for the engine, the scheduler's end-date sweep, the directory
sync and ``accessd offboard`` alike. (Before, offboarding used the UTC date and everything else
the host's date, and ``settings.timezone`` decided nothing: each case below got the UTC answer.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from accessd import accounts, create_app, jobs
from accessd.cli import main
from accessd.cli.base import Context
from accessd.config import LdapSettings, load_settings
from accessd.errors import Invalid
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.offboarding import offboard
from accessd.models import ApiClient
from accessd.pdp import tokens
from accessd.pdp.tokens import TokenCache
from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import load_policy_dir
from tests.support.api import evaluation
from tests.support.lifecycle import account

POLICIES = Path(__file__).resolve().parents[2] / "policies"
LAST_DAY = dt.date(2026, 1, 31)
# (zone, instant, whether LAST_DAY has passed in that zone at that instant)
WHEN = pytest.mark.parametrize(
    ("zone", "instant", "ended"),
    [
        ("Pacific/Kiritimati", dt.datetime(2026, 1, 31, 11, tzinfo=dt.UTC), True),  # UTC: still 31 Jan
        ("Pacific/Pago_Pago", dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC), False),  # UTC: already 1 Feb
    ],
    ids=["kiritimati-day-after", "pago-pago-last-day"],
)
# a client whose record is kept up to and including LAST_DAY (the README's billing example)
RECORD = {"clinic_region": "north", "retention_until": LAST_DAY.isoformat()}


def set_clock(clock, zone: str, instant: dt.datetime) -> None:
    clock.configure(zone)
    clock.set(now=instant)


# --- the clock itself ---------------------------------------------------------------------------


@WHEN
def test_today_is_the_date_in_the_configured_zone_not_the_utc_date(clock, zone, instant, ended):
    set_clock(clock, zone, instant)
    assert clock.today() == (LAST_DAY + dt.timedelta(days=1) if ended else LAST_DAY)
    assert clock.today() != instant.date()
    assert clock.now() == instant and str(clock.now().tzinfo) == zone


def test_set_today_and_advance_move_the_wall_clock_and_the_monotonic_clock(clock):
    clock.configure("Europe/Berlin")
    clock.set(today=LAST_DAY)
    assert clock.now() == dt.datetime(2026, 1, 31, 12, tzinfo=clock.zone())
    before = clock.monotonic()
    clock.advance(12 * 3600)
    assert clock.today() == dt.date(2026, 2, 1)
    assert clock.monotonic() - before >= 12 * 3600
    with pytest.raises(ValueError, match="aware"):
        clock.set(now=dt.datetime(2026, 1, 31))
    clock.reset()
    assert clock.zone() is dt.UTC
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_an_unknown_time_zone_is_a_configuration_error_naming_it(tmp_path):
    with pytest.raises(Invalid, match="^timezone: unknown time zone 'Mars/Base'$"):
        load_settings(env={"ACCESSD_TIMEZONE": "Mars/Base"})
    with pytest.raises(Invalid, match="timezone: unknown time zone 'Mars/Base'"):
        create_app({"timezone": "Mars/Base", "instance_path": str(tmp_path)})
    env = {"ACCESSD_TIMEZONE": "Mars/Base"}
    check = CliRunner().invoke(main, ["config", "check"], env=env)
    assert check.exit_code == 2 and "invalid: timezone: unknown time zone 'Mars/Base'" in check.stderr
    offboarding = CliRunner().invoke(main, ["offboard", "alice", "--reason", "left"], obj=Context(), env=env)
    assert offboarding.exit_code == 2
    assert offboarding.stderr == "error: timezone: unknown time zone 'Mars/Base'\n"
    assert load_settings(env={"ACCESSD_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"


# --- every date comparison agrees on the zone's date --------------------------------------------


@WHEN
def test_the_engine_ends_accounts_and_retention_by_the_zone_date(clock, zone, instant, ended):
    engine = Engine(load_policy_dir(POLICIES))
    set_clock(clock, zone, instant)
    leaver = Subject("b.huber", frozenset({"billing"}), end_date=LAST_DAY)
    stays = Subject("b.huber", frozenset({"billing"}))

    assert engine.decide(leaver, "customer", "read", "iban", "billing", {}).reason == (
        "account_ended" if ended else "allowed"
    )
    retained = engine.decide(stays, "customer", "read", "iban", "billing", RECORD)
    assert (retained.effect, retained.matched_rules) == (
        ("deny", ("retention-expired-read",)) if ended else ("allow", ("billing-iban-read",))
    )


@WHEN
def test_the_api_decides_by_the_date_in_settings_timezone(
    make_app, employees, token, clock, zone, instant, ended
):
    app = make_app(timezone=zone)  # the app factory configures the clock's zone
    clock.set(now=instant)
    body = evaluation("b.huber", field="iban", purpose="billing", props=RECORD, explain=True)
    answer = (
        app.test_client()
        .post("/access/v1/evaluation", json=body, headers={"Authorization": f"Bearer {token}"})
        .json
    )
    assert (answer["decision"], answer["context"]["reason"]) == (
        (False, "denied_by_rule") if ended else (True, "allowed")
    )


@WHEN
def test_the_end_date_sweep_and_the_offboarding_routine_use_the_zone_date(
    loaded_db, clock, zone, instant, ended
):
    db = loaded_db  # manual grants need the catalogue in force
    set_clock(clock, zone, instant)
    with db.session() as s:
        accounts.grant(s, accounts.upsert(s, subject_id="carol", end_date=LAST_DAY), "billing")
        accounts.grant(s, accounts.upsert(s, subject_id="dave"), "billing")
        assert accounts.role_holder_counts(s) == {"billing": 1 if ended else 2}

    assert jobs.offboard_due_departures(db) == (1 if ended else 0)
    with db.session() as s:
        dave = accounts.get_by_subject_id(s, "dave")
        assert offboard(s, dave, reason="resigned", source="cli", actor="test", effective=LAST_DAY)
    expected = "disabled" if ended else "active"
    assert (account(db, "carol").status, account(db, "dave").status) == (expected, expected)
    assert account(db, "dave").end_date == LAST_DAY


@WHEN
def test_accessd_offboard_on_the_last_day_schedules_and_after_it_disables(
    loaded_db, clock, zone, instant, ended
):
    db = loaded_db
    clock.set(now=instant)  # the command configures the zone from ACCESSD_TIMEZONE
    with db.session() as s:
        accounts.grant(s, accounts.upsert(s, subject_id="alice"), "billing")
    ctx = Context()
    result = CliRunner().invoke(
        main,
        ["offboard", "alice", "--reason", "resigned", "--on", LAST_DAY.isoformat()],
        obj=ctx,
        env={"ACCESSD_DATABASE_URL": db.url, "ACCESSD_TIMEZONE": zone},
    )
    ctx.db.dispose()
    assert result.exit_code == 0, result.output
    assert result.output == (
        "alice: offboarded\n"
        if ended
        else "alice: departure scheduled: last working day 2026-01-31; access ends after that day\n"
    )
    assert account(db, "alice").status == ("disabled" if ended else "active")


@WHEN
def test_the_directory_sync_plans_an_end_date_by_the_zone_date(people, sync, db, clock, zone, instant, ended):
    set_clock(clock, zone, instant)
    dn = people.add("alice")
    people.group("billing", dn)
    sync()
    people.modify(dn, employmentEndDate="20260131000000Z")

    plan = sync(dry_run=True)
    result = sync()

    assert [a.describe() for a in plan.plan.actions] == [
        "disable alice: directory: end date 2026-01-31 (employmentEndDate)"
        if ended
        else "schedule departure of alice on 2026-01-31: directory: end date 2026-01-31 (employmentEndDate)"
    ]
    assert result.counts == {"leave": 1}
    a = account(db, "alice")
    assert (a.status, a.end_date) == ("disabled" if ended else "active", LAST_DAY)


def test_an_active_directory_expiry_instant_ends_on_the_day_before_in_the_zone(clock):
    """accountExpires is an instant: "end of 31 January" in Pago Pago is 1 February 11:00 UTC."""
    clock.configure("Pacific/Pago_Pago")
    clock.set(now=dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
    expires = dt.datetime(2026, 2, 1, tzinfo=clock.zone())
    ticks = int((expires - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)).total_seconds() * 10_000_000)
    directory = Directory(LdapSettings(url="ldap://dc.test", user_base="dc=test", flavour="active_directory"))
    entry = directory.to_entry(
        {
            "dn": "CN=Jane Doe,DC=test",
            "attributes": {"sAMAccountName": ["jdoe"], "accountExpires": [str(ticks)]},
            "raw_attributes": {"objectGUID": [uuid.uuid4().bytes_le]},
        }
    )
    assert (entry.end_date, entry.disabled_reason) == (LAST_DAY, None)


# --- the caches' intervals run on the clock -----------------------------------------------------


def test_the_token_cache_re_reads_a_token_after_its_ttl_on_the_clock(db, clock):
    """The TTL backstop catches an edit made outside accessd (no change sequence)."""
    with db.session() as s:
        token = tokens.create(s, "crm", "decide")
    cache = TokenCache(db, ttl_seconds=30)
    assert cache.lookup(token).scope == "decide"
    with db.session() as s:
        s.execute(update(ApiClient).values(scope="admin"))
    assert cache.lookup(token).scope == "decide"
    clock.advance(31)
    assert cache.lookup(token).scope == "admin"
