"""The audit trail and the decision log for the admin UI: filter, page, verify, export.

Filters are built from the raw texts of a query string by :func:`audit_filter` and
:func:`decision_filter`, which raise :class:`~accessd.errors.Invalid` (400) with a message for
anything unusable (NUL or other control characters, lone surrogates, over-long text, a time that
is no time or leaves the representable range, an unknown decision) -- so nothing unusable reaches
the database. Times are days or moments in ``settings.timezone`` (:mod:`accessd.clock`): a day
``since`` starts at its midnight, a day ``until`` is the last day included; a date-time without
an offset is in that zone too; ``30d`` / ``12h`` count back from now.

Pages (:class:`~accessd.console.paging.Page`, 50 rows) are newest first. Rows are plain dicts
whose ``at`` is an aware datetime in the configured zone.

Exports (:func:`export_audit_csv`, :func:`export_decisions_csv`) write their own audit record
(who exported with which filter) before the first byte, then return a generator of CSV bytes
that reads the rows in keyset-paged chunks, each in a short transaction: memory stays bounded
and no transaction stays open while a slow client downloads. Cells that a spreadsheet would run
as a formula (starting with = + - @, tab or carriage return) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from sqlalchemy import and_, func, or_, select

from accessd import audit, clock
from accessd.console.paging import PER_PAGE, Page, newest_first, offset_of
from accessd.errors import Invalid
from accessd.models import Account, AuditEvent, DecisionLog
from accessd.pdp import decision_rows
from accessd.pdp.decision_queries import parse_resource, parse_time

MAX_PAGE = 1_000_000  # a page number past this is a mistake, not a wish to see row 50 million
DECISIONS = ("allow", "mask", "partial", "deny")
EXPORT_CHUNK = 1000  # rows per read transaction of an export
_RELATIVE = re.compile(r"\d{1,6}[dh]")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# -- checking what a query string gave --------------------------------------------------------


def checked_text(value: str | None, name: str, max_len: int = 200) -> str | None:
    """``value`` stripped, or None when empty; Invalid for control characters (NUL included),
    lone surrogates or more than ``max_len`` characters."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > max_len:
        raise Invalid(f"{name} must be at most {max_len} characters", pointer=name)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid(f"{name} must not contain control characters", pointer=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{name} is not valid text (a lone surrogate)", pointer=name) from None
    return value


def parse_moment(value: str | None, name: str, *, end: bool = False) -> dt.datetime | None:
    """A moment as naive UTC (how tables store time), or None when empty.

    ``YYYY-MM-DD`` is a day in the configured zone: its midnight, or with ``end`` the following
    midnight (the day is included). A date-time without an offset is in the configured zone.
    ``30d`` / ``12h`` count back from now."""
    text = checked_text(value, name, 64)
    if text is None:
        return None
    if _RELATIVE.fullmatch(text):
        return parse_time(text, name)
    zone = clock.zone()
    try:
        if _DAY.fullmatch(text):
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end else 0)
            moment = dt.datetime.combine(day, dt.time(0), zone)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
        # astimezone can leave the representable range (0001-01-01T00:00:00+01:00)
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise Invalid(
            f"{name} must be a date (YYYY-MM-DD), a date and time (YYYY-MM-DDTHH:MM, in "
            f"{_zone_name()} unless it names an offset) or like 30d or 12h, not {text[:40]!r}",
            pointer=name,
        ) from None


def checked_page(page: int) -> int:
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        raise Invalid(f"page must be a whole number from 1 to {MAX_PAGE:,}", pointer="page")
    return page


def local(at: dt.datetime | None) -> dt.datetime | None:
    """A stored naive-UTC time as an aware datetime in the configured zone."""
    return at.replace(tzinfo=dt.UTC).astimezone(clock.zone()) if at is not None else None


def _zone_name() -> str:
    return str(clock.zone())


