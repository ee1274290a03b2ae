"""Event streams: the SSF 1.0 §8.1 management API (configuration, status, subjects, verification)
and the administrator's streams (`accessd stream add|list|remove`). Flask-free: every function
takes the database, the calling receiver's client name and the decoded JSON body, and raises
:mod:`accessd.errors` (400 Invalid, 404 NotFound) that the web layer answers with. Reading the
members of a request and rendering a stream's configuration is :mod:`accessd.ssf.stream_config`.

Decisions where SSF 1.0 leaves a choice (docs/ssf.md says the same to receivers):

* A receiver is an API client with scope ``ssf``. A stream belongs to the client that created
  it; any other client gets 404 for it, as if it did not exist. Streams made with
  ``accessd stream add`` belong to no client and are invisible to the API.
* Several streams per receiver are allowed (each create answers a new ``stream_id``).
* ``aud`` is the receiver's client name (the CLI's ``--audience``, by default the endpoint's
  origin); it never changes.
* ``default_subjects`` is ``ALL``: a stream carries events about every employee. ``subjects:
  remove`` takes a person off the stream (a row in ``ssf_stream_subject``), ``subjects:add``
  puts them back. A subject accessd does not know is answered like a known one (200 / 204,
  nothing stored), so the API cannot be used to probe who is employed (SSF 1.0 §9.1).
* ``delivery.authorization_header`` is a secret: stored, sent with every push, never shown
  (not in any answer, log line, audit record or CLI output). Because a receiver cannot read it
  back, a PATCH or PUT whose delivery names the same method and ``endpoint_url`` without an
  ``authorization_header`` keeps the stored one; ``null`` (or ``""``) removes it; a new
  ``endpoint_url`` without one drops it -- a secret meant for one URL is never sent to another.
* Status ``paused`` holds events (delivered in order once enabled again); ``disabled`` drops
  the stream's undelivered events and queues none while disabled (SSF 1.0 §8.1.2).
* A verification event is queued like any other event (paused: held until enabled; disabled:
  refused with 400) and carries the receiver's ``state``.
* How requests are read (unknown members refused, the ``format`` member, ...) is listed in
  :mod:`accessd.ssf.stream_config`.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from accessd import audit
from accessd.errors import Invalid, NotFound
from accessd.models import Account, SsfOutbox, SsfStream, SsfStreamSubject, utcnow
from accessd.ssf import events as ev
from accessd.ssf import outbox
from accessd.ssf.stream_config import (
    KEEP,
    RECEIVER_SUPPLIED,
    TRANSMITTER_SUPPLIED,
    authorization_header,
    check_members,
    check_transmitter_supplied,
    delivered,
    description,
    endpoint_url,
    events_requested,
    parse_delivery,
    render,
    request_object,
    required_id,
    subject_format,
)

STATUSES = ("enabled", "paused", "disabled")


# -- the configuration endpoint ------------------------------------------------------------------


def create(db, client: str, body, issuer: str) -> dict:
    """POST: a new stream for ``client`` (201 with its configuration)."""
    body = request_object(body)
    check_members(body, RECEIVER_SUPPLIED, allowed_transmitter=("iss", "events_supported"))
    check_transmitter_supplied(body, {"iss": issuer, "events_supported": list(ev.SUPPORTED)})
    stream_id = uuid.uuid4().hex
    method, endpoint, header = parse_delivery(body.get("delivery"), issuer, stream_id, None)
    requested = events_requested(body.get("events_requested", []))
    fmt = subject_format(body.get("format", "email"))
    text = description(body.get("description"))
    with db.session() as s:
        stream = _insert(
            s,
            f"client:{client}",
            id=stream_id,
            client=client,
            audience=[client],
            delivery_method=method,
            endpoint_url=endpoint,
            authorization_header=header,
            events_requested=requested,
            subject_format=fmt,
            description=text,
        )
        return render(stream, issuer)


def read(db, client: str, stream_id: str | None, issuer: str):
    """GET: one stream's configuration, or (no ``stream_id``) a list of all of the client's."""
    with db.session() as s:
        if stream_id is not None:
            return render(owned(s, client, stream_id), issuer)
        rows = s.scalars(select(SsfStream).where(SsfStream.client == client).order_by(SsfStream.created_at))
        return [render(r, issuer) for r in rows]


def update(db, client: str, body, issuer: str) -> dict:
    """PATCH: change the Receiver-Supplied members present in ``body``; the rest stay."""
    return _change(db, client, body, issuer, replace=False)


def replace(db, client: str, body, issuer: str) -> dict:
    """PUT: ``body`` is the whole Receiver-Supplied configuration; what it lacks is removed."""
    return _change(db, client, body, issuer, replace=True)


def delete_stream(db, client: str, stream_id: str | None) -> None:
    """DELETE: the stream, its removed subjects and its events, delivered or not."""
    stream_id = required_id(stream_id)
    with db.session() as s:
        _delete(s, owned(s, client, stream_id), f"client:{client}")


def _change(db, client: str, body, issuer: str, *, replace: bool) -> dict:
    body = request_object(body)
    stream_id = required_id(body.get("stream_id"), "/stream_id")
    check_members(body, RECEIVER_SUPPLIED, allowed_transmitter=TRANSMITTER_SUPPLIED)
    if replace and "delivery" not in body:
        raise Invalid("delivery is required: a PUT carries the whole configuration", pointer="/delivery")
    with db.session() as s:
        stream = owned(s, client, stream_id)
        check_transmitter_supplied(body, render(stream, issuer))
        header_change = None
        if "delivery" in body:
            method, endpoint, header = parse_delivery(body["delivery"], issuer, stream.id, stream)
            if header is KEEP:
                header = stream.authorization_header if endpoint == stream.endpoint_url else None
            if header != stream.authorization_header:
                header_change = "set" if header else "removed"
            stream.delivery_method = method
            stream.endpoint_url = endpoint
            stream.authorization_header = header
        if replace or "events_requested" in body:
            stream.events_requested = events_requested(body.get("events_requested", []))
            stream.events_delivered = delivered(stream.events_requested)
        if replace or "description" in body:
            stream.description = description(body.get("description"))
        if replace or "format" in body:
            stream.subject_format = subject_format(body.get("format", "email"))
        stream.updated_at = utcnow()
        action = "ssf.stream.replace" if replace else "ssf.stream.update"
        _audit(s, f"client:{client}", action, stream, header_change=header_change)
        outbox.wake_after_commit(s)  # a push stream may have become deliverable
        return render(stream, issuer)


# -- status, subjects, verification -------------------------------------------------------------


def status(db, client: str, stream_id: str | None) -> dict:
    """GET the status endpoint: ``{stream_id, status[, reason]}``."""
    stream_id = required_id(stream_id)
    with db.session() as s:
        return _status(owned(s, client, stream_id))


def set_status(db, client: str, body) -> dict:
    """POST the status endpoint: enable, pause or disable the stream (see the module docstring)."""
    body = request_object(body)
    check_members(body, ("stream_id", "status", "reason"))
    stream_id = required_id(body.get("stream_id"), "/stream_id")
    new = body.get("status")
    if new not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", pointer="/status")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
        raise Invalid("reason must be a text of at most 200 characters", pointer="/reason")
    with db.session() as s:
        stream = owned(s, client, stream_id)
        old = stream.status
        stream.status, stream.status_reason, stream.updated_at = new, reason, utcnow()
        dropped = 0
        if new == "disabled":
            dropped = s.execute(
                delete(SsfOutbox).where(SsfOutbox.stream_id == stream.id, SsfOutbox.status == "pending")
            ).rowcount
        audit.record(
            s,
            f"client:{client}",
            "ssf.stream.status",
            f"ssf_stream:{stream.id}",
            {"from": old, "to": new, "reason": reason, "dropped_events": dropped},
        )
        if new == "enabled":
            outbox.wake_after_commit(s)  # held events go out now
        return _status(stream)


def add_subject(db, client: str, body, issuer: str) -> None:
    """POST subjects:add: the person is on the stream again (the default: ALL)."""
    if isinstance(body, dict) and "verified" in body and not isinstance(body["verified"], bool):
        raise Invalid("verified must be true or false", pointer="/verified")
    with db.session() as s:
        stream_id, subjects = _subject_request(s, client, body, issuer, ("stream_id", "subject", "verified"))
        if subjects:
            s.execute(
                delete(SsfStreamSubject).where(
                    SsfStreamSubject.stream_id == stream_id, SsfStreamSubject.subject_id.in_(subjects)
                )
            )
            audit.record(
                s, f"client:{client}", "ssf.subject.add", f"ssf_stream:{stream_id}", {"subjects": subjects}
            )


def remove_subject(db, client: str, body, issuer: str) -> None:
    """POST subjects:remove: no more events about this person on this stream."""
    with db.session() as s:
        stream_id, subjects = _subject_request(s, client, body, issuer, ("stream_id", "subject"))
        subject = body["subject"]
        if subject.get("format") == "opaque" and subject.get("id") == stream_id:
            raise Invalid("the stream's own subject cannot be removed (SSF 1.0 §8.1.4)", pointer="/subject")
        known = set(
            s.scalars(select(SsfStreamSubject.subject_id).where(SsfStreamSubject.stream_id == stream_id))
        )
        new = [subject_id for subject_id in subjects if subject_id not in known]
        for subject_id in new:
            s.add(SsfStreamSubject(stream_id=stream_id, subject_id=subject_id))
        if new:
            audit.record(
                s, f"client:{client}", "ssf.subject.remove", f"ssf_stream:{stream_id}", {"subjects": new}
            )


def verify(db, client: str, body, issuer: str) -> None:
    """POST the verification endpoint: queue a verification SET carrying ``state``."""
    body = request_object(body)
    check_members(body, ("stream_id", "state"))
    stream_id = required_id(body.get("stream_id"), "/stream_id")
    state = body.get("state")
    if state is not None and (not isinstance(state, str) or len(state) > 1000):
        raise Invalid("state must be a text of at most 1000 characters", pointer="/state")
    with db.session() as s:
        stream = owned(s, client, stream_id)
        if stream.status == "disabled":
            raise Invalid("the stream is disabled: enable it first (POST the status endpoint)", pointer="")
        outbox.enqueue_verification(s, stream, state, issuer)


# -- the administrator's streams (accessd stream ...) -------------------------------------------


def add_push_stream(
    db,
    url: str,
    event_names: list[str],
    *,
    audience: str | None,
    fmt: str,
    authorization: str | None,
    actor: str,
) -> SsfStream:
    """A push stream for a receiver that cannot call the management API (no client owns it)."""
    unknown = [n for n in event_names if n not in ev.EVENT_TYPES]
    if unknown or not event_names:
        what = f"unknown event {', '.join(map(repr, unknown))}" if unknown else "no events named"
        raise Invalid(f"{what}; name some of: {', '.join(ev.EVENT_TYPES)}")
    endpoint = endpoint_url(url, "URL")
    header = authorization_header(authorization, "--authorization") if authorization else None
    parts = urlsplit(endpoint)
    fmt = subject_format(fmt, "--format")
    with db.session() as s:
        return _insert(
            s,
            actor,
            id=uuid.uuid4().hex,
            client=None,
            audience=[audience or f"{parts.scheme}://{parts.netloc}"],
            delivery_method=ev.PUSH,
            endpoint_url=endpoint,
            authorization_header=header,
            events_requested=[ev.EVENT_TYPES[n] for n in dict.fromkeys(event_names)],
            subject_format=fmt,
            description=None,
        )


def remove_stream(db, stream_id: str, actor: str) -> None:
    """`accessd stream remove`: any stream, whoever made it (as DELETE does)."""
    with db.session() as s:
        stream = s.get(SsfStream, stream_id)
        if stream is None:
            raise NotFound(f"no stream {stream_id!r}; `accessd stream list` shows them")
        _delete(s, stream, actor)


def list_streams(db) -> list[tuple[SsfStream, dict]]:
    """Every stream with its count of deliveries per status (for `accessd stream list`)."""
    with db.session() as s:
        counts: dict[str, dict] = {}
        for stream_id, state, n in s.execute(
            select(SsfOutbox.stream_id, SsfOutbox.status, func.count()).group_by(
                SsfOutbox.stream_id, SsfOutbox.status
            )
        ):
            counts.setdefault(stream_id, {})[state] = n
        rows = list(s.scalars(select(SsfStream).order_by(SsfStream.created_at)))
        return [(r, counts.get(r.id, {})) for r in rows]


# -- helpers -----------------------------------------------------------------------------------


def owned(session: Session, client: str, stream_id: str) -> SsfStream:
    """``client``'s stream ``stream_id``; NotFound (404) for a stream of anyone else, too."""
    stream = session.get(SsfStream, stream_id)
    if stream is None or stream.client != client:
        raise NotFound(f"no stream {stream_id!r} for this receiver", pointer="/stream_id")
    return stream


