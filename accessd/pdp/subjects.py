"""The per-process subject cache: every account and its role grants, held in memory.

A decision needs the subject's roles, status, dates and attributes. They always come from
accessd's own accounts (never from the request), and they must not cost a database round trip
per decision. ``SubjectCache`` holds them; :class:`accessd.pdp.feed.ChangeFeed` fills it -- once
in full at start-up, then, off the request path, only the accounts whose change sequence
(``account.change_seq``, see :mod:`accessd.changes`) is above the one it last applied.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from sqlalchemy import select

from accessd.accounts import subject_for
from accessd.models import Account, RoleGrant
from accessd.policy.engine import Subject


class SubjectCache:
    """Subjects by id. Readers never lock and never wait for a reload: a full load swaps a new
    dict in, a change replaces single items. ``ensure`` (set by the feed) runs before each read: it starts the
    feed in this process, and loads everything the first time."""

    def __init__(self):
        self._subjects: dict[str, Subject] = {}  # replaced whole on a full load, else item by item
        self._ids: dict[int, str] = {}  # account id -> subject id (a subject id may change)
        self.ensure: Callable[[], None] = lambda: None
        self.full_loads = 0  # how many times everything was read (tests and diagnostics)

    def get(self, subject_id: str) -> Subject | None:
        """The subject with this id, or None when no account has it."""
        self.ensure()
        return self._subjects.get(subject_id)

    def all(self) -> list[Subject]:
        """Every subject, sorted by id (for subject search)."""
        self.ensure()
        subjects = self._subjects
        found = (subjects.get(k) for k in sorted(subjects))  # one dropped meanwhile is skipped
        return [subject for subject in found if subject is not None]

    def __len__(self) -> int:
        return len(self._subjects)

    def load_all(self, s) -> None:
        """Read every account (start-up and the periodic safety net)."""
        ids, subjects = {}, {}
        for account_id, account in _read_accounts(s):
            ids[account_id] = account.subject_id
            subjects[account.subject_id] = subject_for(account)
        self._ids, self._subjects = ids, subjects
        self.full_loads += 1

    def apply_changes(self, s, since: int) -> int:
        """Re-read the accounts changed after sequence ``since``; returns how many.

        The dict is changed in place, not copied (copying 100,000 entries per change held the
        GIL for ~8 ms): one item assignment is atomic, so a reader sees the old subject or the
        new one, never none. A subject id that changed is dropped after its new one is in."""
        changed = _read_accounts(s, Account.change_seq > since)
        subjects, ids = self._subjects, self._ids
        fresh = {account_id: (account.subject_id, subject_for(account)) for account_id, account in changed}
        taken = {sid for sid, _ in fresh.values()}
        for sid, subject in fresh.values():
            subjects[sid] = subject
        for account_id, (sid, _) in fresh.items():
            old = ids.get(account_id)
            if old is not None and old != sid and old not in taken:
                subjects.pop(old, None)
            ids[account_id] = sid
        return len(changed)


def _read_accounts(s, where=None) -> list[tuple[int, SimpleNamespace]]:
    """(account id, account) for the accounts matching ``where`` (all by default).

    Plain rows through the session's connection (the ORM's result handling was over half of a
    full load), grants in a second statement (a join would decode each account's attributes once
    per grant). A grant read after its account may be newer than it: the change that made it
    has a higher sequence and is applied again next round. Each account is a namespace of its
    columns plus ``roles``, which is what :func:`accessd.accounts.subject_for` reads.
    """
    conn = s.connection()
    accounts = select(Account.__table__)
    grants = select(RoleGrant.account_id, RoleGrant.role)
    if where is not None:
        accounts = accounts.where(where)
        grants = grants.where(RoleGrant.account_id.in_(select(Account.id).where(where)))
    roles: dict[int, set[str]] = {}
    rows = conn.execute(accounts).mappings().all()
    for account_id, role in conn.execute(grants):
        roles.setdefault(account_id, set()).add(role)
    return [(row["id"], SimpleNamespace(**row, roles=frozenset(roles.get(row["id"], ())))) for row in rows]
