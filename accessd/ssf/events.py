"""The words of Shared Signals: event types, delivery methods, subject formats, and the claims of a
Security Event Token (RFC 8417 as profiled by SSF 1.0 §4).

A SET carries ``iss``, ``aud``, ``iat``, ``jti`` (a random UUID in hex), ``txn`` (the same for the
events of one change: a departure's ``session-revoked`` and ``account-disabled`` share it),
``sub_id`` (the subject, top-level as SSF 1.0 requires; never ``sub``, never ``exp``) and
``events`` with exactly one event. Its header is ``{"typ": "secevent+jwt", "alg": "ES256",
"kid": ...}``.

Event members (all optional in their specifications; what accessd puts in):

* CAEP ``session-revoked``: ``event_timestamp`` (the change, seconds since the epoch),
  ``reason_admin`` (``{"en": <the reason recorded with the change>}``), ``initiating_entity``
  when the trigger is known (``admin`` for the CLI and the admin UI, ``policy`` for the stale
  account sweep, ``system`` for the directory, HR, SCIM and the scheduler).
* RISC ``account-disabled``: RISC's ``reason`` admits only ``hijacking`` and ``bulk-account``,
  neither of which a departure or a leave is, so it is left out; the recorded reason travels as
  ``reason_admin`` (an additional member, SSF 1.0 §4.2.3), with ``event_timestamp``.
* RISC ``account-enabled``: ``event_timestamp`` and ``reason_admin``.
* CAEP ``token-claims-change``: ``claims: {"roles": [...]}`` (the roles the person holds now,
  sorted), ``event_timestamp``.
* SSF ``verification``: ``state`` when the receiver gave one; its ``sub_id`` is the stream.
"""

from __future__ import annotations

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"

#: short name (as `accessd stream add --events` and signals.CHANGES name them) -> event type URI
EVENT_TYPES = {
    "session-revoked": CAEP + "session-revoked",
    "account-disabled": RISC + "account-disabled",
    "account-enabled": RISC + "account-enabled",
    "token-claims-change": CAEP + "token-claims-change",
}
SUPPORTED = tuple(EVENT_TYPES.values())  # events_supported, in this order
VERIFICATION = SSF + "verification"
SHORT_NAMES = {uri: name for name, uri in EVENT_TYPES.items()} | {VERIFICATION: "verification"}

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
DELIVERY_METHODS = (PUSH, POLL)

#: the subject identifier formats (RFC 9493) a stream may ask for
SUBJECT_FORMATS = ("email", "opaque", "iss_sub")

#: the media type of a SET (RFC 8417 §7.2), and its JOSE "typ"
MEDIA_TYPE = "application/secevent+jwt"
TYP = "secevent+jwt"

_INITIATING = {"cli": "admin", "admin": "admin", "sweep": "policy"}


def short_name(uri: str) -> str:
    return SHORT_NAMES.get(uri, uri)


def subject_id(fmt: str, *, issuer: str, subject: str, email: str | None) -> dict:
    """The ``sub_id`` of a person in ``fmt``: ``email`` (the account's e-mail), ``opaque`` (its
    subject id) or ``iss_sub`` (accessd as issuer, the subject id as ``sub``). An account without
    an e-mail address is named ``iss_sub`` on an e-mail stream: the receiver still learns of the
    change, in a format it can tell apart."""
    if fmt == "email" and email:
        return {"format": "email", "email": email}
    if fmt == "opaque":
        return {"format": "opaque", "id": subject}
    return {"format": "iss_sub", "iss": issuer, "sub": subject}


def event_payload(name: str, *, at: int, reason: str | None, source: str | None, roles=()) -> dict:
    """The member of ``events`` for the event ``name`` (see the module docstring)."""
    payload: dict = {"event_timestamp": at}
    if name == "token-claims-change":
        payload["claims"] = {"roles": sorted(roles)}
    if reason:
        payload["reason_admin"] = {"en": reason}
    if name == "session-revoked" and source:
        payload["initiating_entity"] = _INITIATING.get(str(source), "system")
    return payload


def claims(
    *, issuer: str, audience: list[str], jti: str, iat: int, txn: str, sub_id: dict, event: str, payload: dict
) -> dict:
    """The claims of one SET: one event, ``aud`` a string when the stream has one audience."""
    return {
        "iss": issuer,
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "iat": iat,
        "jti": jti,
        "txn": txn,
        "sub_id": sub_id,
        "events": {event: payload},
    }
