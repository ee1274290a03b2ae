"""The per-process subject cache: every account and its role grants, held in memory.

A decision needs the subject's roles, status, dates and attributes. They always come from
accessd's own accounts (never from the request), and they must not cost a database round trip
per decision. ``SubjectCache`` loads all accounts with their grants once and checks, at most
every ``poll_seconds``, a cheap fingerprint of the two tables (row counts, newest
``account.updated_at``, highest grant id); when it changes, everything is reloaded. The lifecycle
code bumps ``account.updated_at`` on any account or grant change, so a disable or a revoked
role reaches every worker within ``poll_seconds``.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from accessd.accounts import subject_for
from accessd.db import Database
from accessd.models import Account, RoleGrant
from accessd.policy.engine import Subject


class SubjectCache:
    def __init__(self, db: Database, poll_seconds: float = 1.0):
        self.db = db
        self.poll_seconds = poll_seconds
        self._subjects: dict[str, Subject] = {}
        self._fingerprint: tuple | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self, subject_id: str) -> Subject | None:
        """The subject with this id, or None when no account has it."""
        if time.monotonic() - self._checked > self.poll_seconds:
            self.refresh()
        return self._subjects.get(subject_id)

    def all(self) -> list[Subject]:
        """Every subject, sorted by id (for subject search)."""
        if time.monotonic() - self._checked > self.poll_seconds:
            self.refresh()
        return [self._subjects[k] for k in sorted(self._subjects)]

    def refresh(self, force: bool = False) -> None:
        """Reload when the accounts or grants changed since the last load."""
        with self._lock:
            if not force and time.monotonic() - self._checked <= self.poll_seconds:
                return  # another thread refreshed while we waited for the lock
            with self.db.session() as s:
                fingerprint = (
                    *s.execute(select(func.count(Account.id), func.max(Account.updated_at))).one(),
                    *s.execute(select(func.count(RoleGrant.id), func.max(RoleGrant.id))).one(),
                )
                if force or fingerprint != self._fingerprint:
                    accounts = s.scalars(select(Account)).all()  # grants load with selectin
                    self._subjects = {a.subject_id: subject_for(a) for a in accounts}
                    self._fingerprint = fingerprint
            self._checked = time.monotonic()
