"""Accounts and role grants: the subjects of decisions.

Every change made here -- creating or updating an account (:func:`upsert`, :func:`add`), granting
(:func:`grant`) or revoking (:func:`revoke`) a role -- writes an audit record in the same
transaction and bumps ``account.updated_at`` (other processes poll it to refresh their subject
cache); a revoke also bumps ``session_epoch`` so that sessions issued before it become invalid.
Disabling and re-enabling are :mod:`accessd.lifecycle.offboarding`'s.

Subject attributes (what ``r.sub.<name>`` reads in a condition) are the account's fields under
their own names (:data:`COLUMN_ATTRIBUTES`) plus ``account.attributes``, which holds the other
attributes declared in the policy catalogue.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping

from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accessd import audit, clock
from accessd.errors import Conflict, Invalid, NotFound
from accessd.lifecycle import signals
from accessd.models import (
    ACCOUNT_STATUSES,
    GRANT_SOURCES,
    PROFILE_COLUMNS,
    Account,
    AuditEvent,
    LifecycleEvent,
    RoleGrant,
    utcnow,
)
from accessd.pdp import revisions
from accessd.policy.catalogue import Catalogue, coerce
from accessd.policy.engine import Subject

COLUMN_ATTRIBUTES = PROFILE_COLUMNS

#: Columns :func:`upsert` accepts (besides ``subject_id``).
_FIELDS = frozenset(
    {
        *COLUMN_ATTRIBUTES,
        "directory_key",
        "directory_dn",
        "origin",
        "external_id",
        "attributes",
        "status",
        "status_reason",
        "start_date",
        "end_date",
    }
)
_DATE_FIELDS = ("start_date", "end_date")
# control characters and lone surrogates (undecodable command-line bytes): refused in any text
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_LIFECYCLE_STATUS_KINDS = ("joiner", "leaver", "leaver_confirmed", "rehire", "suspended", "resumed")


def get_by_subject_id(session: Session, subject_id: str) -> Account:
    account = session.scalar(select(Account).where(Account.subject_id == subject_id))
    if account is None:
        raise NotFound(f"no account with subject id {subject_id!r}")
    return account


def check_text(what: str, value: str, max_length: int) -> str:
    """``value`` if it is printable text of at most ``max_length`` characters; else Invalid."""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text")
    if _BAD_TEXT.search(value):
        raise Invalid(f"{what} contains a control character or invalid text")
    if len(value) > max_length:
        raise Invalid(f"{what} is longer than {max_length} characters")
    return value


def check_reason(reason: str | None) -> str:
    """A reason recorded on an account change: required, not blank."""
    if reason is None or not reason.strip():
        raise Invalid("a reason is required (--reason TEXT)")
    return check_text("reason", reason.strip(), 1000)


def _check_fields(subject_id: str, fields: Mapping) -> None:
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TypeError(f"not account fields: {', '.join(sorted(unknown))}")
    if not subject_id or subject_id != subject_id.strip():
        raise Invalid("a subject id must be non-empty, without leading or trailing spaces")
    check_text("subject id", subject_id, 200)
    status = fields.get("status", "active")
    if status not in ACCOUNT_STATUSES:
        raise Invalid(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
    for name, value in fields.items():
        if name in _DATE_FIELDS:
            if value is not None and not isinstance(value, dt.date):
                raise Invalid(f"{name} must be a date")
        elif name == "attributes":
            if not isinstance(value, Mapping):
                raise Invalid("attributes must be a mapping of name to text")
            for k, v in value.items():
                check_text("attribute name", k, 200)
                check_text(f"attribute {k!r}", v, 1000)
        elif value is not None and name != "status":
            check_text(name, value, Account.__table__.c[name].type.length)
    if fields.get("email") and not _EMAIL.fullmatch(fields["email"]):
        raise Invalid(f"email {fields['email']!r} is not an e-mail address")


def _jsonable(value):
    return value.isoformat() if isinstance(value, dt.date) else value


def upsert(
    session: Session,
    *,
    subject_id: str,
    actor: str = "system",
    source: str = "system",
    reason: str | None = None,
    event_ref: str | None = None,
    **fields,
) -> Account:
    """Create or update the account ``subject_id`` with ``fields`` (account columns; ``attributes``
    replaces the whole dict). Validates everything before writing (Invalid; nothing changed).

    A new account gets a ``joiner`` lifecycle event and an ``account.create`` audit record; an
    update that changes something gets a ``mover`` event and an ``account.update`` record with
    the old and new values. ``source`` says where the change came from (cli, admin, ...),
    ``event_ref`` the event it came from (recorded on the lifecycle event).
    """
    _check_fields(subject_id, fields)
    start, end = fields.get("start_date"), fields.get("end_date")
    account = session.scalar(select(Account).where(Account.subject_id == subject_id))
    if account is not None:
        start = start if "start_date" in fields else account.start_date
        end = end if "end_date" in fields else account.end_date
    if start is not None and end is not None and end < start:
        raise Invalid(f"end date {end.isoformat()} is before start date {start.isoformat()}")
    now = utcnow()
    if account is None:
        fields.setdefault("status", "active")
        fields.setdefault("attributes", {})
        fields["attributes"] = dict(fields["attributes"])
        account = Account(subject_id=subject_id, created_at=now, updated_at=now, **fields)
        session.add(account)
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent add of the same subject id or key
            raise Conflict(f"an account with subject id {subject_id!r} or the same keys exists") from exc
        detail = {k: _jsonable(v) for k, v in sorted(fields.items()) if v not in (None, "", {})}
        record_event(session, account, "joiner", reason or "account created", source, actor, now, event_ref)
        audit.record(session, actor, "account.create", _target(account), {"source": source, **detail})
        return account
    changed = {}
    for key, value in fields.items():
        old = getattr(account, key)
        if key == "attributes":
            value = dict(value)
        if old != value:
            changed[key] = [_jsonable(old), _jsonable(value)]
            setattr(account, key, value)
    if changed:
        account.updated_at = now
        session.flush()
        record_event(session, account, "mover", reason or "account updated", source, actor, now, event_ref)
        audit.record(
            session, actor, "account.update", _target(account), {"source": source, "changed": changed}
        )
    return account


def add(
    session: Session,
    catalogue: Catalogue | None,
    *,
    subject_id: str,
    actor: str,
    source: str,
    attributes: Mapping[str, str] = {},  # noqa: B006 - read only
    **fields,
) -> Account:
    """Create a new account (Conflict when ``subject_id`` exists) through :func:`upsert`.

    ``attributes`` are subject attributes by name: each must be declared in ``catalogue`` (the
    revision in force) and its value must fit the declared type. A name that is an account
    column (:data:`COLUMN_ATTRIBUTES`) is stored in that column; the rest in
    ``account.attributes``. Empty values are not stored (absent and empty mean the same).
    """
    if session.scalar(select(Account.id).where(Account.subject_id == subject_id)) is not None:
        raise Conflict(f"an account with subject id {subject_id!r} already exists")
    extra = {}
    for name, value in attributes.items():
        spec = catalogue.subject_attributes.get(name) if catalogue is not None else None
        if spec is None:
            declared = ", ".join(sorted(catalogue.subject_attributes)) if catalogue else ""
            raise Invalid(
                f"unknown subject attribute {name!r}; the policy in force declares: {declared or 'none'}"
            )
        check_text(f"attribute {name!r}", value, 1000)
        try:
            coerce(spec.type, value)
        except ValueError as exc:
            raise Invalid(f"attribute {name!r}: {exc} (declared as {spec.type})") from None
        if value == "":
            continue
        if name in COLUMN_ATTRIBUTES:
            if fields.get(name) not in (None, "", value):
                raise Invalid(f"{name!r} given twice with different values")
            fields[name] = value
        else:
            extra[name] = value
    return upsert(session, subject_id=subject_id, actor=actor, source=source, attributes=extra, **fields)


def grant(
    session: Session,
    account: Account,
    role: str,
    source: str = "manual",
    source_ref: str | None = None,
    actor: str = "system",
) -> RoleGrant:
    """Grant ``role`` (idempotent per role and source: an existing grant is returned unchanged).

    A manual grant must name a role of the catalogue in force (Invalid, naming the known roles).
    A grant to a disabled account is kept and takes effect when the account is re-enabled.
    """
    if source not in GRANT_SOURCES:
        raise Invalid(f"source must be one of {', '.join(GRANT_SOURCES)}")
    for g in account.grants:
        if g.role == role and g.source == source:
            return g
    if source == "manual":
        roles = catalogue_in_force(session).roles
        if role not in roles:
            raise Invalid(f"unknown role {role!r}; the policy in force knows: {', '.join(sorted(roles))}")
    now = utcnow()
    new_role = role not in account.roles
    g = RoleGrant(role=role, source=source, source_ref=source_ref, granted_by=actor, granted_at=now)
    account.grants.append(g)
    account.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "account.grant",
        _target(account),
        {"role": role, "source": source, "source_ref": source_ref},
    )
    if new_role:
        signals.emit(session, account, "roles_changed", roles=sorted(account.roles))
    return g


def revoke(session: Session, account: Account, role: str, *, actor: str) -> bool:
    """Remove the manual grant of ``role``. Returns False when the account holds no grant of it.

    A role held only through the directory is refused (Conflict): the next sync would restore
    it; remove the person from the directory group instead. When the role is held both manually
    and through the directory, the manual grant is removed and the role stays.
    """
    grants = [g for g in account.grants if g.role == role]
    manual = [g for g in grants if g.source == "manual"]
    if not manual:
        if grants:
            groups = ", ".join(sorted({g.source_ref or "a directory group" for g in grants}))
            raise Conflict(
                f"{account.subject_id} holds {role!r} through the directory ({groups}); the next sync "
                "would restore it: remove them from the group in the directory instead"
            )
        return False
    now = utcnow()
    for g in manual:
        account.grants.remove(g)  # delete-orphan cascade deletes the row
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    session.flush()
    audit.record(session, actor, "account.revoke", _target(account), {"role": role, "source": "manual"})
    if role not in account.roles:
        signals.emit(session, account, "roles_changed", roles=sorted(account.roles))
    return True


def catalogue_in_force(session: Session) -> Catalogue:
    """The catalogue of the policy revision in force (NotFound when none is loaded)."""
    rev = revisions.current(session)
    if rev is None:
        raise NotFound("no policy revision is loaded; run `accessd policy load DIR` first")
    return revisions.policy_of(rev).catalogue


def subject_attributes(account: Account) -> dict[str, str]:
    """The account's subject attributes: non-empty :data:`COLUMN_ATTRIBUTES` under their column
    names, then ``account.attributes`` (which wins on a clash). Absent values are left out, so
    the engine applies the catalogue default and nothing absent ever matches."""
    out = {}
    for name in COLUMN_ATTRIBUTES:
        value = getattr(account, name)
        if value not in (None, ""):
            out[name] = value
    out.update(account.attributes or {})
    return out


def subject_for(account: Account) -> Subject:
    """The engine's view of an account: id, roles, attributes, status and dates."""
    return Subject(
        id=account.subject_id,
        roles=account.roles,
        attributes=subject_attributes(account),
        status=account.status,
        start_date=account.start_date,
        end_date=account.end_date,
        departure_at=account.departure_at.replace(tzinfo=dt.UTC) if account.departure_at else None,
    )


