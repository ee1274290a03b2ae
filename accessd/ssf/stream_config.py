"""A stream's configuration as the SSF 1.0 management API reads and shows it: checking the
Receiver-Supplied members of a request (and the shape every management request shares: a JSON
object, no unknown member, a ``stream_id``) and rendering a stored stream. No database access;
:mod:`accessd.ssf.streams` does the operations. Every check raises Invalid (400) with a pointer.

Decisions where SSF 1.0 leaves a choice (docs/ssf.md says the same to receivers):

* Unknown members of a request are refused (400 naming them) rather than ignored, so that a
  misspelt ``events_requested`` does not silently make a stream that delivers nothing.
* Transmitter-Supplied members may be sent back but must match what the transmitter shows
  (``aud`` as a string or a list of that one string alike).
* No ``delivery`` means poll; a poll stream's ``endpoint_url`` is the transmitter's.
* The subject format of ``sub_id`` is a stream property ``format`` (``email``, default;
  ``opaque``: the subject id; ``iss_sub``: accessd's issuer and the subject id) -- a
  Receiver-Supplied member SSF 1.0 does not define (earlier drafts did).
* ``delivery.authorization_header`` is never rendered; it must be one line of printable ASCII.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from accessd.errors import Invalid
from accessd.models import SsfStream
from accessd.ssf import events as ev

RECEIVER_SUPPLIED = ("events_requested", "delivery", "description", "format")
TRANSMITTER_SUPPLIED = ("stream_id", "iss", "aud", "events_supported", "events_delivered")
_DELIVERY_MEMBERS = ("method", "endpoint_url", "authorization_header")
MAX_DESCRIPTION = 1000
MAX_EVENTS_REQUESTED = 100
MAX_HEADER = 4000
KEEP = object()  # from parse_delivery: "keep the stored authorization header"


def poll_url(issuer: str, stream_id: str) -> str:
    """Where a poll stream's receiver polls (unique per stream, SSF 1.0 §6.1.2)."""
    return f"{issuer}/ssf/poll/{stream_id}"


def render(stream: SsfStream, issuer: str) -> dict:
    """The stream configuration as the API shows it (never the authorization header)."""
    delivery = {"method": stream.delivery_method}
    delivery["endpoint_url"] = (
        poll_url(issuer, stream.id) if stream.delivery_method == ev.POLL else stream.endpoint_url
    )
    config = {
        "stream_id": stream.id,
        "iss": issuer,
        "aud": stream.audience[0] if len(stream.audience) == 1 else list(stream.audience),
        "delivery": delivery,
        "events_supported": list(ev.SUPPORTED),
        "events_requested": list(stream.events_requested),
        "events_delivered": list(stream.events_delivered),
        "format": stream.subject_format,
    }
    if stream.description:
        config["description"] = stream.description
    return config


# -- the shape of a request ---------------------------------------------------------------------


def request_object(body) -> dict:
    """``body`` if it is a JSON object."""
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object", pointer="")
    return body


def check_members(body: dict, allowed: tuple, allowed_transmitter: tuple = ()) -> None:
    """Refuse a member neither in ``allowed`` nor in ``allowed_transmitter``, naming what is."""
    unknown = [k for k in body if k not in allowed and k not in allowed_transmitter]
    if unknown:
        raise Invalid(
            f"unknown member {', '.join(map(repr, unknown))}; this request takes "
            f"{', '.join(allowed + tuple(m for m in allowed_transmitter if m not in allowed))}",
            pointer=f"/{unknown[0]}",
        )


