"""People in the admin console: search and paging, creating a person, and a person's page.

No Flask here. Every function takes the :class:`~accessd.db.Database` and returns plain data
(frozen dataclasses, lists, dicts); nothing returned is a live ORM object, and every time is aware,
in ``settings.timezone``. A refused input raises :class:`~accessd.errors.Invalid` (400),
:class:`~accessd.errors.NotFound` (404) or :class:`~accessd.errors.Conflict` (409) and writes
nothing. Creating a person goes through :func:`accessd.accounts.add` with source admin, as
``accessd account add`` does with source cli.

Listing pages are bounded whatever the number of people: one COUNT, one page of rows by
``subject_id`` (its unique index) with LIMIT/OFFSET, one query for that page's grants.

The actions on a person are :mod:`accessd.console.people_actions`; what their roles let them see
is :mod:`accessd.console.people_access`; the roles and their members
:mod:`accessd.console.people_roles`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accessd import accounts, clock
from accessd.console.paging import PER_PAGE, Page, offset_of
from accessd.console.people_access import AccessRow, compiled_in_force, effective_access
from accessd.db import Database
from accessd.errors import Invalid
from accessd.lifecycle.states import Source, Status
from accessd.models import ACCOUNT_STATUSES, Account, DecisionLog, RoleGrant, utcnow

SOURCE = Source.ADMIN
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- input ----------------------------------------------------------------------------------


def parse_day(what: str, text: str | None, *, required: bool = False) -> dt.date | None:
    """``YYYY-MM-DD`` as a date; blank is None (or Invalid when ``required``)."""
    text = (text or "").strip()
    if not text:
        if required:
            raise Invalid(f"{what} is required (YYYY-MM-DD)")
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{what}: {text[:40]!r} is not a date (YYYY-MM-DD)") from None


def _optional(what: str, value: str | None, max_length: int = 200) -> str | None:
    value = (value or "").strip()
    return accounts.check_text(what, value, max_length) if value else None


def _like(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped (``\\`` is the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def local(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) instant as an aware time in settings.timezone, for display."""
    return moment.replace(tzinfo=dt.UTC).astimezone(clock.zone()) if moment is not None else None


# -- search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRow:
    """One line of the people list."""

    subject_id: str
    display_name: str
    username: str | None
    email: str | None
    department: str | None
    region: str | None
    status: str
    roles: tuple[str, ...]
    end_date: dt.date | None