def _time_range(since: dt.datetime | None, until: dt.datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise Invalid("since must be before until", pointer="since")


def _contains(column, value: str):
    """Case-insensitive substring match, the same on SQLite and PostgreSQL (``%`` and ``_`` in
    ``value`` are literal)."""
    return func.lower(column).contains(value.lower(), autoescape=True)


# -- the audit trail --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Substring matches (case-insensitive) on actor, action and target; a time range."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: dt.datetime | None = None  # naive UTC, included
    until: dt.datetime | None = None  # naive UTC, excluded

    def conditions(self) -> list:
        where = []
        for name in ("actor", "action", "target"):
            value = getattr(self, name)
            if value is not None:
                where.append(_contains(getattr(AuditEvent, name), value))
        if self.since is not None:
            where.append(AuditEvent.at >= self.since)
        if self.until is not None:
            where.append(AuditEvent.at < self.until)
        return where

    def describe(self) -> dict:
        """The filter as the export's audit record keeps it (only what was given)."""
        return _described(asdict(self))


def audit_filter(
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """An :class:`AuditFilter` from query-string texts; Invalid says which one is unusable."""
    f = AuditFilter(
        actor=checked_text(actor, "actor"),
        action=checked_text(action, "action", 64),
        target=checked_text(target, "target", 300),
        since=parse_moment(since, "since"),
        until=parse_moment(until, "until", end=True),
    )
    _time_range(f.since, f.until)
    return f


def audit_row(ev: AuditEvent) -> dict:
    return {
        "id": ev.id,
        "at": local(ev.at),
        "actor": ev.actor,
        "action": ev.action,
        "target": ev.target,
        "detail": ev.detail or {},
        "detail_text": _json(ev.detail or {}),
        "hash": ev.hash,
    }


def audit_page(db, f: AuditFilter, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of audit records matching ``f``, newest (highest id) first."""
    page = checked_page(page)
    where = f.conditions()
    with db.session() as s:
        return newest_first(s, AuditEvent, where, page, per_page, audit_row)


@dataclass(frozen=True)
class ChainCheck:
    intact: bool
    broken_at: int | None  # the id of the first record whose chain is broken
    records: int


def verify_chain(db) -> ChainCheck:
    """Re-compute the whole hash chain (:func:`accessd.audit.verify`)."""
    with db.session() as s:
        broken = audit.verify(s)
        records = s.scalar(select(func.count(AuditEvent.id)))
    return ChainCheck(intact=broken is None, broken_at=broken, records=records)


AUDIT_COLUMNS = ("id", "at", "actor", "action", "target", "detail", "hash", "prev_hash")


def export_audit_csv(db, f: AuditFilter, actor: str) -> Iterator[bytes]:
    """Record the export (``audit.export``), then stream the matching records as CSV bytes,
    newest first. The record is written now, before the caller reads the first chunk."""
    with db.session() as s:
        audit.record(s, actor, "audit.export", "audit_event", {"filter": f.describe(), "format": "csv"})
    where = f.conditions()

    def chunk(s, last):
        stmt = select(AuditEvent).where(*where)
        if last is not None:
            stmt = stmt.where(AuditEvent.id < last.id)
        return list(s.scalars(stmt.order_by(AuditEvent.id.desc()).limit(EXPORT_CHUNK)))

    def cells(r: AuditEvent) -> tuple:
        return (r.id, _iso(r.at), r.actor, r.action, r.target, _json(r.detail or {}), r.hash, r.prev_hash)

    return _csv_stream(db, AUDIT_COLUMNS, chunk, cells)


# -- the decision log ------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionFilter:
    """Exact matches on subject, resource type (and id), action, purpose and decision; a time
    range. ``resource_id`` None with a type: every record of the type."""

    subject: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    purpose: str | None = None
    decision: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def resource(self) -> str | None:
        if self.resource_type is None:
            return None
        return self.resource_type + (f":{self.resource_id}" if self.resource_id is not None else "")

    @property
    def one_record(self) -> bool:
        """A data subject's access request: every decision about one record."""
        return self.resource_type is not None and self.resource_id is not None

    def conditions(self) -> list:
        columns = {
            "subject": DecisionLog.subject_id,
            "resource_type": DecisionLog.resource_type,
            "resource_id": DecisionLog.resource_id,
            "action": DecisionLog.action,
            "purpose": DecisionLog.purpose,
            "decision": DecisionLog.decision,
        }
        where = [
            col == getattr(self, name) for name, col in columns.items() if getattr(self, name) is not None
        ]
        if self.since is not None:
            where.append(DecisionLog.at >= self.since)
        if self.until is not None:
            where.append(DecisionLog.at < self.until)
        return where

    def describe(self) -> dict:
        return _described(asdict(self))


def decision_filter(
    subject: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    purpose: str | None = None,
    decision: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> DecisionFilter:
    """A :class:`DecisionFilter` from query-string texts (``resource`` as TYPE or TYPE:ID)."""
    rtype = rid = None
    resource = checked_text(resource, "resource", 265)
    if resource is not None:
        rtype, rid = parse_resource(resource)
        if len(rtype) > 64 or (rid is not None and len(rid) > 200):
            raise Invalid("resource: the type is at most 64 characters, the id 200", pointer="resource")
        rid = rid or None  # "customer:" is every record of the type, like "customer"
    decision = checked_text(decision, "decision", 16)
    if decision is not None and decision not in DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(DECISIONS)}", pointer="decision")
    f = DecisionFilter(
        subject=checked_text(subject, "subject"),
        resource_type=rtype,
        resource_id=rid,
        action=checked_text(action, "action", 64),
        purpose=checked_text(purpose, "purpose", 64),
        decision=decision,
        since=parse_moment(since, "since"),
        until=parse_moment(until, "until", end=True),
    )
    _time_range(f.since, f.until)
    return f


def decision_row(r: DecisionLog, name: str | None = None) -> dict:
    return {
        "id": r.id,
        "at": local(r.at),
        "decision_id": r.decision_id,
        "client": r.client,
        "subject": r.subject_id,
        "subject_name": name or None,
        "action": r.action,
        "resource_type": r.resource_type,
        "resource_id": r.resource_id,
        "fields": list(r.fields or []),
        "purpose": r.purpose,
        "decision": r.decision,
        "reason": r.reason,
        "revision": r.revision,
    }


def _newest_first(stmt):
    return stmt.order_by(DecisionLog.at.desc(), DecisionLog.id.desc())


COUNT_CAP = 10_000  # decisions counted for the pager; beyond it the page says "more than"


def decisions_page(db, f: DecisionFilter, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of decisions matching ``f``, newest first, each with the subject's display name
    when accessd knows the subject. Decisions reach the table within about a second (the log
    is written off the request path)."""
    page = checked_page(page)
    where = f.conditions()
    with db.session() as s:
        # counting millions of rows for a pager costs seconds: count up to COUNT_CAP and say "more"
        capped = select(DecisionLog.id).where(*where).limit(COUNT_CAP + 1).subquery()
        total = s.scalar(select(func.count()).select_from(capped))
        rows = s.execute(
            _newest_first(
                select(DecisionLog, Account.display_name)
                .outerjoin(Account, Account.subject_id == DecisionLog.subject_id)
                .where(*where)
            )
            .limit(per_page)
            .offset(offset_of(page, per_page))
        )
        items = [decision_row(r, name) for r, name in rows]
    more = total > COUNT_CAP
    return Page(items=items, total=min(total, COUNT_CAP), page=page, per_page=per_page, more=more)


def readers(db, f: DecisionFilter) -> list[dict]:
    """For a data subject's access request (``f.one_record``): each person who asked about the
    record -- decisions by outcome, purposes, first and last time -- most recent first."""
    where = f.conditions()
    people: dict[str, dict] = {}
    with db.session() as s:
        groups = s.execute(
            select(
                DecisionLog.subject_id,
                DecisionLog.purpose,
                DecisionLog.decision,
                func.count(DecisionLog.id),
                func.min(DecisionLog.at),
                func.max(DecisionLog.at),
            )
            .where(*where)
            .group_by(DecisionLog.subject_id, DecisionLog.purpose, DecisionLog.decision)
        ).all()
        subjects = {g[0] for g in groups}
        names = (
            dict(
                s.execute(
                    select(Account.subject_id, Account.display_name).where(Account.subject_id.in_(subjects))
                ).all()
            )
            if subjects
            else {}
        )
    for subject, purpose, decision, n, first, last in groups:
        p = people.setdefault(
            subject,
            {
                "subject": subject,
                "name": names.get(subject) or None,
                "decisions": {},
                "purposes": set(),
                "first": first,
                "last": last,
                "total": 0,
            },
        )
        p["decisions"][decision] = p["decisions"].get(decision, 0) + n
        if purpose:
            p["purposes"].add(purpose)
        p["first"], p["last"] = min(p["first"], first), max(p["last"], last)
        p["total"] += n
    out = sorted(people.values(), key=lambda p: (p["last"], p["subject"]), reverse=True)
    for p in out:
        p["purposes"] = sorted(p["purposes"])
        p["first"], p["last"] = local(p["first"]), local(p["last"])
    return out


# the decision log's columns, in its own order; the person is "subject" in the export
DECISION_COLUMNS = tuple("subject" if c == "subject_id" else c for c in decision_rows.COLUMNS)


def export_decisions_csv(db, f: DecisionFilter, actor: str) -> Iterator[bytes]:
    """Record the export (``decisions.export``, target the record when the filter names one),
    then stream the matching decisions as CSV bytes, newest first."""
    with db.session() as s:
        audit.record(
            s,
            actor,
            "decisions.export",
            f.resource or "decision_log",
            {"filter": f.describe(), "format": "csv"},
        )
    where = f.conditions()

    def chunk(s, last):
        stmt = select(DecisionLog).where(*where)
        if last is not None:  # keyset on (at, id), the order of the listing
            stmt = stmt.where(
                or_(DecisionLog.at < last.at, and_(DecisionLog.at == last.at, DecisionLog.id < last.id))
            )
        return list(s.scalars(_newest_first(stmt).limit(EXPORT_CHUNK)))

    def cells(r: DecisionLog) -> tuple:
        return (
            _iso(r.at),
            r.decision_id,
            r.client,
            r.subject_id,
            r.action,
            r.resource_type,
            r.resource_id,
            ",".join(r.fields or []),
            r.purpose,
            r.decision,
            r.reason,
            r.revision,
        )

    return _csv_stream(db, DECISION_COLUMNS, chunk, cells)


# -- CSV ------------------------------------------------------------------------------------------


def csv_cell(value) -> str:
    """A value as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_stream(db, header: tuple, chunk, cells) -> Iterator[bytes]:
    """CSV bytes: the header, then ``cells(row)`` of every row ``chunk(session, last_row)``
    returns, chunk after chunk (each read in its own transaction) until one comes back empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        # backslashreplace: text the database holds but UTF-8 cannot carry must not end the
        # download half-way
        return text.encode("utf-8", "backslashreplace")

    def generate() -> Iterator[bytes]:
        writer.writerow(header)
        yield take()
        last = None
        while True:
            with db.session() as s:
                rows = chunk(s, last)
                for r in rows:
                    writer.writerow([csv_cell(c) for c in cells(r)])
            if not rows:
                return
            last = rows[-1]
            yield take()

    return generate()


def _iso(at: dt.datetime | None) -> str | None:
    return local(at).isoformat(timespec="seconds") if at is not None else None


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _described(values: dict) -> dict:
    return {
        k: (v.isoformat() + "Z" if isinstance(v, dt.datetime) else v)
        for k, v in values.items()
        if v is not None
    }