#: The columns :func:`list_accounts` yields, in order.
LIST_COLUMNS = (
    "subject_id",
    "status",
    "display_name",
    "email",
    "department",
    "region",
    "start_date",
    "end_date",
)


def list_accounts(
    session: Session, status: str | None = None, batch_size: int = 1000
) -> Iterator[tuple[Row, list[str]]]:
    """``(row of LIST_COLUMNS, sorted roles)`` per account, by subject id. Reads ``batch_size``
    accounts at a time (a server-side cursor on PostgreSQL) plus one grant query per batch, as
    plain rows, so that listing any number of accounts keeps memory flat."""
    stmt = select(Account.id, *(getattr(Account, c) for c in LIST_COLUMNS)).order_by(Account.subject_id)
    if status is not None:
        stmt = stmt.where(Account.status == status)
    for batch in session.execute(stmt.execution_options(yield_per=batch_size)).partitions():
        roles: dict[int, set[str]] = defaultdict(set)
        for acc_id, role in session.execute(
            select(RoleGrant.account_id, RoleGrant.role).where(
                RoleGrant.account_id.in_([r[0] for r in batch])
            )
        ):
            roles[acc_id].add(role)
        for r in batch:
            yield r, sorted(roles.get(r[0], ()))


def status_event(session: Session, account: Account) -> LifecycleEvent | None:
    """The newest lifecycle event that set the account's status (joiner, leaver, rehire, suspension)."""
    return session.scalars(
        select(LifecycleEvent)
        .where(LifecycleEvent.account_id == account.id, LifecycleEvent.kind.in_(_LIFECYCLE_STATUS_KINDS))
        .order_by(LifecycleEvent.at.desc(), LifecycleEvent.id.desc())
        .limit(1)
    ).first()


