"""An HR delivery read: its Standard Webhooks signature verified and its body checked into an
:class:`Event`. Nothing here touches the database; :mod:`accessd.lifecycle.hr_events` applies
the event (and its docstring states the whole contract of ``POST /hr/v1/events``).

**Who sent it.** Each HR source has a name and a Standard Webhooks secret (``whsec_`` + base64)
in ``hr.sources`` (from the environment only). A sender posts to ``/hr/v1/events/<name>``; the
signature must be made with that source's secret. ``/hr/v1/events`` without a name is accepted
too: the source is the one whose secret the signature verifies with (no two sources may share a
secret, ``accessd config check`` refuses it), so the signature alone proves who sent it.

**Verification** is the ``standardwebhooks`` library's: headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds, at most 5 minutes from the system clock either way) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, several separated by
spaces while a secret is rotated). It runs before the body is read at all.

**The body** is a JSON object with ``type``, ``employee_number``, an optional ``reason`` and the
members of its type: ``effective`` for a termination, the profile members (:data:`PROFILE`) and
``start_date`` for a hire or rehire. Anything else -- NUL characters, lone surrogates, ``1e999``,
deep nesting, an unknown member or type -- is refused (400 ``invalid``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from standardwebhooks import Webhook, WebhookVerificationError

from accessd import accounts
from accessd.errors import Invalid, NotFound, Unauthorized, Unavailable
from accessd.models import Account
from accessd.pdp.requests import kind, parse_body

TYPES = ("hire", "termination", "leave", "return", "rehire")
#: profile members of hire and rehire: account columns under their own names
PROFILE = ("username", "display_name", "email", "department", "title", "region", "manager")
_ALLOWED = {
    "hire": {*PROFILE, "start_date"},
    "rehire": {*PROFILE, "start_date"},
    "termination": {"effective"},
    "leave": set(),
    "return": set(),
}
_COMMON = {"type", "employee_number", "reason"}
MAX_ID = 120  # webhook-id; "<source>:<id>" must fit lifecycle_event.event_ref (200)
MAX_REASON = 200
_SECONDS = re.compile(r"[0-9]{1,10}")  # up to the year 2286: the library's parse cannot overflow
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_YEARS = (1970, 2999)
_EFFECTIVE = "a date (YYYY-MM-DD) or a date and time with an offset (2026-12-31T17:00:00+01:00)"


class InvalidSignature(Unauthorized, code="invalid_signature"):
    """Missing or malformed webhook headers, or a signature no configured secret made."""


class OutsideWindow(Unauthorized, code="timestamp_outside_window"):
    """``webhook-timestamp`` more than 5 minutes from now: too old to trust (a replay) or too new."""


class UnknownSource(NotFound, code="unknown_source"):
    """The path names an HR source that ``hr.sources`` does not configure."""


@dataclass
class Event:
    """A verified, checked HR event."""

    source: str
    webhook_id: str
    digest: str  # SHA-256 of the body: a replayed id must carry the same body
    type: str
    employee_number: str
    reason: str | None = None
    effective: dt.date | dt.datetime | None = None  # termination only
    profile: dict = field(default_factory=dict)  # hire, rehire: account columns -> values

    @property
    def actor(self) -> str:
        return f"hr:{self.source}"

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.webhook_id}"


# --- verification ------------------------------------------------------------------------------


def verify(sources: Mapping[str, str], source: str | None, headers: Mapping[str, str], body: bytes) -> str:
    """The name of the source that signed ``body``: ``source`` itself (its secret must verify),
    or, when None, the configured source whose secret does. Raises UnknownSource,
    InvalidSignature or OutsideWindow; reads nothing of the body but its bytes."""
    if source is not None and source not in sources:
        raise UnknownSource(f"no HR source named {source[:64]!r} is configured (hr.sources)")
    if not sources:
        raise UnknownSource("no HR source is configured (hr.sources)")
    wanted = {k: headers.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    missing = [k for k, v in wanted.items() if not v]
    if missing:
        raise InvalidSignature(
            f"missing header {', '.join(missing)}: sign events the Standard Webhooks way",
            pointer=f"/headers/{missing[0]}",
        )
    webhook_id = wanted["webhook-id"]
    if len(webhook_id) > MAX_ID or not (webhook_id.isascii() and webhook_id.isprintable()):
        raise InvalidSignature(
            f"webhook-id must be 1-{MAX_ID} printable ASCII characters", pointer="/headers/webhook-id"
        )
    if not _SECONDS.fullmatch(wanted["webhook-timestamp"]):
        raise InvalidSignature(
            "webhook-timestamp must be whole seconds since 1970 (UTC)", pointer="/headers/webhook-timestamp"
        )
    candidates = [source] if source is not None else sorted(sources)
    for name in candidates:
        hook = _webhook(name, sources[name])
        try:
            hook.verify(body, wanted, json_parse=False)
            return name
        except WebhookVerificationError as exc:
            if "timestamp" in str(exc):  # "Message timestamp too old" / "too new"
                raise OutsideWindow(
                    "webhook-timestamp is more than 5 minutes from now (a replay, or a wrong clock)",
                    pointer="/headers/webhook-timestamp",
                ) from None
        except UnicodeDecodeError:
            raise Invalid("the request body is not UTF-8 text", pointer="") from None
        except ValueError:  # a signature without "v1,", bad base64, a secret that is not base64
            raise InvalidSignature(
                "webhook-signature is malformed: expected 'v1,<base64>' (space-separated)",
                pointer="/headers/webhook-signature",
            ) from None
    whose = f"HR source {source!r}'s secret" if source is not None else "any configured HR source's secret"
    raise InvalidSignature(f"the signature was not made with {whose}", pointer="/headers/webhook-signature")


def _webhook(name: str, secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except Exception:  # noqa: BLE001 - not base64, empty: never echo the secret or its error
        raise Unavailable(
            f"HR source {name!r} has no usable secret; `accessd config check` says what is wrong",
            retry_after=60,
        ) from None


# --- the body ----------------------------------------------------------------------------------


def parse(source: str, webhook_id: str, body: bytes) -> Event:
    """The body as an :class:`Event`; Invalid (with a pointer) naming the first thing wrong."""
    data = parse_body(body)
    etype = _text(data, "type", 32, required=True)
    if etype not in TYPES:
        raise Invalid(f"/type must be one of {', '.join(TYPES)}, not {etype[:40]!r}", pointer="/type")
    unknown = sorted(set(data) - _COMMON - _ALLOWED[etype])
    if unknown:
        name = unknown[0][:64]
        raise Invalid(f"a {etype} event has no member {name!r}", pointer=f"/{name}")
    event = Event(
        source=source,
        webhook_id=webhook_id,
        digest=hashlib.sha256(body).hexdigest(),
        type=etype,
        employee_number=_text(data, "employee_number", 64, required=True),
        reason=_text(data, "reason", MAX_REASON),
    )
    if etype == "termination":
        event.effective = _effective(data.get("effective"))
    for name in PROFILE:
        if name in data:
            event.profile[name] = _text(data, name, Account.__table__.c[name].type.length)
    if "start_date" in data:
        event.profile["start_date"] = _date_member(data["start_date"], "/start_date")
    return event


def _text(data: dict, name: str, max_len: int, required: bool = False) -> str | None:
    # not pdp.requests.text: a blank value is refused, and the account columns' own check
    # (accounts.check_text: control characters, length) gives the message
    value, ptr = data.get(name), f"/{name}"
    if value is None:
        if required:
            raise Invalid(f"{ptr} is required", pointer=ptr)
        return None
    if not isinstance(value, str):
        raise Invalid(f"{ptr} must be a string, not {kind(value)}", pointer=ptr)
    if not value.strip():
        raise Invalid(f"{ptr} must not be empty", pointer=ptr)
    try:
        return accounts.check_text(ptr, value, max_len)
    except Invalid as exc:
        raise Invalid(exc.message, pointer=ptr) from None


def _date_member(value, ptr: str) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid(f"{ptr} must be a date (YYYY-MM-DD)", pointer=ptr)
    return _in_range(dt.date.fromisoformat, value, ptr)


def _effective(value) -> dt.date | dt.datetime | None:
    """None (now), a date (the last working day) or an aware datetime (the moment)."""
    ptr = "/effective"
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{ptr} must be {_EFFECTIVE}, not {kind(value)}", pointer=ptr)
    if _DATE.fullmatch(value):
        return _in_range(dt.date.fromisoformat, value, ptr)
    if not _MOMENT.fullmatch(value):
        hint = " (a time needs its offset, e.g. +01:00 or Z)" if "T" in value.upper() else ""
        raise Invalid(f"{ptr} must be {_EFFECTIVE}{hint}", pointer=ptr)
    return _in_range(lambda v: dt.datetime.fromisoformat(v.upper().replace("Z", "+00:00")), value, ptr)


def _in_range(convert, value: str, ptr: str):
    try:
        out = convert(value)
    except ValueError:
        raise Invalid(f"{ptr}: {value!r} is not a real date or time", pointer=ptr) from None
    if not _YEARS[0] <= out.year <= _YEARS[1]:
        raise Invalid(f"{ptr} must be between the years {_YEARS[0]} and {_YEARS[1]}", pointer=ptr)
    return out
