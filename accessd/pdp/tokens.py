"""API tokens for applications: created once, stored only as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd import clock
from accessd.errors import Conflict, Invalid, NotFound
from accessd.models import ApiClient, utcnow
from accessd.pdp import revisions

SCOPES = ("decide", "admin", "hr", "ssf")  # ssf: a Shared Signals receiver (docs/ssf.md)
PREFIX = "acd_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str, scope: str, default_purpose: str | None = None) -> str:
    """Create a client and return its token (the only time it is visible).

    ``default_purpose`` is the purpose assumed when this client's request names none (for
    applications that know nothing of purposes); it must be declared by the policy in force."""
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if not name or len(name) > 200:
        raise Invalid("name must be 1-200 characters")
    if default_purpose is not None:
        _check_purpose(session, default_purpose)
    if session.scalar(select(ApiClient).where(ApiClient.name == name)) is not None:
        raise Conflict(f"a client named {name!r} already exists")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiClient(name=name, scope=scope, token_hash=hash_token(token), default_purpose=default_purpose)
    )
    session.flush()
    return token


def _check_purpose(session: Session, purpose: str) -> None:
    rev = revisions.current(session)
    if rev is None:
        raise Invalid("a default purpose needs a policy in force: run `accessd policy load DIR` first")
    declared = revisions.policy_of(rev).catalogue.purposes
    if purpose not in declared:
        raise Invalid(f"default purpose {purpose!r} is not declared; declared: {', '.join(declared)}")


def revoke(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise NotFound(f"no client named {name!r}")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
    return client


def rotate(session: Session, name: str) -> str:
    """Revoke the client's token and issue a new one under the same name and scope; return it.

    The old row stays, revoked and renamed ``<name> (replaced #<id>)``, so ``token list`` keeps
    the history and the rotation counts as a revocation for every worker's token cache.
    """
    old = revoke(session, name)
    old.name = f"{name[:170]} (replaced #{old.id})"
    session.flush()
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiClient(
            name=name, scope=old.scope, token_hash=hash_token(token), default_purpose=old.default_purpose
        )
    )
    session.flush()
    return token


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.name)))


class Caller:
    """An authenticated API client as the request path sees it."""

    __slots__ = ("name", "scope", "default_purpose")

    def __init__(self, name: str, scope: str, default_purpose: str | None = None):
        self.name = name
        self.scope = scope
        self.default_purpose = default_purpose

    def __repr__(self) -> str:
        return f"Caller({self.name!r}, {self.scope!r})"


class TokenCache:
    """Token look-ups held in memory, so a known token costs no database round trip.

    A revocation or a new client reaches every process through the change sequence
    (:mod:`accessd.changes`): the feed calls :meth:`forget_changed` with the clients changed since
    it last looked, and their tokens are dropped from both LRUs (a new client's token may have
    been cached as unknown). ``ttl_seconds`` bounds how long an entry is reused even without a
    change (a backstop for edits made outside accessd).

    Known tokens live in an LRU of ``max_entries``; unknown tokens in a separate LRU of the same
    size, so a flood of bad tokens neither reaches the database twice for the same token nor
    evicts a known one. Filling up evicts the least recently used entry, never the whole cache.
    """

    def __init__(self, db, ttl_seconds: float = 30, max_entries: int = 10_000):
        self.db = db
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._known: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        # bumped whenever entries are dropped; a look-up that started before a drop does not
        # store its (possibly outdated) answer
        self._generation = 0
        self._lock = threading.Lock()
        self.ensure: Callable[[], None] = lambda: None  # set by the feed (accessd.pdp.feed)

    def lookup(self, token: str) -> Caller | None:
        """The active client owning ``token``, or None."""
        self.ensure()
        now = clock.monotonic()
        key = hash_token(token)
        with self._lock:
            hit = self._known.get(key)
            if hit is not None and hit[0] > now:
                self._known.move_to_end(key)
                return hit[1]
            miss = self._unknown.get(key)
            if miss is not None and miss > now:
                self._unknown.move_to_end(key)
                return None
            generation = self._generation
        with self.db.session() as s:
            row = s.execute(
                select(ApiClient.name, ApiClient.scope, ApiClient.default_purpose).where(
                    ApiClient.token_hash == key, ApiClient.revoked_at.is_(None)
                )
            ).first()
        caller = Caller(row.name, row.scope, row.default_purpose) if row is not None else None
        with self._lock:
            if generation == self._generation:
                self._store(key, now + self.ttl, caller)
        return caller

    def _store(self, key: str, expires: float, caller: Caller | None) -> None:
        self._known.pop(key, None)
        self._unknown.pop(key, None)
        lru = self._known if caller is not None else self._unknown
        lru[key] = (expires, caller) if caller is not None else expires
        if len(lru) > self.max_entries:
            lru.popitem(last=False)  # the least recently used

    def forget_changed(self, s, since: int) -> int:
        """Drop the cached look-ups of clients changed after sequence ``since``; returns how many."""
        hashes = s.scalars(select(ApiClient.token_hash).where(ApiClient.change_seq > since)).all()
        if hashes:
            with self._lock:
                for key in hashes:
                    self._known.pop(key, None)
                    self._unknown.pop(key, None)
                self._generation += 1
        return len(hashes)

    def _drop(self) -> None:
        self._known.clear()
        self._unknown.clear()
        self._generation += 1

    def clear(self) -> None:
        """Forget every cached look-up (the next one per token reads the database)."""
        with self._lock:
            self._drop()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)
