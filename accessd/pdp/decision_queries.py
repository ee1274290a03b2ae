"""Reading the decision log: who read what, when and why (auditors' queries), retention (whole
monthly partitions dropped on PostgreSQL), and readiness across every worker (their counters in
``decision_log_worker``). Writing is ``accessd.pdp.decision_log``."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from accessd.errors import Invalid
from accessd.models import DecisionLog, DecisionLogWorker, utcnow
from accessd.pdp import decision_partitions
from accessd.pdp.decision_log import STALE_HEARTBEATS, DecisionLogWriter

log = logging.getLogger("accessd.decision_log")


@dataclass
class Query:
    resource_type: str | None = None
    resource_id: str | None = None
    subject_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


def parse_resource(value: str, pointer: str = "resource") -> tuple[str, str | None]:
    """``customer:123`` -> ("customer", "123"); ``customer`` -> ("customer", None)."""
    rtype, sep, rid = value.partition(":")
    if not rtype:
        raise Invalid("resource must look like TYPE:ID (e.g. customer:123)", pointer=pointer)
    return rtype, (rid if sep else None)


def parse_time(value: str, name: str = "since", pointer: str | None = None) -> dt.datetime:
    """An ISO date or date-time (UTC if no offset), or a relative ``30d`` / ``12h``; an error
    names ``name`` and points at ``pointer`` (default: ``name``)."""
    value = value.strip()
    try:
        if value[-1:] in ("d", "h") and value[:-1].isdigit():
            delta = (
                dt.timedelta(days=int(value[:-1]))
                if value[-1] == "d"
                else dt.timedelta(hours=int(value[:-1]))
            )
            return utcnow() - delta
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is not None:  # may leave the representable range (0001-01-01+01:00)
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise Invalid(
            f"{name} must be an ISO date/time or like 30d or 12h, not {value[:40]!r}", pointer=pointer or name
        ) from exc
    return parsed


def query(session: Session, q: Query) -> list[dict]:
    """Decisions matching ``q``, newest first, as plain dicts."""
    stmt = select(DecisionLog)
    if q.resource_type:
        stmt = stmt.where(DecisionLog.resource_type == q.resource_type)
    if q.resource_id is not None:
        stmt = stmt.where(DecisionLog.resource_id == q.resource_id)
    if q.subject_id:
        stmt = stmt.where(DecisionLog.subject_id == q.subject_id)
    if q.since:
        stmt = stmt.where(DecisionLog.at >= q.since)
    if q.until:
        stmt = stmt.where(DecisionLog.at < q.until)
    stmt = stmt.order_by(DecisionLog.at.desc(), DecisionLog.id.desc()).limit(q.limit).offset(q.offset)
    return [as_dict(r) for r in session.scalars(stmt)]


def search(db, q: Query) -> list[dict]:
    """``query`` in its own read transaction (for callers that hold a Database, not a Session)."""
    with db.session() as s:
        return query(s, q)


def as_dict(r: DecisionLog) -> dict:
    return {
        "at": r.at.isoformat(timespec="milliseconds") + "Z",
        "decision_id": r.decision_id,
        "client": r.client,
        "subject": r.subject_id,
        "action": r.action,
        "resource": {"type": r.resource_type, "id": r.resource_id},
        "fields": r.fields,
        "purpose": r.purpose,
        "decision": r.decision,
        "reason": r.reason,
        "revision": r.revision,
    }


def purge(session: Session, retention_days: int, now: dt.datetime | None = None) -> int:
    """Delete decisions older than ``retention_days``; returns how many were deleted.

    On PostgreSQL (monthly partitions, ``decision_partitions``) it DELETEs only in the month the
    cutoff falls in, makes the partitions of this month and the next ones, and drops every
    partition whose whole month is older than the cutoff (in that order: creating and dropping
    lock the table until the caller commits); it logs how many partitions it dropped. On SQLite
    it DELETEs."""
    if retention_days < 1:
        raise Invalid("retention must be at least 1 day", pointer="retention_days")
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=retention_days)
    before = cutoff
    dropped = dropped_rows = deleted = 0
    if session.get_bind().dialect.name == "postgresql":
        before = decision_partitions.month_start(cutoff)
        straddling = (DecisionLog.at >= before, DecisionLog.at < cutoff)
        deleted = session.execute(delete(DecisionLog).where(*straddling)).rowcount or 0
        conn = session.connection().connection  # the session's transaction
        decision_partitions.ensure(conn, now)
        dropped, dropped_rows = decision_partitions.drop_before(conn, cutoff)
    # SQLite: everything; PostgreSQL: only what a partition made by hand holds (pruning skips
    # the rest: the older months' partitions are gone)
    deleted += session.execute(delete(DecisionLog).where(DecisionLog.at < before)).rowcount or 0
    if dropped:
        log.info(
            "decision log: dropped %d monthly partitions (%d records) and deleted %d records, all before %s",
            dropped,
            dropped_rows,
            deleted,
            cutoff.isoformat(" ", "seconds"),
        )
    return dropped_rows + deleted


# -- readiness ---------------------------------------------------------------------------------


def health(db, writer: DecisionLogWriter) -> dict:
    """The decision log across every worker: rows of ``decision_log_worker`` updated within
    ``STALE_HEARTBEATS`` heartbeats plus ``writer``'s live counters. ``status`` is "degraded",
    with a ``reason``, while more than ``ready_max_queued`` records are queued in all of them
    together or any of them fails to write; reasons name error classes only (no addresses)."""
    cutoff = utcnow() - dt.timedelta(seconds=STALE_HEARTBEATS * writer.heartbeat_seconds)
    with db.session() as s:
        rows = s.scalars(select(DecisionLogWorker).where(DecisionLogWorker.updated_at >= cutoff)).all()
    workers = {
        r.worker: {
            "queued": r.queued,
            "written": r.written,
            "failed_batches": r.failed_batches,
            "waiting": r.waiting,
            "rejected": r.rejected,
            "last_error": r.last_error,
        }
        for r in rows
    }
    if writer._started:
        workers[writer.worker_id] = writer.stats()
    total = {
        k: sum(w[k] for w in workers.values())
        for k in ("queued", "waiting", "rejected", "written", "failed_batches")
    }
    reasons = []
    if total["queued"] > writer.ready_max_queued:
        reasons.append(
            f"{total['queued']} decision records queued, more than decision_log.ready_max_queued "
            f"({writer.ready_max_queued})"
        )
    failing = sorted({w["last_error"].split(":", 1)[0] for w in workers.values() if w["last_error"]})
    if failing:
        count = sum(1 for w in workers.values() if w["last_error"])
        reasons.append(f"writing decision records fails in {count} worker(s) ({', '.join(failing)})")
    return {
        "status": "degraded" if reasons else "ok",
        "reason": "; ".join(reasons) or None,
        "workers": len(workers),
        **total,
    }
