"""Poll delivery (RFC 8936): a receiver POSTs to its stream's poll endpoint and gets the pending
SETs; what it acknowledges is delivered.

Request members (all optional): ``ack`` (jtis received and kept: those rows become delivered),
``setErrs`` (jti -> ``{"err", "description"}``: those rows become failed, shown by `accessd
events` with the error), ``maxEvents`` (at most this many SETs; 0 = acknowledge only; default
and cap ``ssf.max_poll_events``), ``returnImmediately`` (default false: a long poll, held up to
``ssf.poll_wait_seconds`` until an event is queued).

Answer: ``{"sets": {jti: SET, ...}, "moreAvailable": bool}``, oldest first. A SET is returned
again by every poll until it is acknowledged or reported (at-least-once); acknowledging a jti
that is not pending on this stream changes nothing. A paused stream answers no SETs (they are
held); a disabled one has none. Every SET handed out counts as an attempt.

A long poll holds a web worker: with the default sync workers, each receiver waiting in a long
poll occupies one (`accessd serve --threads N` gives gthread workers); ``poll_wait_seconds = 0``
answers every poll at once.
"""

from __future__ import annotations

import time

from sqlalchemy import update

from accessd.errors import Invalid
from accessd.models import SsfOutbox, SsfStream, utcnow
from accessd.ssf import delivery, outbox, streams
from accessd.ssf import events as ev

_MEMBERS = ("ack", "setErrs", "maxEvents", "returnImmediately")


def poll(db, client: str, stream_id: str, body, settings) -> dict:
    """Apply ``ack`` / ``setErrs``, then answer the pending SETs of ``client``'s poll stream."""
    ack, errors, limit, immediately = _parse(body, settings.max_poll_events)
    with db.session() as s:
        stream = streams.owned(s, client, stream_id)
        if stream.delivery_method != ev.POLL:
            raise Invalid("this stream delivers by push (RFC 8935); it cannot be polled", pointer="")
        now = utcnow()
        if ack:
            s.execute(
                update(SsfOutbox)
                .where(
                    SsfOutbox.stream_id == stream_id, SsfOutbox.status == "pending", SsfOutbox.jti.in_(ack)
                )
                .values(status="delivered", delivered_at=now, last_error=None),
                execution_options={"synchronize_session": False},
            )
        for jti, (err, description) in errors.items():
            s.execute(
                update(SsfOutbox)
                .where(SsfOutbox.stream_id == stream_id, SsfOutbox.status == "pending", SsfOutbox.jti == jti)
                .values(status="failed", last_error=f"receiver: {err}: {description}"[:300]),
                execution_options={"synchronize_session": False},
            )
    if limit == 0:
        return {"sets": {}, "moreAvailable": _waiting(db, stream_id, 0)[1]}
    deadline = time.monotonic() + (0 if immediately else settings.poll_wait_seconds)
    while True:
        rows, more = _waiting(db, stream_id, limit)
        left = deadline - time.monotonic()
        if rows or left <= 0:
            return {"sets": {r.jti: r.token for r in rows}, "moreAvailable": more}
        # woken at once by an event queued in this process; others are found at the next look
        delivery.wait_for_events(min(left, settings.outbox_poll_seconds))


def _waiting(db, stream_id: str, limit: int) -> tuple[list, bool]:
    """Up to ``limit`` pending rows of an enabled stream (counted as handed out), and whether
    there are more."""
    with db.session() as s:
        stream = s.get(SsfStream, stream_id)
        if stream is None or stream.status != "enabled":
            return [], False
        rows = outbox.pending_for(s, stream_id, limit + 1)
        handed = rows[:limit]
        if handed:
            s.execute(
                update(SsfOutbox)
                .where(SsfOutbox.id.in_([r.id for r in handed]))
                .values(attempts=SsfOutbox.attempts + 1),
                execution_options={"synchronize_session": False},
            )
        return handed, len(rows) > limit


def _parse(body, cap: int) -> tuple[list[str], dict, int, bool]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Invalid("the poll request must be a JSON object (RFC 8936 §2.1)", pointer="")
    unknown = [k for k in body if k not in _MEMBERS]
    if unknown:
        raise Invalid(
            f"unknown member {unknown[0]!r}; a poll takes {', '.join(_MEMBERS)}", pointer=f"/{unknown[0]}"
        )
    ack = body.get("ack", [])
    if not isinstance(ack, list) or not all(isinstance(j, str) and len(j) <= 64 for j in ack):
        raise Invalid("ack must be a list of jti strings", pointer="/ack")
    errors = {}
    raw = body.get("setErrs", {})
    if not isinstance(raw, dict):
        raise Invalid("setErrs must be an object of jti -> {err, description}", pointer="/setErrs")
    for jti, value in raw.items():
        if (
            len(jti) > 64
            or not isinstance(value, dict)
            or not isinstance(value.get("err"), str)
            or not isinstance(value.get("description", ""), str)
        ):
            raise Invalid(
                'each setErrs member must be {"err": ..., "description": ...}', pointer=f"/setErrs/{jti}"
            )
        errors[jti] = (value["err"][:50], value.get("description", "")[:200])
    limit = body.get("maxEvents", cap)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise Invalid("maxEvents must be a whole number from 0", pointer="/maxEvents")
    immediately = body.get("returnImmediately", False)
    if not isinstance(immediately, bool):
        raise Invalid("returnImmediately must be true or false", pointer="/returnImmediately")
    return ack, errors, min(limit, cap), immediately
