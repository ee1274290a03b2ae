"""Directory sync against a real OpenLDAP: joiners, movers, leavers, safety and approval.

Every test here uses ``db`` and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from accessd import clock
from accessd.errors import Conflict
from accessd.lifecycle import sync as sync_service
from accessd.models import Account, LifecycleEvent, RoleGrant, SyncAction, SyncRun
from tests.support import free_port
from tests.support.ldap import PERMANENT_POLICY
from tests.support.lifecycle import account, make_settings, max_updated, table_counts


def roles(db, subject_id: str, source: str | None = None) -> set[str]:
    return {g.role for g in account(db, subject_id).grants if source is None or g.source == source}


def add_manual_grant(db, subject_id: str, role: str) -> None:
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == subject_id))
        s.add(RoleGrant(account_id=acc.id, role=role, source="manual", granted_by="test"))


def staff(people, n: int, prefix: str = "p") -> list[str]:
    return [people.add(f"{prefix}{i}", employeeNumber=f"{prefix.upper()}{i:04d}") for i in range(n)]


# --- joiners ------------------------------------------------------------------------------------


def test_first_full_sync_creates_accounts_with_profile_and_roles_from_groups(people, sync, db):
    alice = people.add(
        "alice",
        employeeNumber="E1",
        displayName="Alice Adams",
        departmentNumber="Care",
        title="Therapist",
        l="north",
        manager=people.dn("carol"),
    )
    bob = people.add("bob", employeeNumber="E2")
    people.group("therapists", alice)  # mapped by DN
    people.group("billing", bob, alice)  # mapped by cn
    people.group("unmapped", bob)

    result = sync()

    assert result.status == "succeeded", result.reason
    assert result.counts == {"join": 2}
    a = account(db, "alice")
    assert (a.employee_number, a.display_name, a.department, a.title, a.region, a.status) == (
        "E1",
        "Alice Adams",
        "Care",
        "Therapist",
        "north",
        "active",
    )
    assert a.directory_dn == alice and a.manager == people.dn("carol")
    assert len(a.directory_key) == 36  # entryUUID
    assert roles(db, "alice") == {"therapist", "billing"}
    assert roles(db, "bob") == {"billing"}
    with db.session() as s:
        assert s.scalar(select(SyncRun).where(SyncRun.id == result.run_id)).seen == 2
        kinds = sorted(e.kind for e in s.scalars(select(LifecycleEvent)))
        assert kinds == ["joiner", "joiner"]


def test_a_second_run_without_changes_writes_nothing(people, sync, db):
    staff(people, 4)
    people.group("billing", people.dn("p0"), people.dn("p1"))
    assert sync().counts == {"join": 4}
    before, stamp = table_counts(db), max_updated(db)

    result = sync()

    assert result.status == "succeeded" and result.counts == {}
    after = table_counts(db)
    assert after.pop("sync_run") == before.pop("sync_run") + 1
    assert after == before
    assert max_updated(db) == stamp


def test_dry_run_prints_the_plan_and_the_real_run_applies_exactly_that_plan(people, sync, db):
    staff(people, 3)
    people.group("billing", people.dn("p0"))
    sync()
    people.add("newbie")
    people.set_members(f"cn=billing,{people.groups}", people.dn("p1"), people.dn("newbie"))
    people.lock(people.dn("p2"))
    before = table_counts(db)

    dry = sync(dry_run=True)

    assert dry.dry_run and dry.status == "succeeded"
    after_dry = table_counts(db)
    assert after_dry.pop("sync_run") == before.pop("sync_run") + 1
    assert after_dry == before, "a dry run changes nothing"
    described = [sync_service.describe_action(a) for a in dry.plan.actions]
    assert any(d.startswith("join newbie") and "billing" in d for d in described)
    assert any(d.startswith("disable p2") and "locked by an administrator" in d for d in described)
    assert "grant billing to p1 (member of cn=billing," + people.groups + ")" in described
    assert any(d.startswith("revoke billing from p0") for d in described)

    real = sync()

    assert real.plan.actions == dry.plan.actions
    with db.session() as s:
        stored = [
            a.detail
            for a in s.scalars(
                select(SyncAction).where(SyncAction.run_id == real.run_id).order_by(SyncAction.id)
            )
        ]
    assert stored == described
    assert roles(db, "newbie") == {"billing"} and roles(db, "p1") == {"billing"} and roles(db, "p0") == set()
    assert account(db, "p2").status == "disabled"


# --- movers -------------------------------------------------------------------------------------


def test_a_mover_loses_stale_directory_roles_gains_new_ones_and_keeps_manual_grants(people, sync, db):
    alice = people.add("alice", departmentNumber="Care")
    therapists = people.group("therapists", alice)
    billing = people.group("billing", people.base)
    sync()
    add_manual_grant(db, "alice", "it_support")
    epoch, stamp = account(db, "alice").session_epoch, max_updated(db)

    people.set_members(therapists)
    people.set_members(billing, alice)
    people.modify(alice, departmentNumber="Billing", title="Clerk")
    result = sync()

    assert result.counts == {"grant": 1, "revoke": 1, "update": 1}
    assert roles(db, "alice", "directory") == {"billing"}
    assert roles(db, "alice", "manual") == {"it_support"}
    a = account(db, "alice")
    assert (a.department, a.title) == ("Billing", "Clerk")
    assert a.session_epoch == epoch + 1, "losing a role invalidates sessions"
    assert max_updated(db) > stamp


def test_a_renamed_and_moved_entry_stays_the_same_account(people, sync, db):
    old = people.add("alice", employeeNumber="E1")
    people.group("billing", old)
    sync()
    before = account(db, "alice")

    new = people.rename(old, "uid=alice.smith", new_ou="staff")
    people.set_members(f"cn=billing,{people.groups}", new)
    result = sync(settings=make_settings(people.server, people, db.url, user_base=people.base))

    assert result.status == "succeeded", result.reason
    assert result.counts == {"update": 1}
    after = account(db, "alice")
    assert after.id == before.id and after.directory_key == before.directory_key
    assert (after.directory_dn, after.username, after.status) == (new, "alice.smith", "active")
    assert roles(db, "alice") == {"billing"}


def test_a_deleted_and_recreated_uid_is_a_new_account_and_the_old_stays_disabled(people, sync, db):
    old = people.add("alice", employeeNumber="E1")
    people.group("billing", old)
    sync()
    old_account = account(db, "alice")

    people.delete(old)
    people.add("alice", employeeNumber="E1")
    result = sync()

    assert result.counts == {"join": 1, "leave": 1}
    gone = account(db, "alice")
    assert gone.id == old_account.id and gone.status == "disabled"
    assert gone.status_reason == "directory: gone from the directory"
    assert gone.employee_number is None, "the employee number moved to the new account"
    new = account(db, "alice#2")
    assert new.directory_key != old_account.directory_key
    assert (new.username, new.status, new.employee_number) == ("alice", "active", "E1")
    assert roles(db, "alice") == set()


# --- leavers ------------------------------------------------------------------------------------


def test_gone_from_the_directory_disables_the_account_and_removes_every_grant(people, sync, db):
    staff(people, 4)
    people.group("billing", people.dn("p3"))
    sync()
    add_manual_grant(db, "p3", "reception")
    epoch = account(db, "p3").session_epoch

    people.delete(people.dn("p3"))
    result = sync()

    assert result.counts == {"leave": 1}
    a = account(db, "p3")
    assert a.status == "disabled" and a.disabled_at is not None
    assert a.status_reason == "directory: gone from the directory"
    assert a.grants == [] and a.session_epoch == epoch + 1
    with db.session() as s:
        assert [
            e.kind for e in s.scalars(select(LifecycleEvent).where(LifecycleEvent.account_id == a.id))
        ] == ["joiner", "leaver"]
    assert sync().counts == {}, "an offboarded account is not offboarded again"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"pwdAccountLockedTime": "000001010000Z"},
            "directory: locked by an administrator (pwdAccountLockedTime)",
        ),
        (
            {"pwdAccountLockedTime": "20250101120000Z", "pwdPolicySubentry": PERMANENT_POLICY},
            "directory: account locked until unlocked (pwdAccountLockedTime 20250101120000Z, "
            "no pwdLockoutDuration)",
        ),
        ({"shadowExpire": "19000"}, "directory: account expires 2022-01-08 (shadowExpire)"),
        ({"employmentEndDate": "20240131000000Z"}, "directory: end date 2024-01-31 (employmentEndDate)"),
    ],
    ids=["admin-lock", "permanent-ppolicy-lock", "shadowExpire", "end-date"],
)
def test_each_departure_signal_disables_with_its_reason(people, sync, db, change, reason):
    dn = people.add("alice")
    people.group("billing", dn)
    staff(people, 3)
    sync()

    people.modify(dn, **change)
    result = sync()

    assert result.counts == {"leave": 1}
    a = account(db, "alice")
    assert (a.status, a.status_reason) == ("disabled", reason)
    assert a.grants == []


def test_a_future_end_date_schedules_the_departure_without_disabling(people, sync, db):
    dn = people.add("alice")
    people.group("billing", dn)
    sync()
    last_day = clock.today() + dt.timedelta(days=30)

    people.modify(dn, employmentEndDate=last_day.strftime("%Y%m%d000000Z"))
    result = sync()

    assert result.counts == {"leave": 1}
    a = account(db, "alice")
    assert (a.status, a.end_date) == ("active", last_day)
    assert roles(db, "alice") == {"billing"}
    assert sync().counts == {}, "the same end date is not scheduled twice"


def test_a_future_shadow_expire_schedules_the_day_before_as_last_working_day(people, sync, db):
    expires = clock.today() + dt.timedelta(days=10)
    people.add("alice", shadowExpire=str((expires - dt.date(1970, 1, 1)).days))
    sync()
    a = account(db, "alice")
    assert (a.status, a.end_date) == ("active", expires - dt.timedelta(days=1))


# --- returning employees ------------------------------------------------------------------------


def test_a_returning_employee_is_reenabled_with_directory_roles_only(people, sync, db):
    dn = people.add("alice")
    people.group("billing", dn)
    staff(people, 3)
    sync()
    add_manual_grant(db, "alice", "marketing")
    people.lock(dn)
    sync()
    assert account(db, "alice").status == "disabled"

    people.unlock(dn)
    result = sync()

    assert result.counts == {"reenable": 1}
    a = account(db, "alice")
    assert (a.status, a.status_reason, a.disabled_at) == ("active", None, None)
    assert roles(db, "alice") == {"billing"}, "manual grants are not restored"
    with db.session() as s:
        assert s.scalars(select(LifecycleEvent.kind).where(LifecycleEvent.account_id == a.id)).all() == [
            "joiner",
            "leaver",
            "rehire",
        ]


def test_an_account_disabled_by_an_admin_is_not_reenabled_by_the_sync(people, sync, db):
    from accessd.lifecycle.offboarding import offboard

    people.add("alice")
    sync()
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.subject_id == "alice"))
        offboard(s, acc, reason="admin: misconduct", source="admin", actor="admin:bob")

    assert sync().counts == {}
    assert account(db, "alice").status == "disabled"


# --- groups -------------------------------------------------------------------------------------


def test_nested_groups_grant_roles_and_a_cycle_is_reported_not_followed_forever(people, sync, db):
    alice, bob = people.add("alice"), people.add("bob")
    team = people.group("team-north", alice)
    people.group("therapists", team)  # team-north is nested in therapists
    leads = people.group("clinical-leads", bob)
    people.group("loop-a", leads, f"cn=loop-b,{people.groups}")  # loop-a and loop-b contain each other
    people.group("loop-b", f"cn=loop-a,{people.groups}")

    result = sync()

    assert result.status == "succeeded"
    assert roles(db, "alice") == {"therapist"}
    assert roles(db, "bob") == {"dpo"}
    assert any("cycle" in w for w in result.plan.warnings)


def test_nesting_deeper_than_the_limit_is_ignored_and_reported(people, db):
    from accessd.lifecycle.sync import run_sync

    alice = people.add("alice")
    inner = people.group("level3", alice)
    middle = people.group("level2", inner)
    people.group("therapists", middle)  # alice is 3 levels below therapists
    shallow = make_settings(people.server, people, db.url, ldap={"group_depth_limit": 1})

    result = run_sync(db, shallow, actor="test")

    assert roles(db, "alice") == set()
    assert any("deeper than 1" in w for w in result.plan.warnings)
    deep = make_settings(people.server, people, db.url, ldap={"group_depth_limit": 2})
    run_sync(db, deep, actor="test")
    assert roles(db, "alice") == {"therapist"}


# --- safety -------------------------------------------------------------------------------------


def _assert_failed_and_unchanged(db, result, before, fragment):
    assert result.status == "failed"
    assert fragment in result.reason
    after = table_counts(db)
    assert after.pop("sync_run") == before.pop("sync_run") + 1
    assert after == before
    with db.session() as s:
        run = s.get(SyncRun, result.run_id)
        assert run.status == "failed" and fragment in run.reason and run.finished_at is not None


def test_a_size_limit_fails_the_run_and_disables_nobody(people, sync, db, ldap_server):
    staff(people, 6)
    sync()
    before = table_counts(db)
    limited = make_settings(ldap_server, people, db.url, ldap={"bind_dn": ldap_server.bind_dn("limited")})

    result = sync(settings=limited)

    _assert_failed_and_unchanged(db, result, before, "size limit")
    assert {account(db, f"p{i}").status for i in range(6)} == {"active"}


def test_a_wrong_base_dn_fails_the_run(people, sync, db, ldap_server):
    staff(people, 2)
    sync()
    before = table_counts(db)
    wrong = make_settings(ldap_server, people, db.url, user_base=f"ou=nowhere,{people.base}")

    _assert_failed_and_unchanged(db, sync(settings=wrong), before, "does not exist")


def test_a_bind_that_sees_no_entries_fails_instead_of_disabling_everyone(people, sync, db, ldap_server):
    staff(people, 3)
    sync()
    before = table_counts(db)
    blind = make_settings(ldap_server, people, db.url, ldap={"bind_dn": ldap_server.bind_dn("blind")})

    _assert_failed_and_unchanged(db, sync(settings=blind), before, "returned no people")


def test_a_wrong_password_fails_with_the_reason_and_never_shows_the_password(
    people, sync, db, ldap_server, caplog
):
    caplog.set_level("DEBUG")
    secret = "WrongButSecret-9431"
    bad = make_settings(ldap_server, people, db.url, ldap={"bind_password": secret})

    result = sync(settings=bad)

    assert result.status == "failed" and "invalidCredentials" in result.reason
    assert f"as {ldap_server.bind_dn('sync')}" in result.reason
    assert secret not in result.reason and secret not in caplog.text
    with db.session() as s:
        assert secret not in (s.get(SyncRun, result.run_id).reason or "")


def test_seeing_far_fewer_people_than_the_last_good_run_fails(people, sync, db):
    staff(people, 10)
    sync()
    for i in range(6):
        people.delete(people.dn(f"p{i}"))
    before = table_counts(db)

    _assert_failed_and_unchanged(db, sync(), before, "fewer than 50% of the 10")


def test_an_unreachable_directory_fails_the_run(people, sync, db, ldap_server):
    closed_port = free_port()
    staff(people, 1)
    sync()
    before = table_counts(db)
    down = make_settings(
        ldap_server, people, db.url, ldap={"url": f"ldap://127.0.0.1:{closed_port}", "timeout_seconds": 2}
    )

    _assert_failed_and_unchanged(db, sync(settings=down), before, "cannot reach the directory")


# --- threshold and approval ---------------------------------------------------------------------


def test_a_mass_departure_waits_for_approval_and_is_applied_exactly_once(people, sync, db, settings):
    staff(people, 20)
    sync()
    for i in range(7):
        people.lock(people.dn(f"p{i}"))
    before = table_counts(db)

    pending = sync()

    assert pending.status == "pending_approval"
    assert "7 of 20" in pending.reason and f"accessd sync approve {pending.run_id}" in pending.reason
    after = table_counts(db)
    assert after.pop("sync_run") == before.pop("sync_run") + 1
    assert after == before, "nothing is applied before approval"

    applied = sync_service.approve(db, settings, pending.run_id, "cli:admin").applied

    assert applied == {"leave": 7}
    assert {account(db, f"p{i}").status for i in range(7)} == {"disabled"}
    with db.session() as s:
        run = s.get(SyncRun, pending.run_id)
        assert (run.status, run.approved_by) == ("succeeded", "cli:admin") and run.applied_at
    with pytest.raises(Conflict, match="already applied"):
        sync_service.approve(db, settings, pending.run_id, "cli:admin")


def test_a_small_change_below_the_threshold_applies_without_approval(people, sync, db):
    staff(people, 20)
    sync()
    for i in range(5):  # exactly the limit: not "more than 5"
        people.lock(people.dn(f"p{i}"))
    assert sync().status == "succeeded"


def test_a_rejected_run_is_never_applied(people, sync, db, settings):
    staff(people, 10)
    sync()
    for i in range(4):
        people.delete(people.dn(f"p{i}"))
    for i in range(4, 6):
        people.lock(people.dn(f"p{i}"))
    pending = sync()
    assert pending.status == "pending_approval"

    sync_service.reject(db, pending.run_id, "cli:admin")

    assert {account(db, f"p{i}").status for i in range(6)} == {"active"}
    with pytest.raises(Conflict, match="not pending approval"):
        sync_service.approve(db, settings, pending.run_id, "cli:admin")


# --- incremental --------------------------------------------------------------------------------


def test_an_incremental_run_reads_only_changed_entries(people, sync, db):
    staff(people, 6)
    billing = people.group("billing", people.dn("p0"))
    sync()

    people.lock(people.dn("p1"))
    people.modify(people.dn("p2"), title="Lead")
    people.delete(people.dn("p3"))
    result = sync("incremental")

    assert result.status == "succeeded"
    assert result.seen == 2
    assert result.counts == {"leave": 1, "update": 1}
    assert account(db, "p1").status == "disabled" and account(db, "p2").title == "Lead"
    assert account(db, "p3").status == "active", "deletions wait for the full run"

    people.set_members(billing, people.dn("p4"))
    result = sync("incremental")
    assert result.counts == {"grant": 1, "revoke": 1}
    assert roles(db, "p4") == {"billing"} and roles(db, "p0") == set()

    assert sync().counts == {"leave": 1}
    assert account(db, "p3").status == "disabled"


def test_an_incremental_run_picks_up_joiners_with_their_groups(people, sync, db):
    staff(people, 2)
    sync()
    new = people.add("newbie")
    people.group("billing", new)

    result = sync("incremental")

    assert result.counts == {"join": 1}
    assert roles(db, "newbie") == {"billing"}
    assert sync("incremental").counts == {}
