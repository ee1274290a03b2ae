"""Audit records are hash-chained: tampering with any record is detected."""

from sqlalchemy import update

from accessd import audit
from accessd.models import AuditEvent


def test_chain_verifies_and_detects_an_edited_record(db):
    with db.session() as s:
        for i in range(3):
            audit.record(s, "cli:test", "account.disable", f"account:{i}", {"reason": "left"})
    with db.session() as s:
        assert audit.verify(s) is None
        second = sorted(e.id for e in s.query(AuditEvent))[1]
        s.execute(update(AuditEvent).where(AuditEvent.id == second).values(actor="cli:someone-else"))
    with db.session() as s:
        assert audit.verify(s) == second


def test_deleting_a_record_breaks_the_chain(db):
    with db.session() as s:
        ids = [audit.record(s, "cli:test", "role.grant", "account:1").id for _ in range(3)]
    with db.session() as s:
        s.delete(s.get(AuditEvent, ids[1]))
    with db.session() as s:
        assert audit.verify(s) == ids[2]
