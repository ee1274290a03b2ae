"""Append-only, hash-chained audit records.

Each record's ``hash`` is SHA-256 over the previous record's hash and this record's content, so
any edit or deletion in the middle breaks the chain; ``verify(session)`` finds the first break.
Callers pass an ``actor`` (``cli:alice``, ``admin:bob``, ``system:sync``); never secrets.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.models import AuditEvent, utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, at: str, actor: str, action: str, target: str | None, detail: dict) -> str:
    payload = json.dumps([prev_hash, at, actor, action, target, detail], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    session: Session, actor: str, action: str, target: str | None = None, detail: dict | None = None
) -> AuditEvent:
    """Append one audit record chained to the newest one (same transaction as the change)."""
    detail = detail or {}
    last = session.scalars(
        select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1).with_for_update()
    ).first()
    prev = last.hash if last else GENESIS
    at = utcnow()
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
        prev_hash=prev,
        hash=_digest(prev, at.isoformat(), actor, action, target, detail),
    )
    session.add(event)
    session.flush()
    return event


def verify(session: Session) -> int | None:
    """Return the id of the first record whose chain is broken, or None if intact."""
    prev = GENESIS
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if ev.prev_hash != prev or ev.hash != _digest(
            prev, ev.at.isoformat(), ev.actor, ev.action, ev.target, ev.detail
        ):
            return ev.id
        prev = ev.hash
    return None