def search(
    db: Database,
    q: str | None = None,
    *,
    status: str | None = None,
    role: str | None = None,
    department: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """People matching ``q`` (a case-insensitive substring of subject id, username, display name
    or e-mail; ``%`` and ``_`` match themselves) and the filters, by subject id: page ``page`` of
    ``per_page`` as a Page of :class:`PersonRow`. ``role`` matches a directly granted role.
    Three queries, whatever the number of people."""
    q = (q or "").strip()
    accounts.check_text("search", q, 200)
    if status and status not in ACCOUNT_STATUSES:
        raise Invalid(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
    if page < 1:
        raise Invalid("page must be 1 or more")
    if not 1 <= per_page <= 500:
        raise Invalid("per page must be from 1 to 500")
    conds = []
    if q:
        pattern = _like(q)
        # ilike: ILIKE on PostgreSQL, lower() LIKE lower() on SQLite -- the same answer on both
        conds.append(
            or_(
                *(
                    c.ilike(pattern, escape="\\")
                    for c in (Account.subject_id, Account.username, Account.display_name, Account.email)
                )
            )
        )
    if status:
        conds.append(Account.status == status)
    if department:
        conds.append(Account.department == department)
    if role:
        conds.append(Account.id.in_(select(RoleGrant.account_id).where(RoleGrant.role == role)))
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Account).where(*conds))
        rows = s.execute(
            select(
                Account.id,
                Account.subject_id,
                Account.display_name,
                Account.username,
                Account.email,
                Account.department,
                Account.region,
                Account.status,
                Account.end_date,
            )
            .where(*conds)
            .order_by(Account.subject_id)
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
        roles = _roles_of(s, [r.id for r in rows])
    items = [PersonRow(*r[1:8], roles=roles.get(r.id, ()), end_date=r.end_date) for r in rows]
    return Page(items=items, total=total, page=page, per_page=per_page)


def _roles_of(session: Session, account_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """account id -> its sorted roles, in one query."""
    out: dict[int, set[str]] = {}
    if account_ids:
        for acc_id, role in session.execute(
            select(RoleGrant.account_id, RoleGrant.role).where(RoleGrant.account_id.in_(account_ids))
        ):
            out.setdefault(acc_id, set()).add(role)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def filter_choices(db: Database) -> dict[str, list[str]]:
    """What the filters offer: statuses, the catalogue's roles, the departments people have."""
    with db.session() as s:
        departments = s.scalars(
            select(Account.department)
            .where(Account.department.is_not(None))
            .distinct()
            .order_by(Account.department)
        ).all()
        _, compiled = compiled_in_force(s)
        roles = list(compiled.policy.catalogue.roles) if compiled is not None else []
    return {"statuses": list(ACCOUNT_STATUSES), "roles": roles, "departments": list(departments)}


# -- create ---------------------------------------------------------------------------------


def create(
    db: Database,
    *,
    actor: str,
    subject_id: str,
    username: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    department: str | None = None,
    region: str | None = None,
    start_date: dt.date | None = None,
) -> str:
    """Create an active account without roles through :func:`accessd.accounts.add` (source
    admin, origin admin); returns its subject id. Conflict when the subject id exists."""
    subject_id = (subject_id or "").strip()
    if not subject_id:
        raise Invalid("a subject id is required")
    with db.session() as s:
        acc = accounts.add(
            s,
            None,
            subject_id=subject_id,
            actor=actor,
            source=SOURCE,
            origin=str(SOURCE),
            username=_optional("username", username),
            display_name=_optional("display name", display_name) or "",
            email=_optional("e-mail", email, 320),
            department=_optional("department", department),
            region=_optional("region", region, 64),
            start_date=start_date,
        )
        return acc.subject_id


# -- a person's page ------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantView:
    role: str
    source: str  # directory | manual | scim
    source_ref: str | None  # the directory group's DN
    granted_by: str | None
    granted_at: dt.datetime  # aware, in settings.timezone (as every time returned here)


@dataclass(frozen=True)
class LastDecision:
    at: dt.datetime
    action: str
    resource_type: str
    resource_id: str | None
    purpose: str | None
    decision: str
    reason: str


@dataclass(frozen=True)
class Person:
    """Everything the person page shows; ``actions`` are the ones that would change something."""

    id: int
    subject_id: str
    display_name: str
    username: str | None
    employee_number: str | None
    email: str | None
    department: str | None
    title: str | None
    region: str | None
    attributes: dict
    status: str
    status_reason: str | None
    status_source: str | None
    origin: str | None
    directory_dn: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    departure_at: dt.datetime | None
    disabled_at: dt.datetime | None
    grants: tuple[GrantView, ...]
    history: tuple[dict, ...]
    last_decision: LastDecision | None
    access: tuple[AccessRow, ...]
    access_note: str | None  # why every decision is denied now, whatever the rules say
    policy_revision: int | None
    actions: tuple[str, ...]

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({g.role for g in self.grants}))


def person(db: Database, subject_id: str, history_limit: int = 50) -> Person:
    """The person ``subject_id`` (NotFound): profile, status with its source, grants with theirs,
    the newest ``history_limit`` history entries (newest first), the newest decision, effective
    access under the policy in force, and the actions that apply to their state."""
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        ev = accounts.status_event(s, acc)
        source = (acc.disabled_by if acc.status in (Status.DISABLED, Status.SUSPENDED) else None) or (
            ev.source if ev else None
        )
        history = accounts.history(s, acc, history_limit or None)
        last = s.execute(
            select(DecisionLog)
            .where(DecisionLog.subject_id == acc.subject_id)
            .order_by(DecisionLog.at.desc(), DecisionLog.id.desc())
            .limit(1)
        ).scalar()
        revision, compiled = compiled_in_force(s)
        grants = tuple(
            GrantView(g.role, g.source, g.source_ref, g.granted_by, local(g.granted_at))
            for g in sorted(acc.grants, key=lambda g: (g.role, g.source))
        )
        return Person(
            id=acc.id,
            subject_id=acc.subject_id,
            display_name=acc.display_name,
            username=acc.username,
            employee_number=acc.employee_number,
            email=acc.email,
            department=acc.department,
            title=acc.title,
            region=acc.region,
            attributes=dict(acc.attributes or {}),
            status=acc.status,
            status_reason=acc.status_reason,
            status_source=source,
            origin=acc.origin,
            directory_dn=acc.directory_dn,
            start_date=acc.start_date,
            end_date=acc.end_date,
            departure_at=local(acc.departure_at),
            disabled_at=local(acc.disabled_at),
            grants=grants,
            history=tuple({**h, "at": local(h["at"])} for h in reversed(history)),
            last_decision=LastDecision(
                local(last.at),
                last.action,
                last.resource_type,
                last.resource_id,
                last.purpose,
                last.decision,
                last.reason,
            )
            if last is not None
            else None,
            access=tuple(effective_access(compiled, acc.roles)) if compiled is not None else (),
            access_note=_denied_note(acc) if compiled is not None else "no policy revision is loaded",
            policy_revision=revision,
            actions=applicable_actions(acc),
        )


def _denied_note(acc: Account) -> str | None:
    """Why the engine denies this account everything now (the table shows what its roles give)."""
    today = clock.today()
    if acc.status != Status.ACTIVE:
        return f"the account is {acc.status}: every decision is denied"
    if acc.start_date is not None and today < acc.start_date:
        return f"the account starts on {acc.start_date.isoformat()}: every decision is denied until then"
    if (acc.end_date is not None and today > acc.end_date) or (
        acc.departure_at is not None and utcnow() >= acc.departure_at
    ):
        return "the departure date has passed: every decision is denied"
    return None


def applicable_actions(acc: Account) -> tuple[str, ...]:
    """The actions (:data:`accessd.console.people_actions.ACTIONS` names) that would change
    something for ``acc`` in its state: the buttons its page shows."""
    disabled = acc.status == Status.DISABLED
    out = []
    if not disabled or acc.disabled_by == Source.DIRECTORY:
        out.append("offboard")  # a directory disable is taken over (the sync may not lift it)
    if not disabled:
        out.append("schedule")
        if acc.departure_at is not None or acc.end_date is not None:
            out.append("cancel-departure")
    if acc.status == Status.ACTIVE:
        out.append("suspend")
    if acc.status == Status.SUSPENDED:
        out.append("resume")
    if disabled:
        out.append("reenable")
    out.append("grant")
    if any(g.source == "manual" for g in acc.grants):
        out.append("revoke")
    return tuple(out)
