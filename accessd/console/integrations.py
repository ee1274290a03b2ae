"""What accessd is connected to, for the admin UI: API clients and their tokens, HR sources and
their events, SCIM, Shared Signals streams.

Secrets stay secret. A token is returned once, by :func:`create_client` and :func:`rotate_client`
(the caller shows it on that one answer and keeps it nowhere: not in a session, a flash message,
a log line or an audit record); afterwards only its SHA-256 exists (:mod:`accessd.pdp.tokens`).
HR sources are listed by name with whether a secret is configured, never the secret. A stream's
``authorization_header`` is shown as "set" at most.

Every change writes an audit record with the acting admin (``actor``) in the transaction of the
change: ``client.create``, ``client.rotate``, ``client.revoke`` here, ``ssf.stream.status`` and
``ssf.stream.delete`` (the latter through :func:`accessd.ssf.streams.remove_stream`).

Streams are paused (events held, delivered in order once enabled) or enabled again here; a
stream of any owner can be changed, as ``accessd stream remove`` can remove any. Disabling (which
drops undelivered events) is left to the receiver's own management API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from accessd import audit
from accessd.console.logs import checked_page, checked_text, local
from accessd.console.paging import PER_PAGE, Page, newest_first
from accessd.errors import Conflict, Invalid, NotFound
from accessd.models import ApiClient, HrEvent, ScimGroup, ScimGroupMember, SsfStream, utcnow
from accessd.pdp import revisions, tokens
from accessd.scim.roles import GroupRoles
from accessd.ssf import events as ev
from accessd.ssf import outbox, streams

_MAX_ID = 2**31 - 1

# -- API clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRow:
    id: int
    name: str
    scope: str
    default_purpose: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _client_row(c: ApiClient) -> ClientRow:
    return ClientRow(c.id, c.name, c.scope, c.default_purpose, local(c.created_at), local(c.revoked_at))


def list_clients(db) -> list[ClientRow]:
    """Every API client, active ones first, then by name (replaced and revoked ones stay listed)."""
    with db.session() as s:
        rows = [_client_row(c) for c in tokens.list_clients(s)]
    return sorted(rows, key=lambda c: (not c.active, c.name))


def purposes(db) -> list[str]:
    """The purposes the policy in force declares (the choices of a default purpose)."""
    with db.session() as s:
        rev = revisions.current(s)
        return list(revisions.policy_of(rev).catalogue.purposes) if rev else []


@dataclass(frozen=True)
class IssuedToken:
    """A client with its token: the only time the token is visible."""

    client: ClientRow
    token: str

    def __repr__(self) -> str:  # a stray log line or traceback shows no token
        return f"IssuedToken(client={self.client.name!r}, token=<hidden>)"


def create_client(
    db, name: str | None, scope: str | None, default_purpose: str | None, actor: str
) -> IssuedToken:
    """A new API client; its token is in the answer and nowhere else."""
    name = checked_text(name, "name")
    if name is None:
        raise Invalid("name is required", pointer="name")
    scope = checked_text(scope, "scope", 16)
    if scope not in tokens.SCOPES:
        raise Invalid(f"scope must be one of {', '.join(tokens.SCOPES)}", pointer="scope")
    default_purpose = checked_text(default_purpose, "default_purpose", 64)
    with db.session() as s:
        token = tokens.create(s, name, scope, default_purpose)
        client = s.scalar(select(ApiClient).where(ApiClient.name == name))
        audit.record(
            s,
            actor,
            "client.create",
            f"api_client:{name}",
            {"scope": scope, "default_purpose": default_purpose},
        )
        return IssuedToken(_client_row(client), token)


def _client(s, client_id) -> ApiClient:
    if isinstance(client_id, bool) or not isinstance(client_id, int) or not 1 <= client_id <= _MAX_ID:
        raise NotFound(f"no API client {str(client_id)[:40]}")
    client = s.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no API client {client_id}")
    return client


def client(db, client_id: int) -> ClientRow:
    with db.session() as s:
        return _client_row(_client(s, client_id))


def rotate_client(db, client_id: int, actor: str) -> IssuedToken:
    """Revoke the client's token and issue a new one under the same name and scope (the old row
    stays, revoked, renamed ``<name> (replaced #<id>)``)."""
    with db.session() as s:
        old = _client(s, client_id)
        if old.revoked_at is not None:
            raise Conflict(f"API client {old.name!r} is revoked: create a new client instead")
        name = old.name
        token = tokens.rotate(s, name)
        new = s.scalar(select(ApiClient).where(ApiClient.name == name))
        audit.record(s, actor, "client.rotate", f"api_client:{name}", {"replaced": old.id})
        return IssuedToken(_client_row(new), token)


def revoke_client(db, client_id: int, actor: str) -> ClientRow:
    """Revoke the client's token (every worker refuses it within about a second)."""
    with db.session() as s:
        c = _client(s, client_id)
        if c.revoked_at is not None:
            raise Conflict(f"API client {c.name!r} was already revoked")
        tokens.revoke(s, c.name)
        audit.record(s, actor, "client.revoke", f"api_client:{c.name}", {"scope": c.scope})
        return _client_row(c)


# -- HR sources and events ------------------------------------------------------------------------


def hr_sources(settings) -> list[dict]:
    """Each configured HR source: its name, its URL path and whether a secret is set."""
    return [
        {"name": name, "path": f"/hr/v1/events/{name}", "secret_configured": bool(secret)}
        for name, secret in sorted((settings.hr.sources or {}).items())
    ]


def hr_events(db, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of received HR events, newest first, with what became of each."""
    page = checked_page(page)
    with db.session() as s:
        return newest_first(s, HrEvent, [], page, per_page, _hr_event_row)


def _hr_event_row(e: HrEvent) -> dict:
    return {
        "id": e.id,
        "source": e.source,
        "event_id": e.event_id,
        "type": e.type,
        "employee_number": e.employee_number,
        "subject_id": (e.detail or {}).get("subject_id"),
        "reason": (e.detail or {}).get("reason"),
        "status": e.status,
        "received_at": local(e.received_at),
        "effective_at": local(e.effective_at),
    }


# -- SCIM -------------------------------------------------------------------------------------------


def scim_overview(db, settings) -> dict:
    """SCIM at /scim/v2: the clients that can use it (scope ``hr``), ``scim.group_roles``, and
    each SCIM group with its member count and the roles it grants."""
    mapping = GroupRoles(settings.scim.group_roles)
    with db.session() as s:
        clients = list(
            s.scalars(
                select(ApiClient.name)
                .where(ApiClient.scope == "hr", ApiClient.revoked_at.is_(None))
                .order_by(ApiClient.name)
            )
        )
        groups = s.execute(
            select(ScimGroup.display_name, func.count(ScimGroupMember.account_id))
            .outerjoin(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id)
            .group_by(ScimGroup.id, ScimGroup.display_name)
            .order_by(ScimGroup.display_name)
        ).all()
    return {
        "path": "/scim/v2",
        "clients": clients,
        "enabled": bool(clients),  # served always, usable once a client of scope hr exists
        "group_roles": [
            {"group": name, "roles": list(mapping.of(name))}
            for name in sorted(settings.scim.group_roles or {})
        ],
        "groups": [{"name": name, "members": n, "roles": list(mapping.of(name))} for name, n in groups],
        "members": sum(n for _, n in groups),
    }


# -- Shared Signals streams ---------------------------------------------------------------------------

STREAM_STATUSES = ("enabled", "paused")  # what the UI sets; "disabled" is the receiver's


@dataclass(frozen=True)
class StreamRow:
    id: str
    owner: str  # the API client that manages it, or "administrator" (accessd stream add)
    method: str  # push | poll
    endpoint_url: str | None
    authorization_set: bool
    events: list[str]  # short names of the events requested
    subject_format: str
    audience: list[str]
    status: str
    status_reason: str | None
    deliveries: dict[str, int]  # outbox rows by status
    created_at: dt.datetime


def _stream_row(s: SsfStream, counts: dict) -> StreamRow:
    return StreamRow(
        id=s.id,
        owner=s.client or "administrator",
        method="push" if s.delivery_method == ev.PUSH else "poll",
        endpoint_url=s.endpoint_url,
        authorization_set=bool(s.authorization_header),
        events=[ev.short_name(u) for u in (s.events_requested or [])],
        subject_format=s.subject_format,
        audience=list(s.audience or []),
        status=s.status,
        status_reason=s.status_reason,
        deliveries={k: counts.get(k, 0) for k in outbox.STATUSES},
        created_at=local(s.created_at),
    )


def list_streams(db) -> list[StreamRow]:
    """Every stream with its deliveries by status (never its authorization header)."""
    return [_stream_row(s, counts) for s, counts in streams.list_streams(db)]


def _checked_stream_id(stream_id) -> str:
    stream_id = checked_text(stream_id, "stream", 64)
    if stream_id is None:
        raise NotFound("no stream given")
    return stream_id


def stream(db, stream_id: str) -> StreamRow:
    stream_id = _checked_stream_id(stream_id)
    for row in list_streams(db):
        if row.id == stream_id:
            return row
    raise NotFound(f"no stream {stream_id!r}")


def set_stream_status(db, stream_id: str, status: str, actor: str, reason: str | None = None) -> StreamRow:
    """Pause a stream (its events are held) or enable it again (held events go out now)."""
    stream_id = _checked_stream_id(stream_id)
    if status not in STREAM_STATUSES:
        raise Invalid(f"status must be one of {', '.join(STREAM_STATUSES)}", pointer="status")
    reason = checked_text(reason, "reason")
    with db.session() as s:
        row = s.get(SsfStream, stream_id)
        if row is None:
            raise NotFound(f"no stream {stream_id!r}")
        if row.status == "disabled" and status == "paused":
            raise Conflict("the stream is disabled: enable it first")
        old = row.status
        row.status, row.status_reason, row.updated_at = status, reason, utcnow()
        audit.record(
            s,
            actor,
            "ssf.stream.status",
            f"ssf_stream:{row.id}",
            {"from": old, "to": status, "reason": reason, "dropped_events": 0},
        )
        if status == "enabled":
            outbox.wake_after_commit(s)  # held events go out now
    return stream(db, stream_id)


def remove_stream(db, stream_id: str, actor: str) -> None:
    """Delete a stream with its undelivered events (as ``accessd stream remove``)."""
    stream_id = _checked_stream_id(stream_id)
    with db.session() as s:
        if s.get(SsfStream, stream_id) is None:
            raise NotFound(f"no stream {stream_id!r}")
    streams.remove_stream(db, stream_id, actor)