def history(session: Session, account: Account, limit: int | None = None) -> list[dict]:
    """Lifecycle events and audit records about the account, oldest first (the newest ``limit``)."""
    events = session.scalars(
        _newest(select(LifecycleEvent).where(LifecycleEvent.account_id == account.id), LifecycleEvent, limit)
    )
    records = session.scalars(
        _newest(select(AuditEvent).where(AuditEvent.target == _target(account)), AuditEvent, limit)
    )
    rows = [
        {
            "at": e.at,
            "type": "event",
            "what": e.kind,
            "source": e.source,
            "actor": e.actor,
            "reason": e.reason,
        }
        for e in events
    ] + [
        {"at": r.at, "type": "audit", "what": r.action, "actor": r.actor, "detail": r.detail} for r in records
    ]
    rows.sort(key=lambda r: r["at"])
    return rows[-limit:] if limit else rows


def _newest(stmt, model, limit: int | None):
    stmt = stmt.order_by(model.at.desc(), model.id.desc())
    return stmt.limit(limit) if limit else stmt


def _target(account: Account) -> str:
    return f"account:{account.subject_id}"


def record_event(session: Session, account: Account, kind, reason, source, actor, at, event_ref=None) -> None:
    """One lifecycle event (joiner, mover, leaver, ...) of ``account``, with its typed source."""
    session.add(
        LifecycleEvent(
            account_id=account.id,
            kind=kind,
            reason=reason[:200],
            source=str(source),
            actor=actor,
            at=at,
            event_ref=event_ref[:200] if event_ref else None,
        )
    )


def role_holder_counts(session: Session, today: dt.date | None = None) -> dict[str, int]:
    """How many active accounts hold each (directly granted) role on ``today`` (default: the
    clock's date)."""
    today = today or clock.today()
    counts: Counter[str] = Counter()
    rows = session.execute(
        select(Account.id, RoleGrant.role, Account.status, Account.start_date, Account.end_date).join(
            RoleGrant, RoleGrant.account_id == Account.id
        )
    )
    seen = set()
    for acc_id, role, status, start, end in rows:
        if status != "active" or (start and start > today) or (end and end < today):
            continue
        if (acc_id, role) not in seen:
            seen.add((acc_id, role))
            counts[role] += 1
    return dict(counts)
