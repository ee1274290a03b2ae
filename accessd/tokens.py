"""API tokens for applications: created once, stored only as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.errors import Conflict, Invalid, NotFound
from accessd.models import ApiClient, utcnow

SCOPES = ("decide", "admin", "hr")
PREFIX = "acd_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str, scope: str) -> str:
    """Create a client and return its token (the only time it is visible)."""
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if not name or len(name) > 200:
        raise Invalid("name must be 1-200 characters")
    if session.scalar(select(ApiClient).where(ApiClient.name == name)) is not None:
        raise Conflict(f"a client named {name!r} already exists")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiClient(name=name, scope=scope, token_hash=hash_token(token)))
    session.flush()
    return token


def revoke(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise NotFound(f"no client named {name!r}")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
    return client


def lookup(session: Session, token: str) -> ApiClient | None:
    """The active client owning ``token``, or None."""
    client = session.scalar(select(ApiClient).where(ApiClient.token_hash == hash_token(token)))
    if client is None or client.revoked_at is not None:
        return None
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.name)))


class Caller:
    """An authenticated API client as the request path sees it."""

    __slots__ = ("name", "scope")

    def __init__(self, name: str, scope: str):
        self.name = name
        self.scope = scope

    def __repr__(self) -> str:
        return f"Caller({self.name!r}, {self.scope!r})"


class TokenCache:
    """Token look-ups with a bounded time to live, so a known token costs no database round trip.

    Both hits and misses are cached for ``ttl_seconds`` (a revoked token stops working within that
    time; a bad token cannot make every request query the database). The cache holds at most
    ``max_entries`` tokens and is emptied when full.
    """

    def __init__(self, db, ttl_seconds: float = 30, max_entries: int = 10_000):
        self.db = db
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Caller | None]] = {}

    def lookup(self, token: str) -> Caller | None:
        import time

        key = hash_token(token)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        with self.db.session() as s:
            client = s.scalar(select(ApiClient).where(ApiClient.token_hash == key))
            caller = None
            if client is not None and client.revoked_at is None:
                caller = Caller(client.name, client.scope)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl, caller)
        return caller

    def clear(self) -> None:
        self._entries.clear()
