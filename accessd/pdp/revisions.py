"""Policy revisions in the database, and the per-process holder of the compiled engine.

A revision is an immutable snapshot of the policy directory's files; the highest number is in
force. Each process keeps a compiled ``Engine`` and polls the database (at most once per
``poll_seconds``, 1 s -- the same bound as revoked tokens and disabled accounts) for a newer
revision, so every worker picks up a change within a second without restarts, and the decision
path makes no database round trip in between.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import clock
from accessd.db import Database
from accessd.errors import NotFound, PolicyError, Unavailable
from accessd.models import PolicyRevision
from accessd.policy.engine import Engine
from accessd.policy.policyset import PolicySet, load_policy_dir

log = logging.getLogger("accessd.revisions")


def digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def current(session: Session) -> PolicyRevision | None:
    return session.scalars(select(PolicyRevision).order_by(PolicyRevision.id.desc()).limit(1)).first()


def get(session: Session, number: int) -> PolicyRevision:
    rev = session.get(PolicyRevision, number)
    if rev is None:
        raise NotFound(f"policy revision {number} does not exist")
    return rev


def store(
    session: Session, policy: PolicySet, actor: str, comment: str | None = None
) -> tuple[PolicyRevision, bool]:
    """Store a validated policy as a new revision. Returns (revision, created);
    an identical policy to the current revision is not stored again."""
    files = dict(policy.files)
    d = digest(files)
    cur = current(session)
    if cur is not None and cur.digest == d:
        return cur, False
    rev = PolicyRevision(created_by=actor, digest=d, files=files, comment=comment)
    session.add(rev)
    session.flush()
    return rev, True


def load_dir(session: Session, path: str | Path, actor: str) -> tuple[PolicyRevision, bool]:
    """Validate a policy directory (raises PolicyError naming file and line) and store it."""
    return store(session, load_policy_dir(path), actor)


def export(rev: PolicyRevision, path: str | Path) -> list[Path]:
    """Write a revision's files into ``path`` (created if needed)."""
    out = Path(path)
    written = []
    for name, text in sorted(rev.files.items()):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def policy_of(rev: PolicyRevision) -> PolicySet:
    return PolicySet.from_files(rev.files)


class EngineHolder:
    """Holds the compiled engine of the newest revision; refreshes by polling the database.

    A newest revision that does not compile (stored by an older accessd whose checks were
    laxer) is logged once and skipped: the process keeps deciding with the engine it has; a
    process with none answers 503 until a valid policy is loaded. It never decides with a
    policy it could not check."""

    def __init__(self, db: Database, poll_seconds: float = 1.0):
        self.db = db
        self.poll_seconds = poll_seconds
        self._engine: Engine | None = None
        self._broken: tuple[int, str] | None = None  # (revision, why) of a revision that failed
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        now = clock.monotonic()
        if self._engine is None or now - self._checked > self.poll_seconds:
            self.refresh()
        if self._engine is None:
            if self._broken is not None:
                raise Unavailable(
                    f"policy revision {self._broken[0]} does not load: {self._broken[1]}; "
                    "load a valid policy with `accessd policy load DIR`",
                    retry_after=30,
                )
            raise Unavailable(
                "no policy revision is loaded; run `accessd policy load policies/`", retry_after=30
            )
        return self._engine

    @property
    def revision(self) -> int | None:
        return self._engine.revision if self._engine is not None else None

    def refresh(self) -> None:
        with self._lock:
            self._checked = clock.monotonic()
            with self.db.session() as s:
                newest = s.scalar(select(func.max(PolicyRevision.id)))
                if newest is None or newest in (self.revision, self._broken and self._broken[0]):
                    return
                rev = s.get(PolicyRevision, newest)
                try:
                    self._engine = Engine(policy_of(rev), revision=rev.id)
                except PolicyError as exc:
                    self._broken = (rev.id, exc.message)
                    log.error("policy revision %d does not load and is not used: %s", rev.id, exc.message)