def _insert(session: Session, actor: str, **columns) -> SsfStream:
    """A new enabled stream of ``columns`` (without the delivered events: they follow from the
    requested ones), stored and audited."""
    now = utcnow()
    stream = SsfStream(
        **columns,
        events_delivered=delivered(columns["events_requested"]),
        status="enabled",
        created_at=now,
        updated_at=now,
    )
    session.add(stream)
    session.flush()
    header_change = "set" if stream.authorization_header else None
    _audit(session, actor, "ssf.stream.create", stream, header_change=header_change)
    return stream


def _delete(session: Session, stream: SsfStream, actor: str) -> None:
    _audit(session, actor, "ssf.stream.delete", stream)
    session.execute(delete(SsfOutbox).where(SsfOutbox.stream_id == stream.id))
    session.execute(delete(SsfStreamSubject).where(SsfStreamSubject.stream_id == stream.id))
    session.delete(stream)


def _status(stream: SsfStream) -> dict:
    body = {"stream_id": stream.id, "status": stream.status}
    if stream.status_reason:
        body["reason"] = stream.status_reason
    return body


def _subject_request(
    session: Session, client: str, body, issuer: str, allowed: tuple
) -> tuple[str, list[str]]:
    """The stream (owned by ``client``) and the subject ids a subjects:add/remove body names."""
    body = request_object(body)
    check_members(body, allowed)
    stream_id = required_id(body.get("stream_id"), "/stream_id")
    subject = body.get("subject")
    if not isinstance(subject, dict) or not isinstance(subject.get("format"), str):
        raise Invalid("subject must be a subject identifier object with a format", pointer="/subject")
    owned(session, client, stream_id)
    return stream_id, resolve_subject(session, subject, issuer)


