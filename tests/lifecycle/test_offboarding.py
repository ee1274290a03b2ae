"""The single offboarding routine: idempotent, complete, audited; and re-enabling returners."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from accessd import audit, clock
from accessd.lifecycle.offboarding import offboard, reenable
from accessd.models import Account, AuditEvent, LifecycleEvent, RoleGrant


def make_account(s, subject_id="alice") -> Account:
    acc = Account(subject_id=subject_id, display_name=subject_id.title(), status="active")
    acc.grants = [RoleGrant(role="therapist", source="directory"), RoleGrant(role="dpo", source="manual")]
    s.add(acc)
    s.flush()
    return acc


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def test_offboarding_disables_removes_every_grant_bumps_the_epoch_and_records_it(db):
    with db.session() as s:
        acc = make_account(s)
        before = acc.updated_at

        assert offboard(s, acc, reason="left the company", source="admin", actor="admin:bob") is True

        assert (acc.status, acc.status_reason) == ("disabled", "left the company")
        assert acc.disabled_at is not None and acc.session_epoch == 1 and acc.updated_at >= before
        assert count(s, RoleGrant) == 0, "manual grants are removed too"
        ev = s.scalars(select(LifecycleEvent)).one()
        assert (ev.kind, ev.source, ev.actor) == ("leaver", "admin", "admin:bob")
        rec = s.scalars(select(AuditEvent)).one()
        assert rec.action == "account.offboard" and rec.detail["removed_roles"] == [
            "dpo (manual)",
            "therapist (directory)",
        ]
        assert audit.verify(s) is None


def test_offboarding_twice_changes_nothing_and_emits_no_second_event(db):
    with db.session() as s:
        acc = make_account(s)
        offboard(s, acc, reason="left", source="hr", actor="hr:webhook")
        state = (acc.status, acc.status_reason, acc.disabled_at, acc.session_epoch, acc.updated_at)

        assert offboard(s, acc, reason="left again", source="directory", actor="system:sync") is False

        assert (acc.status, acc.status_reason, acc.disabled_at, acc.session_epoch, acc.updated_at) == state
        assert count(s, LifecycleEvent) == 1 and count(s, AuditEvent) == 1


def test_a_future_effective_date_only_schedules_the_departure(db):
    last_day = clock.today() + dt.timedelta(days=14)
    with db.session() as s:
        acc = make_account(s)

        assert offboard(s, acc, reason="resigned", source="hr", actor="hr", effective=last_day) is True
        assert offboard(s, acc, reason="resigned", source="hr", actor="hr", effective=last_day) is False

        assert (acc.status, acc.end_date, len(acc.grants), acc.session_epoch) == ("active", last_day, 2, 0)
        assert s.scalars(select(LifecycleEvent.kind)).all() == ["leaver_scheduled"]


def test_a_past_effective_date_disables_now_and_records_the_last_day(db):
    with db.session() as s:
        acc = make_account(s)
        offboard(s, acc, reason="contract ended", source="hr", actor="hr", effective=dt.date(2024, 1, 31))
        assert (acc.status, acc.end_date) == ("disabled", dt.date(2024, 1, 31))


def test_reenable_restores_only_the_given_directory_roles(db):
    with db.session() as s:
        acc = make_account(s)
        offboard(
            s,
            acc,
            reason="directory: locked",
            source="directory",
            actor="sync",
            effective=dt.date(2024, 1, 31),
        )

        assert (
            reenable(
                s, acc, reason="back", source="directory", actor="sync", roles=[("billing", "cn=billing,o=x")]
            )
            is True
        )
        assert reenable(s, acc, reason="back", source="directory", actor="sync") is False

        assert (acc.status, acc.status_reason, acc.disabled_at, acc.end_date) == ("active", None, None, None)
        assert {(g.role, g.source) for g in acc.grants} == {("billing", "directory")}
        assert acc.session_epoch == 2
