"""The outbox: one signed SET per (change, event type, interested stream), written in the
transaction of the change (so an event exists exactly when its change does).

:func:`enqueue` is called by :func:`accessd.lifecycle.signals.emit` for every lifecycle change.
For each event of the change (``signals.CHANGES``, in that order) and each stream that is enabled
or paused, delivers that event type, and has not had the person removed (``default_subjects``
ALL), it signs a SET (:mod:`accessd.ssf.events`, :mod:`accessd.ssf.keys`) and adds a pending
row. Rows get ascending ids in the order they are written, which is the order a receiver gets
them in. No stream, no row, no signing, no cost beyond one query per transaction.

The issuer (``iss``) is ``public_url`` as the writing process's settings name it: every
process (web workers, scheduler, CLI) must see the same ``public_url`` (docs/ssf.md).

After a transaction that wrote rows commits, this process's deliverers
(:mod:`accessd.ssf.delivery`) are woken, so a push goes out right away; other processes find the
rows within ``ssf.outbox_poll_seconds``.

For administrators: :func:`deliveries` lists rows (`accessd events`), :func:`retry` puts failed
ones back to pending (`accessd events retry`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from accessd import audit
from accessd.models import Account, SsfOutbox, SsfStream, SsfStreamSubject, utcnow
from accessd.ssf import delivery, keys
from accessd.ssf import events as ev

STATUSES = ("pending", "delivered", "failed")
_CONTEXT = "accessd.ssf.context"  # session.info: streams, issuer and key of this transaction
_WAKE = "accessd.ssf.wake"  # session.info: wake the deliverers after commit


class _Stream(NamedTuple):
    id: str
    audience: list
    events_delivered: list
    subject_format: str


class _Context(NamedTuple):
    streams: list[_Stream]
    issuer: str | None = None
    kid: str | None = None
    key: object = None


def enqueue(session: Session, account: Account, change: str, detail: dict) -> None:
    """Write the outbox rows for ``change`` of ``account`` (no stream: nothing to write).

    ``detail`` may carry ``reason`` (becomes ``reason_admin``), ``source`` (CAEP's
    ``initiating_entity``) and ``roles`` (``token-claims-change``; default: ``account.roles``).
    """
    from accessd.lifecycle.signals import CHANGES  # signals imports this module

    ctx = _context(session)
    names = [n for n in CHANGES[change] if any(ev.EVENT_TYPES[n] in s.events_delivered for s in ctx.streams)]
    if not names:
        return
    excluded = set(
        session.scalars(
            select(SsfStreamSubject.stream_id).where(SsfStreamSubject.subject_id == account.subject_id)
        )
    )
    ctx = _signing(session, ctx)
    when = _when()  # one txn for every event of this change (SSF 1.0 §4.1.9)
    reason, source, roles = detail.get("reason"), detail.get("source"), detail.get("roles", account.roles)
    wrote = False
    for name in names:
        event = ev.EVENT_TYPES[name]
        payload = ev.event_payload(name, at=when.at, reason=reason, source=source, roles=roles)
        for stream in ctx.streams:
            if event not in stream.events_delivered or stream.id in excluded:
                continue
            sub_id = ev.subject_id(
                stream.subject_format, issuer=ctx.issuer, subject=account.subject_id, email=account.email
            )
            _add(session, ctx, when, stream, account.subject_id, event, sub_id, payload)
            wrote = True
    if wrote:
        session.flush()
        session.info[_WAKE] = True


def enqueue_verification(session: Session, stream: SsfStream, state: str | None, issuer: str) -> None:
    """A verification SET for ``stream`` (SSF 1.0 §8.1.4.1): ``sub_id`` is the stream itself."""
    kid, key = keys.signing_key(session)
    ctx = _Context([], issuer, kid, key)
    payload = {"state": state} if state is not None else {}
    sub_id = {"format": "opaque", "id": stream.id}
    _add(session, ctx, _when(), stream, f"stream:{stream.id}", ev.VERIFICATION, sub_id, payload)
    session.flush()
    session.info[_WAKE] = True


def wake_after_commit(session: Session) -> None:
    """Wake this process's deliverers when ``session`` commits (a stream became deliverable)."""
    session.info[_WAKE] = True


class _When(NamedTuple):
    now: dt.datetime  # naive UTC, as stored
    at: int  # the same moment in seconds since the epoch (iat, event_timestamp)
    txn: str


def _when() -> _When:
    now = utcnow()
    return _When(now, int(now.replace(tzinfo=dt.UTC).timestamp()), uuid.uuid4().hex)


def _add(session: Session, ctx: _Context, when: _When, stream, subject: str, event: str, sub_id, payload):
    """Sign one SET for ``stream`` (anything with ``id`` and ``audience``) and queue it."""
    jti = uuid.uuid4().hex
    claims = ev.claims(
        issuer=ctx.issuer,
        audience=stream.audience,
        jti=jti,
        iat=when.at,
        txn=when.txn,
        sub_id=sub_id,
        event=event,
        payload=payload,
    )
    session.add(
        SsfOutbox(
            stream_id=stream.id,
            jti=jti,
            subject_id=subject,
            event_type=event,
            token=keys.sign(ctx.kid, ctx.key, claims),
            status="pending",
            attempts=0,
            next_attempt_at=when.now,
            created_at=when.now,
        )
    )