def check_transmitter_supplied(body: dict, expected: dict) -> None:
    """Transmitter-Supplied members may be present but must match (SSF 1.0 §8.1.1.3)."""
    for name in TRANSMITTER_SUPPLIED:
        if name not in body or name not in expected:
            continue
        given, wanted = body[name], expected[name]
        if name == "aud":  # a string and a list of that one string are the same audience
            given, wanted = _as_list(given), _as_list(wanted)
        if given != wanted:
            raise Invalid(
                f"{name} is set by the transmitter and must be {expected[name]!r} (or left out)",
                pointer=f"/{name}",
            )


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def required_id(value, pointer: str = "/query/stream_id") -> str:
    """``value`` as a stream id (a query parameter unless ``pointer`` says otherwise)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Invalid("stream_id is required (the id the stream was created with)", pointer=pointer)
    return value


# -- the Receiver-Supplied members --------------------------------------------------------------


def parse_delivery(delivery, issuer: str, stream_id: str, current: SsfStream | None):
    """(method, endpoint_url, authorization header, None or :data:`KEEP`) from a request's
    ``delivery``; no ``delivery`` means poll (SSF 1.0 §8.1.1.1). KEEP only when changing
    ``current`` with a push delivery that leaves the header out."""
    if delivery is None:
        delivery = {"method": ev.POLL}
    if not isinstance(delivery, dict):
        raise Invalid("delivery must be an object with a method", pointer="/delivery")
    unknown = [k for k in delivery if k not in _DELIVERY_MEMBERS]
    if unknown:
        raise Invalid(
            f"unknown member {unknown[0]!r} in delivery; it takes {', '.join(_DELIVERY_MEMBERS)}",
            pointer=f"/delivery/{unknown[0]}",
        )
    method = delivery.get("method")
    if method not in ev.DELIVERY_METHODS:
        raise Invalid(
            f"delivery.method must be {ev.PUSH} (push) or {ev.POLL} (poll)", pointer="/delivery/method"
        )
    if method == ev.POLL:
        url = delivery.get("endpoint_url")
        if url is not None and url != poll_url(issuer, stream_id):
            raise Invalid(
                "a poll stream's endpoint_url is set by the transmitter; leave it out",
                pointer="/delivery/endpoint_url",
            )
        if delivery.get("authorization_header") is not None:
            raise Invalid(
                "authorization_header is for push delivery only", pointer="/delivery/authorization_header"
            )
        return method, None, None
    endpoint = endpoint_url(delivery.get("endpoint_url"), "delivery.endpoint_url")
    if "authorization_header" not in delivery:
        return method, endpoint, KEEP if current is not None else None
    raw = delivery["authorization_header"]
    return method, endpoint, authorization_header(raw, "delivery.authorization_header") if raw else None


def endpoint_url(url, name: str) -> str:
    """A push receiver's URL: absolute http(s), no fragment, no credentials."""
    pointer = "/delivery/endpoint_url"
    if not isinstance(url, str) or not url:
        raise Invalid(f"{name} is required for push delivery: the receiver's URL", pointer=pointer)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or len(url) > 2000:
        raise Invalid(f"{name} must be an absolute http(s) URL without a fragment", pointer=pointer)
    if parts.username or parts.password:
        raise Invalid(f"{name} must not carry credentials; use authorization_header", pointer=pointer)
    return url


def authorization_header(value, name: str) -> str:
    """An Authorization header value: printable ASCII, no line breaks (no header injection)."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_HEADER
        or not value.isascii()
        or not value.isprintable()
        or not value.strip()
    ):
        raise Invalid(
            f"{name} must be one line of printable ASCII of at most {MAX_HEADER} characters",
            pointer="/delivery/authorization_header",
        )
    return value.strip()


def events_requested(value) -> list[str]:
    """The requested event type URIs, each once, in the order given."""
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 500 for v in value):
        raise Invalid("events_requested must be a list of event type URIs", pointer="/events_requested")
    if len(value) > MAX_EVENTS_REQUESTED:
        raise Invalid(
            f"events_requested may list at most {MAX_EVENTS_REQUESTED} URIs", pointer="/events_requested"
        )
    return list(dict.fromkeys(value))


def delivered(requested: list[str]) -> list[str]:
    """What the transmitter sends: supported and requested (unknown URIs are ignored)."""
    return [uri for uri in ev.SUPPORTED if uri in requested]


def subject_format(value, name: str = "format") -> str:
    """One of :data:`accessd.ssf.events.SUBJECT_FORMATS`."""
    if value not in ev.SUBJECT_FORMATS:
        raise Invalid(f"{name} must be one of {', '.join(ev.SUBJECT_FORMATS)}", pointer="/format")
    return value


def description(value) -> str | None:
    """The receiver's description, cut to :data:`MAX_DESCRIPTION` characters; "" is none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("description must be a text", pointer="/description")
    return value[:MAX_DESCRIPTION] or None  # SSF 1.0 lets the transmitter truncate it