def resolve_subject(session: Session, subject: dict, issuer: str) -> list[str]:
    """The subject ids of the accounts a subject identifier names (maybe none). ``email``
    compares case-insensitively; ``iss_sub`` must name accessd as issuer."""
    fmt = subject["format"]
    members = {"email": ("email",), "opaque": ("id",), "iss_sub": ("iss", "sub")}
    if fmt not in members:
        raise Invalid(
            f"subject format {fmt!r} is not supported; use {', '.join(members)}", pointer="/subject/format"
        )
    for member in members[fmt]:
        if not isinstance(subject.get(member), str) or not subject[member]:
            raise Invalid(f"a {fmt} subject needs {member}", pointer=f"/subject/{member}")
    if fmt == "email":
        query = select(Account.subject_id).where(func.lower(Account.email) == subject["email"].lower())
    elif fmt == "opaque":
        query = select(Account.subject_id).where(Account.subject_id == subject["id"])
    elif subject["iss"] != issuer:
        return []
    else:
        query = select(Account.subject_id).where(Account.subject_id == subject["sub"])
    return list(session.scalars(query))


def _audit(session: Session, actor: str, action: str, stream: SsfStream, header_change=None) -> None:
    """An audit record of a stream's configuration (the authorization header only as set/removed)."""
    detail = {
        "delivery_method": stream.delivery_method,
        "endpoint_url": stream.endpoint_url,
        "events_delivered": [ev.short_name(u) for u in stream.events_delivered],
        "format": stream.subject_format,
        "audience": stream.audience,
    }
    if header_change:
        detail["authorization_header"] = header_change
    audit.record(session, actor, action, f"ssf_stream:{stream.id}", detail)