def _context(session: Session) -> _Context:
    """The streams that queue events (enabled or paused), read once per transaction."""
    ctx = session.info.get(_CONTEXT)
    if ctx is None:
        rows = session.execute(
            select(SsfStream.id, SsfStream.audience, SsfStream.events_delivered, SsfStream.subject_format)
            .where(SsfStream.status.in_(("enabled", "paused")))
            .order_by(SsfStream.created_at, SsfStream.id)
        )
        ctx = session.info[_CONTEXT] = _Context([_Stream(*r) for r in rows])
    return ctx


def _signing(session: Session, ctx: _Context) -> _Context:
    """``ctx`` with the issuer and the signing key (read once per transaction)."""
    if ctx.key is None:
        from accessd.config import load_settings  # the same settings every process reads

        kid, key = keys.signing_key(session)
        ctx = session.info[_CONTEXT] = ctx._replace(
            issuer=load_settings().effective_public_url, kid=kid, key=key
        )
    return ctx


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, _transaction) -> None:
    # also at the end of a savepoint: a key made in one that was rolled back must not sign
    session.info.pop(_CONTEXT, None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_WAKE, False):
        delivery.wake_all()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)


# -- for administrators ---------------------------------------------------------------------------


class Delivery(NamedTuple):
    id: int
    stream_id: str
    endpoint: str  # the push URL, or "poll"
    subject_id: str
    event: str  # short name
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None  # pending only
    delivered_at: dt.datetime | None


def deliveries(db, statuses: Iterable[str] = ("pending", "failed")) -> Iterator[Delivery]:
    """Outbox rows with these statuses, oldest first (never a token or a stream's secret)."""
    with db.session() as s:
        rows = s.execute(
            select(
                SsfOutbox.id,
                SsfOutbox.stream_id,
                SsfStream.delivery_method,
                SsfStream.endpoint_url,
                SsfOutbox.subject_id,
                SsfOutbox.event_type,
                SsfOutbox.status,
                SsfOutbox.attempts,
                SsfOutbox.last_error,
                SsfOutbox.created_at,
                SsfOutbox.next_attempt_at,
                SsfOutbox.delivered_at,
            )
            .join(SsfStream, SsfStream.id == SsfOutbox.stream_id)
            .where(SsfOutbox.status.in_(tuple(statuses)))
            .order_by(SsfOutbox.id)
            .execution_options(yield_per=500)
        )
        for r in rows:
            yield Delivery(
                r.id,
                r.stream_id,
                r.endpoint_url if r.delivery_method == ev.PUSH else "poll",
                r.subject_id,
                ev.short_name(r.event_type),
                r.status,
                r.attempts,
                r.last_error,
                r.created_at,
                r.next_attempt_at if r.status == "pending" else None,
                r.delivered_at,
            )


def retry(db, ids: Iterable[int] = (), stream_id: str | None = None, *, actor: str) -> int:
    """Put failed deliveries back to pending, with a fresh count of attempts: those with these
    ``ids``, or of ``stream_id``, or (neither given) all of them. Returns how many."""
    ids = list(ids)
    with db.session() as s:
        query = update(SsfOutbox).where(SsfOutbox.status == "failed")
        if ids:
            query = query.where(SsfOutbox.id.in_(ids))
        if stream_id is not None:
            query = query.where(SsfOutbox.stream_id == stream_id)
        n = s.execute(
            query.values(status="pending", attempts=0, next_attempt_at=utcnow()),
            execution_options={"synchronize_session": False},
        ).rowcount
        if n:
            audit.record(s, actor, "ssf.events.retry", None, {"count": n, "ids": ids, "stream": stream_id})
            wake_after_commit(s)
        return n


def pending_for(session: Session, stream_id: str, limit: int) -> list[SsfOutbox]:
    """A poll stream's undelivered SETs, oldest first (at most ``limit``)."""
    return list(
        session.scalars(
            select(SsfOutbox)
            .where(SsfOutbox.stream_id == stream_id, SsfOutbox.status == "pending")
            .order_by(SsfOutbox.id)
            .limit(limit)
        )
    )


def purge(session: Session, retention_days: int) -> int:
    """Delete delivered events delivered more than ``retention_days`` ago and failed ones created
    that long ago; a pending event is never deleted. Returns how many were deleted."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    done = (SsfOutbox.status == "delivered") & (SsfOutbox.delivered_at < cutoff)
    given_up = (SsfOutbox.status == "failed") & (SsfOutbox.created_at < cutoff)
    result = session.execute(
        delete(SsfOutbox).where(done | given_up), execution_options={"synchronize_session": False}
    )
    return result.rowcount or 0
