"""Sync runs as the admin UI shows and decides them (accessd.console.syncs), on SQLite and
PostgreSQL: the list, a run's report from its actions or its plan, rejecting without a
directory, approving through the same lifecycle function as the CLI against the real slapd,
and a directory that cannot be read becoming a message while the run stays held."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accessd.config import load_settings
from accessd.console import syncs
from accessd.errors import Conflict, DirectoryUnavailable, Invalid, NotFound
from accessd.lifecycle.sync_actions import Grant, Leave, SyncPlan
from accessd.models import AuditEvent, SyncAction, SyncRun
from tests.support import free_port


def _held(db, n_leavers: int = 3, **values) -> int:
    plan = SyncPlan(
        kind="full",
        actions=[
            Leave(account_id=i, subject_id=f"p{i}", reason="locked in the directory")
            for i in range(n_leavers)
        ]
        + [Grant(account_id=99, subject_id="p99", role="billing", source_ref="cn=billing", reason="member")],
        warnings=["p7 is locked after failed logins (not a departure)"],
    )
    with db.session() as s:
        run = SyncRun(
            kind="full",
            status="pending_approval",
            source="scheduler",
            seen=20,
            counts=plan.counts(),
            plan=plan.to_json(),
            reason="would disable 3 of 20 accounts; needs approval",
            **values,
        )
        s.add(run)
        s.flush()
        return run.id


def _applied(db, n: int) -> int:
    with db.session() as s:
        run = SyncRun(kind="incremental", status="succeeded", source="cli", seen=n, counts={"join": n})
        s.add(run)
        s.flush()
        for i in range(n):
            s.add(
                SyncAction(run_id=run.id, action="join", detail=f"join p{i}", reason="new in the directory")
            )
        s.add(
            SyncAction(run_id=run.id, action="revoke", detail="revoke billing from p0", reason="left group")
        )
        return run.id


def _status(db, run_id) -> str:
    with db.session() as s:
        return s.get(SyncRun, run_id).status


def test_runs_are_listed_newest_first_with_a_status_filter(db):
    applied = _applied(db, 2)
    held = _held(db)
    page = syncs.list_runs(db)
    assert [r.id for r in page.items] == [held, applied] and page.total == 2
    run = page.items[0]
    assert (run.kind, run.status, run.source, run.seen, run.held) == (
        "full",
        "pending_approval",
        "scheduler",
        20,
        True,
    )
    assert run.counts == {"grant": 1, "leave": 3} and run.started_at.tzinfo is not None
    assert [r.id for r in syncs.list_runs(db, status="succeeded").items] == [applied]
    assert syncs.held_count(db) == 1
    with pytest.raises(Invalid, match="status must be one of"):
        syncs.list_runs(db, status="nonsense")


def test_a_held_run_reports_its_plan_and_an_applied_run_its_actions_paged(db):
    held = syncs.run_report(db, _held(db))
    assert held.applied is False and held.kinds == {"leave": 3, "grant": 1}
    assert [(a.label, a.subject_id) for a in held.actions.items] == [
        ("leaver", "p0"),
        ("leaver", "p1"),
        ("leaver", "p2"),
        ("grant", "p99"),
    ]
    assert held.actions.items[0].detail == "disable p0: locked in the directory"
    assert held.warnings == ["p7 is locked after failed logins (not a departure)"]

    run_id = _applied(db, 60)
    first = syncs.run_report(db, run_id)
    second = syncs.run_report(db, run_id, page=2)
    assert first.applied and first.kinds == {"join": 60, "revoke": 1}
    assert (first.actions.total, len(first.actions.items), len(second.actions.items)) == (61, 50, 11)
    assert second.actions.items[-1].label == "revoke"
    only = syncs.run_report(db, run_id, kind="revoke")
    assert [a.detail for a in only.actions.items] == ["revoke billing from p0"]


@pytest.mark.parametrize("run_id", [0, -1, 10**30, 2**31])
def test_a_run_id_out_of_range_is_not_found_not_a_database_error(db, run_id):
    with pytest.raises(NotFound):
        syncs.run_report(db, run_id)
    with pytest.raises(NotFound):
        syncs.reject(db, run_id, "admin:alice")


def test_rejecting_needs_no_directory_records_who_and_cannot_happen_twice(db):
    run_id = _held(db)
    assert syncs.reject(db, run_id, "admin:alice") == f"Run {run_id} rejected; nothing of it was applied."
    with db.session() as s:
        run = s.get(SyncRun, run_id)
        assert (run.status, run.approved_by) == ("rejected", "admin:alice")
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (last.actor, last.action, last.target) == ("admin:alice", "sync.reject", f"sync_run:{run_id}")
    with pytest.raises(Conflict, match="not pending approval"):
        syncs.reject(db, run_id, "admin:alice")
    with pytest.raises(NotFound):
        syncs.reject(db, run_id + 100, "admin:alice")


def test_approving_without_a_configured_directory_says_so_and_keeps_the_run_held(db):
    run_id = _held(db)
    settings = load_settings(env={}, overrides={"database_url": db.url})
    with pytest.raises(Invalid, match="no directory is configured"):
        syncs.approve(db, settings, run_id, "admin:alice")
    assert _status(db, run_id) == "pending_approval"


def test_an_unreachable_directory_becomes_a_message_and_the_run_stays_held(db):
    run_id = _held(db)
    settings = load_settings(
        env={},
        overrides={
            "database_url": db.url,
            "ldap": {
                "url": f"ldap://127.0.0.1:{free_port()}",
                "user_base": "ou=people,dc=x",
                "timeout_seconds": 2,
            },
        },
    )
    with pytest.raises(DirectoryUnavailable, match=f"sync run {run_id} stays pending approval"):
        syncs.approve(db, settings, run_id, "admin:alice")
    assert _status(db, run_id) == "pending_approval"


def test_approving_a_held_run_applies_it_through_the_lifecycle_approval(people, sync, db, settings):
    for i in range(20):
        people.add(f"p{i}", employeeNumber=f"P{i:04d}")
    sync()
    for i in range(7):
        people.lock(people.dn(f"p{i}"))
    held = sync()
    assert held.status == "pending_approval"

    outcome = syncs.approve(db, settings, held.run_id, "admin:alice")

    assert outcome.applied == {"leave": 7} and outcome.held_run_id is None
    assert outcome.message == f"Run {held.run_id} approved and applied: leaver 7."
    report = syncs.run_report(db, held.run_id)
    assert report.applied and report.run.status == "succeeded" and report.run.approved_by == "admin:alice"
    assert report.kinds == {"leave": 7}
    with pytest.raises(Conflict, match="already applied"):
        syncs.approve(db, settings, held.run_id, "admin:alice")
