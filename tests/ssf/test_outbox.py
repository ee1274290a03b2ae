"""The outbox written in the transaction of the change: nothing without a stream, and never a
SET signed with a key the transaction did not keep."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from accessd import accounts, jobs
from accessd.lifecycle.offboarding import offboard
from accessd.models import Account, SsfKey, SsfOutbox, utcnow
from accessd.ssf import streams


def _people(db, n: int) -> None:
    with db.session() as s:
        for i in range(n):
            accounts.upsert(s, subject_id=f"p{i}", username=f"p{i}", email=f"p{i}@x.example")


def _stream(db) -> None:
    streams.add_push_stream(
        db,
        "http://127.0.0.1:9/events",
        ["session-revoked"],
        audience=None,
        fmt="email",
        authorization=None,
        actor="test",
    )


def test_without_a_stream_a_departure_writes_no_event_and_makes_no_key(db):
    _people(db, 1)
    with db.session() as s:
        assert offboard(s, s.scalar(select(Account)), reason="x", source="cli", actor="test")
    with db.session() as s:
        assert s.query(SsfOutbox).count() == 0 and s.query(SsfKey).count() == 0


def test_a_change_rolled_back_leaves_no_event(db):
    _people(db, 1)
    _stream(db)
    with pytest.raises(RuntimeError), db.session() as s:
        offboard(s, s.scalar(select(Account)), reason="x", source="cli", actor="test")
        raise RuntimeError("the change fails after the event was written")
    with db.session() as s:
        assert s.query(SsfOutbox).count() == 0


def test_a_key_made_in_a_savepoint_that_was_rolled_back_never_signs(db):
    """A SCIM Bulk request runs each operation in a savepoint: the first may make the signing
    key and fail; the next must not sign with that vanished key."""
    _people(db, 2)
    _stream(db)
    with db.session() as s:
        first, second = s.scalars(select(Account).order_by(Account.id)).all()
        with pytest.raises(RuntimeError), s.begin_nested():
            offboard(s, first, reason="x", source="scim", actor="test")
            raise RuntimeError("this operation fails")
        offboard(s, second, reason="x", source="scim", actor="test")
    with db.session() as s:
        kids = set(s.scalars(select(SsfKey.kid)))
        (token,) = s.scalars(select(SsfOutbox.token))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] in kids


def test_the_retention_job_deletes_old_delivered_and_failed_events_never_pending_ones(db, clock):
    """Three people leave; their events are delivered, failed for good, and still pending. After
    the retention, the job deletes the first two kinds and keeps the pending one."""
    _people(db, 3)
    _stream(db)
    with db.session() as s:
        for account in s.scalars(select(Account).order_by(Account.id)):
            assert offboard(s, account, reason="x", source="cli", actor="test")
    with db.session() as s:
        rows = s.scalars(select(SsfOutbox).order_by(SsfOutbox.id)).all()
        assert len(rows) == 3
        rows[0].status, rows[0].delivered_at = "delivered", utcnow()
        rows[1].status = "failed"
    assert jobs.purge_event_outbox(db, 30) == 0  # nothing is old yet

    clock.advance(31 * 24 * 3600)
    assert jobs.purge_event_outbox(db, 30) == 2
    with db.session() as s:
        assert [r.status for r in s.scalars(select(SsfOutbox))] == ["pending"]
