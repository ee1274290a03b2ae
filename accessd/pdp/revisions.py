"""Policy revisions in the database, and the per-process holder of the compiled engine.

A revision is an immutable snapshot of the policy directory's files; the highest number is in
force. Each process keeps a compiled ``Engine``; its change feed (:mod:`accessd.pdp.feed`) calls
:meth:`EngineHolder.refresh` when a revision was stored, so every worker picks up a change without
restarts, and the decision path makes no database round trip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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


_PARSED_MAX = 8
_parsed: dict[str, PolicySet] = {}  # digest -> parsed policy; revisions never change


def policy_of(rev: PolicyRevision) -> PolicySet:
    """The revision's policy, parsed once per process (a grant or a sync asks for the catalogue
    in force each time; parsing 1,000 rules takes about 0.1 s)."""
    policy = _parsed.get(rev.digest)
    if policy is None or policy.files != rev.files:  # the digest is the files' own, but be sure
        policy = PolicySet.from_files(rev.files)
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()  # a handful of revisions in use at once; start afresh
        _parsed[rev.digest] = policy
    return policy


class EngineHolder:
    """Holds the compiled engine of the newest revision.

    A newest revision that does not compile (stored by an older accessd whose checks were
    laxer) is logged once and skipped: the process keeps deciding with the engine it has; a
    process with none answers 503 until a valid policy is loaded. It never decides with a
    policy it could not check."""

    def __init__(self, db: Database):
        self.db = db
        self._engine: Engine | None = None
        self._broken: tuple[int, str] | None = None  # (revision, why) of a revision that failed
        self._lock = threading.Lock()
        # standalone: compile once on first use; the feed replaces it (accessd.pdp.feed)
        self.ensure: Callable[[], None] = lambda: self._engine is None and self.refresh()

    @property
    def engine(self) -> Engine:
        self.ensure()
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
        """Compile the newest revision if it is not the one held."""
        with self._lock, self.db.session() as s:
            newest = s.scalar(select(func.max(PolicyRevision.id)))
            if newest is None or newest in (self.revision, self._broken and self._broken[0]):
                return
            rev = s.get(PolicyRevision, newest)
            try:
                self._engine = Engine(policy_of(rev), revision=rev.id)
            except PolicyError as exc:
                self._broken = (rev.id, exc.message)
                log.error("policy revision %d does not load and is not used: %s", rev.id, exc.message)
