"""A sync you can leave running (issue 8), against the real slapd, on SQLite and PostgreSQL:
who disabled an account decides who may lift it; changes made during a read are not lost;
approval re-checks the directory; lockouts after failed logins are not departures; subject
attributes of the policy catalogue come from the directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import ldap3
import pytest
from sqlalchemy import select

from accessd.config import LdapSettings
from accessd.errors import Conflict
from accessd.lifecycle import sync as sync_service
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.directory_mapping import clock_mark
from accessd.lifecycle.offboarding import offboard, reenable
from accessd.models import Account, LifecycleEvent, RoleGrant, SyncRun
from accessd.pdp import revisions
from tests.support.ldap import PERMANENT_POLICY, SUFFIX
from tests.support.lifecycle import account, make_settings

ROOT = Path(__file__).resolve().parents[2]


def add_manual_grant(db, subject_id: str, role: str) -> None:
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == subject_id))
        s.add(RoleGrant(account_id=acc.id, role=role, source="manual", granted_by="test"))


def staff(people, n: int) -> list[str]:
    return [people.add(f"p{i}", employeeNumber=f"P{i:04d}") for i in range(n)]


# --- 1. who disabled an account decides who may lift it ------------------------------------------


def test_offboarding_an_account_the_directory_disabled_takes_it_over_and_unlocking_does_not_lift_it(
    people, sync, db, cli
):
    alice = people.add("alice")
    staff(people, 3)
    sync()
    people.lock(alice)
    sync()
    assert (account(db, "alice").status, account(db, "alice").disabled_by) == ("disabled", "directory")

    out = cli("offboard", "alice", "--reason", "dismissed")

    assert out.exit_code == 0, out.output
    assert "alice: offboarded: the directory had disabled the account" in out.output
    assert "now recorded as disabled by cli" in out.output
    a = account(db, "alice")
    assert (a.status, a.disabled_by, a.status_reason) == ("disabled", "cli", "dismissed")
    people.unlock(alice)
    assert sync().counts == {}
    assert account(db, "alice").status == "disabled", "the directory lifts only what it did"
    with db.session() as s:
        kinds = s.scalars(
            select(LifecycleEvent.kind).where(LifecycleEvent.account_id == a.id).order_by(LifecycleEvent.id)
        ).all()
    assert kinds == ["joiner", "leaver", "leaver_confirmed"], "no second leaver notification"


def test_a_reason_that_reads_like_the_directorys_does_not_let_the_sync_lift_it(people, sync, db, cli):
    people.add("alice")
    sync()

    cli("offboard", "alice", "--reason", "directory: removed by HR")
    result = sync()

    assert result.counts == {}
    a = account(db, "alice")
    assert (a.status, a.disabled_by) == ("disabled", "cli")


def test_reenable_by_the_directory_leaves_an_account_another_source_disabled(db):
    with db.session() as s:
        acc = Account(subject_id="alice", display_name="Alice", status="active")
        s.add(acc)
        s.flush()
        offboard(s, acc, reason="leave of absence", source="hr", actor="hr:webhook")

        assert reenable(s, acc, reason="back", source="directory", actor="system:sync") is False
        assert (acc.status, acc.disabled_by) == ("disabled", "hr")
        assert reenable(s, acc, reason="returned", source="cli", actor="cli:admin") is True
        assert (acc.status, acc.disabled_by) == ("active", None)


# --- 2. incremental runs miss nothing changed during a read --------------------------------------


def test_a_change_committed_to_a_page_already_read_is_seen_by_the_next_incremental_run(people, db):
    dns = staff(people, 30)
    settings = make_settings(
        people.server, people, db.url, ldap={"page_size": 10}, sync={"progress_every": 1}
    )
    assert sync_service.run_sync(db, settings, actor="test").counts == {"join": 30}

    def change_during_page_two(count: int) -> None:
        if count == 15:
            people.lock(dns[0])  # on page 1, already read
            people.modify(dns[25], title="Lead")  # on page 3, read after this change

    during = sync_service.run_sync(db, settings, actor="test", progress=change_during_page_two)
    assert during.counts == {"update": 1}, "the later page shows the title; the lock came too late"
    assert account(db, "p0").status == "active"

    after = sync_service.run_sync(db, settings, kind="incremental", actor="test")

    assert after.counts == {"leave": 1}, "the lock is read; the title, read again, changes nothing"
    assert account(db, "p0").status == "disabled" and account(db, "p25").title == "Lead"
    assert sync_service.run_sync(db, settings, kind="incremental", actor="test").counts == {}


def test_the_high_water_mark_is_the_suffix_context_csn_taken_before_the_read(people, sync, db):
    staff(people, 3)
    conn = people.conn
    conn.search(SUFFIX, "(objectClass=*)", ldap3.BASE, attributes=["contextCSN"])
    before = conn.response[0]["attributes"]["contextCSN"][0]

    result = sync()

    with db.session() as s:
        mark = s.get(SyncRun, result.run_id).high_water_mark
    assert mark == before, "nothing changed during the read: the mark is the contextCSN it began at"
    assert not any("contextCSN" in w for w in result.plan.warnings)


def test_a_clock_mark_is_a_valid_csn_that_finds_recent_changes(people, settings):
    people.add("alice")
    with Directory(settings.ldap) as d:
        recent = [e.profile["username"] for e in d.users(since=clock_mark("entryCSN"))]
    assert recent == ["alice"]


# --- 3. approval re-checks the world -------------------------------------------------------------


def _hold_seven(people, sync, db):
    staff(people, 20)
    sync()
    add_manual_grant(db, "p0", "it_support")
    for i in range(7):
        people.lock(people.dn(f"p{i}"))
    held = sync()
    assert held.status == "pending_approval"
    return held


def test_approving_after_the_people_were_unlocked_disables_nobody_and_keeps_manual_grants(
    people, sync, db, settings
):
    held = _hold_seven(people, sync, db)
    for i in range(7):
        people.unlock(people.dn(f"p{i}"))

    result = sync_service.approve(db, settings, held.run_id, "cli:admin")

    assert result.applied == {} and result.held_run_id is None
    assert len(result.dropped) == 7 and result.dropped[0].startswith("disable p0")
    assert {account(db, f"p{i}").status for i in range(20)} == {"active"}
    assert {g.role for g in account(db, "p0").grants} == {"it_support"}
    with db.session() as s:
        run = s.get(SyncRun, held.run_id)
        assert run.status == "succeeded" and "7 approved changes no longer true" in run.reason


def test_approval_applies_only_the_approved_departures_that_are_still_true(people, sync, db, settings):
    held = _hold_seven(people, sync, db)
    people.unlock(people.dn("p6"))

    result = sync_service.approve(db, settings, held.run_id, "cli:admin")

    assert result.applied == {"leave": 6}
    assert [d.split(":")[0] for d in result.dropped] == ["disable p6"]
    assert account(db, "p6").status == "active" and account(db, "p5").status == "disabled"


def test_a_held_run_older_than_a_newer_completed_run_cannot_be_approved(people, sync, db, settings):
    held = _hold_seven(people, sync, db)
    for i in range(7):
        people.unlock(people.dn(f"p{i}"))
    newer = sync()
    assert newer.status == "succeeded" and newer.counts == {}

    with pytest.raises(Conflict, match=f"run {held.run_id} cannot be approved"):
        sync_service.approve(db, settings, held.run_id, "cli:admin")

    assert {account(db, f"p{i}").status for i in range(7)} == {"active"}
    assert {g.role for g in account(db, "p0").grants} == {"it_support"}
    with db.session() as s:
        assert s.get(SyncRun, held.run_id).status == "superseded"


def test_a_plan_that_grew_beyond_the_approval_is_held_again_for_a_new_approval(people, sync, db, settings):
    held = _hold_seven(people, sync, db)
    for i in range(7, 10):
        people.lock(people.dn(f"p{i}"))

    result = sync_service.approve(db, settings, held.run_id, "cli:admin")

    assert result.applied == {} and result.held_run_id is not None
    assert {account(db, f"p{i}").status for i in range(10)} == {"active"}, "nothing applied"
    with db.session() as s:
        new = s.get(SyncRun, result.held_run_id)
        assert (new.status, new.source, new.counts) == ("pending_approval", "approval", {"leave": 10})
        assert s.get(SyncRun, held.run_id).status == "superseded"
    with pytest.raises(Conflict, match="cannot be approved"):
        sync_service.approve(db, settings, held.run_id, "cli:admin")

    assert sync_service.approve(db, settings, result.held_run_id, "cli:admin").applied == {"leave": 10}


# --- 5. a lockout after failed logins is not a departure -----------------------------------------


def fail_binds(server, dn: str, times: int = 3) -> None:
    for _ in range(times):
        conn = ldap3.Connection(ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE), dn, "wrong")
        assert not conn.bind()


def locked_time(people, dn: str) -> str | None:
    people.conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime"])
    values = people.conn.response[0]["attributes"].get("pwdAccountLockedTime")
    return values[0] if values else None


def test_a_lockout_after_failed_logins_changes_nothing_and_is_shown_as_a_warning(people, sync, db):
    alice = people.add("alice", userPassword="Right-Pa55word")
    people.group("billing", alice)
    staff(people, 3)
    sync()
    add_manual_grant(db, "alice", "it_support")

    fail_binds(people.server, alice)
    assert locked_time(people, alice), "ppolicy locked the entry"
    result = sync()

    assert result.counts == {}
    assert any(w.startswith(f"{alice}: locked out after failed logins until") for w in result.plan.warnings)
    a = account(db, "alice")
    assert a.status == "active" and {g.role for g in a.grants} == {"billing", "it_support"}
    assert sync("incremental").counts == {}


def test_an_expired_lockout_is_no_lock_at_all(people, sync, db):
    alice = people.add("alice")
    staff(people, 3)
    sync()

    people.lock(alice, "20250101120000Z")  # the default policy's lockout ended long ago
    result = sync()

    assert result.counts == {} and account(db, "alice").status == "active"


def test_a_lockout_under_a_policy_without_lockout_duration_is_a_departure(people, sync, db):
    alice = people.add("alice", userPassword="Right-Pa55word", pwdPolicySubentry=PERMANENT_POLICY)
    staff(people, 3)
    sync()

    fail_binds(people.server, alice)
    result = sync()

    assert result.counts == {"leave": 1}
    a = account(db, "alice")
    assert a.status == "disabled" and "no pwdLockoutDuration" in a.status_reason


def test_a_timestamped_lock_without_a_known_policy_is_an_admins_lock_with_a_warning(people, db):
    alice = people.add("alice")
    unknown = make_settings(people.server, people, db.url, ldap={"password_policy_dn": ""})
    sync_service.run_sync(db, unknown, actor="test")

    people.lock(alice, "20990101120000Z")
    result = sync_service.run_sync(db, unknown, actor="test")

    assert result.counts == {"leave": 1}
    assert any("no known password policy" in w and "password_policy_dn" in w for w in result.plan.warnings)


def test_active_directory_lockout_time_is_a_warning_and_only_account_disable_departs():
    ad = Directory(LdapSettings(url="ldap://dc.test", user_base="dc=test", flavour="active_directory"))
    attrs = {"sAMAccountName": ["jdoe"], "userAccountControl": ["512"], "lockoutTime": ["133800000000000000"]}
    item = {"dn": "CN=J,DC=test", "attributes": attrs, "raw_attributes": {"objectGUID": [bytes(range(16))]}}

    locked_out = ad.to_entry(item)

    assert locked_out.disabled_reason is None and "locked out since" in locked_out.warning
    attrs["userAccountControl"] = ["514"]
    assert "ACCOUNTDISABLE" in ad.to_entry(item).disabled_reason


# --- 7.7 subject attributes of the catalogue come from the directory -----------------------------


@pytest.fixture
def catalogue_with_cost_centre(db, tmp_path):
    """The demo policy with two more subject attributes, loaded as the policy in force."""
    policy = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policy)
    path = policy / "catalogue.yaml"
    text = path.read_text()
    extra = "".join(
        f'  {name}: {{type: string, default: ""}}\n'
        for name in ("cost_centre", "employee_type")
        if f"\n  {name}:" not in text
    )
    path.write_text(text.replace("subject_attributes:\n", "subject_attributes:\n" + extra, 1))
    with db.session() as s:
        revisions.load_dir(s, policy, "test")


def test_catalogue_subject_attributes_are_kept_equal_to_their_mapped_ldap_attributes(
    people, db, catalogue_with_cost_centre
):
    settings = make_settings(
        people.server,
        people,
        db.url,
        ldap={
            "attributes": {
                "cost_centre": "departmentNumber",
                "employee_type": "employeeType",
                "shoe_size": "description",
            }
        },
    )
    people.add("alice", departmentNumber="CC-7", employeeType="contractor")

    first = sync_service.run_sync(db, settings, actor="test")

    assert account(db, "alice").attributes == {"cost_centre": "CC-7", "employee_type": "contractor"}
    assert any("shoe_size is neither a mapping key nor a subject attribute" in w for w in first.plan.warnings)
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == "alice"))
        acc.attributes = {**acc.attributes, "badge": "B-1"}  # set outside the directory: kept

    people.modify(people.dn("alice"), departmentNumber="CC-9", employeeType=None)
    result = sync_service.run_sync(db, settings, actor="test")

    assert result.counts == {"update": 1}
    described = sync_service.describe_action(result.plan.actions[0])
    assert "attributes.cost_centre: 'CC-7' -> 'CC-9'" in described
    assert "attributes.employee_type: 'contractor' -> None" in described
    assert account(db, "alice").attributes == {"cost_centre": "CC-9", "badge": "B-1"}
    assert sync_service.run_sync(db, settings, actor="test").counts == {}


def test_the_migration_records_who_disabled_the_accounts_already_disabled(empty_database_url):
    from alembic import command
    from sqlalchemy import text

    from accessd.db import Database, alembic_config

    db = Database(empty_database_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        for n, (subject, status, reason) in enumerate(
            [
                ("locked", "disabled", "directory: locked by an administrator (pwdAccountLockedTime)"),
                ("dismissed", "disabled", "dismissed"),
                ("by-hr", "disabled", "directory: removed by HR"),
                ("active", "active", None),
            ],
            start=1,
        ):
            conn.execute(
                text(
                    "INSERT INTO account (id, subject_id, display_name, status, status_reason, session_epoch,"
                    " created_at, updated_at) VALUES (:id, :s, :s, :status, :reason, 0, :now, :now)"
                ),
                {"id": n, "s": subject, "status": status, "reason": reason, "now": "2026-01-01 00:00:00"},
            )
        conn.execute(
            text(
                "INSERT INTO lifecycle_event (account_id, kind, reason, source, actor, at)"
                " VALUES (3, 'leaver', 'directory: removed by HR', 'hr', 'hr:webhook', '2026-01-02 00:00:00')"
            )
        )
    try:
        db.upgrade()
        with db.session() as s:
            by = dict(s.execute(select(Account.subject_id, Account.disabled_by)).all())
    finally:
        db.dispose()

    assert by == {"locked": "directory", "dismissed": "admin", "by-hr": "hr", "active": None}
