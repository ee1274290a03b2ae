"""The per-process subject cache: every account and its role grants, held in memory.

A decision needs the subject's roles, status, dates and attributes. They always come from
accessd's own accounts (never from the request), and they must not cost a database round trip
per decision. ``SubjectCache`` loads all accounts with their grants once; then, at most every
``poll_seconds`` (0.5 s), it reads a cheap fingerprint of the two tables (row counts, newest
``account.updated_at``, sum of ``session_epoch``, highest grant id). When that changed, it reloads
only the accounts that changed -- those updated at or after the previous newest ``updated_at``,
and those holding a grant newer than the previous highest grant id -- so a disable or a revoked
role reaches every worker within ``poll_seconds`` without a full reload per change. Half a
second, not one: a request in flight adds to it, and the promise is a deny within one second
(``bench/offboarding.py`` measures it).

Every writer bumps ``account.updated_at`` on any change, and ``session_epoch`` when access
shrinks (offboarding, a revoked role). ``updated_at`` is the writing host's clock at the change,
not at the commit; a change that slips past it (clock skew, a long transaction committing after a
newer one, a row deleted or edited by hand) is caught by the totals: when the cached accounts'
count, grant count or epoch sum no longer match the database's, everything is read again. So an
offboarding or a revoked role is never missed; for other changes (an attribute, an end date)
hosts sharing a database must keep their clocks in sync (NTP).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from sqlalchemy import func, or_, select

from accessd import clock
from accessd.accounts import subject_for
from accessd.db import Database
from accessd.models import Account, RoleGrant
from accessd.policy.engine import Subject


class SubjectCache:
    def __init__(self, db: Database, poll_seconds: float = 0.5):
        self.db = db
        self.poll_seconds = poll_seconds
        self._subjects: dict[str, Subject] = {}  # replaced, never mutated: readers need no lock
        # account id -> (subject id, grant count, session epoch): the totals the fingerprint checks
        self._by_account: dict[int, tuple[str, int, int]] = {}
        self._fingerprint: tuple | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.full_loads = 0  # how many times everything was read (tests and diagnostics)

    def get(self, subject_id: str) -> Subject | None:
        """The subject with this id, or None when no account has it."""
        if clock.monotonic() - self._checked > self.poll_seconds:
            self.refresh()
        return self._subjects.get(subject_id)

    def all(self) -> list[Subject]:
        """Every subject, sorted by id (for subject search)."""
        if clock.monotonic() - self._checked > self.poll_seconds:
            self.refresh()
        subjects = self._subjects
        return [subjects[k] for k in sorted(subjects)]

    def refresh(self, force: bool = False) -> None:
        """Apply what changed since the last check; ``force`` reloads everything."""
        with self._lock:
            if not force and clock.monotonic() - self._checked <= self.poll_seconds:
                return  # another thread refreshed while we waited for the lock
            with self.db.session() as s:
                fingerprint = tuple(
                    s.execute(
                        select(
                            func.count(Account.id),
                            func.max(Account.updated_at),
                            func.coalesce(func.sum(Account.session_epoch), 0),
                        ).add_columns(
                            select(func.count(RoleGrant.id)).scalar_subquery(),
                            select(func.max(RoleGrant.id)).scalar_subquery(),
                        )
                    ).one()
                )
                previous = self._fingerprint
                if force or previous is None:
                    self._load_all(s)
                elif fingerprint != previous:
                    self._apply_changes(s, since=previous[1], after_grant=previous[4] or 0)
                    if self._totals() != (fingerprint[0], fingerprint[2], fingerprint[3]):
                        self._load_all(s)  # a change the incremental read could not see
                self._fingerprint = fingerprint
            self._checked = clock.monotonic()

    def _load_all(self, s) -> None:
        by_account, subjects = {}, {}
        for account_id, account, grant_count in _read_accounts(s):
            by_account[account_id] = (account.subject_id, grant_count, account.session_epoch or 0)
            subjects[account.subject_id] = subject_for(account)
        self._by_account, self._subjects = by_account, subjects
        self.full_loads += 1

    def _apply_changes(self, s, since, after_grant: int) -> None:
        conditions = [Account.id.in_(select(RoleGrant.account_id).where(RoleGrant.id > after_grant))]
        if since is not None:
            conditions.append(Account.updated_at >= since)  # >=: a change in the same tick
        changed = _read_accounts(s, or_(*conditions))
        if not changed:
            return
        by_account, subjects = dict(self._by_account), dict(self._subjects)
        for account_id, _, _ in changed:  # first drop what they were (a subject id may change) ...
            old = by_account.get(account_id)
            if old is not None:
                subjects.pop(old[0], None)
        for account_id, account, grant_count in changed:  # ... then add what they are
            by_account[account_id] = (account.subject_id, grant_count, account.session_epoch or 0)
            subjects[account.subject_id] = subject_for(account)
        self._by_account, self._subjects = by_account, subjects

    def _totals(self) -> tuple[int, int, int]:
        """(accounts, epoch sum, grants) of what is cached, to compare with the database's."""
        values = self._by_account.values()
        return len(values), sum(epoch for _, _, epoch in values), sum(n for _, n, _ in values)


def _read_accounts(s, where=None) -> list[tuple[int, SimpleNamespace, int]]:
    """(account id, account, grant count) for the accounts matching ``where`` (all by default).

    One statement (a consistent snapshot) of plain rows: about twice as fast as loading ORM
    objects, which matters for the first load of a large directory. Each account is a namespace
    of its columns plus ``roles``, which is what :func:`accessd.accounts.subject_for` reads.
    """
    stmt = select(Account.__table__, RoleGrant.role.label("_grant_role")).outerjoin(
        RoleGrant, RoleGrant.account_id == Account.id
    )
    if where is not None:
        stmt = stmt.where(where)
    columns, roles, counts = {}, {}, {}
    for row in s.execute(stmt).mappings():
        account_id = row["id"]
        if account_id not in columns:
            columns[account_id] = {k: v for k, v in row.items() if k != "_grant_role"}
            roles[account_id], counts[account_id] = set(), 0
        if row["_grant_role"] is not None:
            roles[account_id].add(row["_grant_role"])
            counts[account_id] += 1
    return [
        (account_id, SimpleNamespace(**cols, roles=frozenset(roles[account_id])), counts[account_id])
        for account_id, cols in columns.items()
    ]
