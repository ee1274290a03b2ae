"""Policy revisions as the admin UI lists and compares them (no Flask).

:func:`list_revisions` pages through the stored revisions, newest first. :func:`compare` shows
what differs between any two: each file's unified diff (difflib), the per-role summary of
:func:`accessd.policy.diff.diff_policies` with the number of people holding each role, and the
people impact (:func:`accessd.policy.impact.people_impact` over the active accounts). A revision
that no longer loads (stored by an older, laxer accessd) still shows its text diff, with the
reason in ``problem``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import accounts
from accessd.console import policy_people
from accessd.console.paging import PER_PAGE, Page, offset_of
from accessd.db import Database
from accessd.errors import PolicyError
from accessd.models import PolicyRevision
from accessd.pdp import revisions
from accessd.policy.diff import PolicyDiff, diff_policies
from accessd.policy.impact import Impact, people_impact

#: diff lines shown per file (a whole new policy.csv is a few hundred)
MAX_DIFF_LINES = 5000


@dataclass(frozen=True)
class RevisionInfo:
    number: int
    created_at: dt.datetime
    created_by: str
    comment: str
    digest: str
    in_force: bool

    @property
    def short_digest(self) -> str:
        return self.digest[:12]


def _info(rev: PolicyRevision, newest: int | None) -> RevisionInfo:
    return RevisionInfo(
        rev.id, rev.created_at, rev.created_by, rev.comment or "", rev.digest, rev.id == newest
    )


def _newest(session: Session) -> int | None:
    return session.scalar(select(func.max(PolicyRevision.id)))


def list_revisions(db: Database, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of revisions, newest first (the files are not loaded)."""
    with db.session() as s:
        newest = _newest(s)
        total = s.scalar(select(func.count()).select_from(PolicyRevision)) or 0
        cols = (
            PolicyRevision.id,
            PolicyRevision.created_at,
            PolicyRevision.created_by,
            PolicyRevision.comment,
            PolicyRevision.digest,
        )
        rows = s.execute(
            select(*cols).order_by(PolicyRevision.id.desc()).offset(offset_of(page, per_page)).limit(per_page)
        )
        items = [RevisionInfo(n, at, by, c or "", d, n == newest) for n, at, by, c, d in rows]
        return Page(items, total, page, per_page)


def in_force(db: Database) -> RevisionInfo | None:
    with db.session() as s:
        rev = revisions.current(s)
        return _info(rev, rev.id) if rev is not None else None


@dataclass(frozen=True)
class FileDiff:
    name: str
    lines: tuple[str, ...]  # unified diff lines (``+``, ``-``, `` ``, ``@@``); empty = same text
    added: int
    removed: int
    truncated: bool = False


@dataclass
class Comparison:
    old: RevisionInfo
    new: RevisionInfo
    files: list[FileDiff]
    summary: PolicyDiff | None = None  # None when a side does not load
    impact: Impact | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return all(not f.lines for f in self.files)


def file_diffs(old: dict[str, str], new: dict[str, str], a: str, b: str) -> list[FileDiff]:
    out = []
    for name in sorted(set(old) | set(new)):
        lines = list(
            difflib.unified_diff(
                old.get(name, "").splitlines(),
                new.get(name, "").splitlines(),
                fromfile=f"{name} ({a})",
                tofile=f"{name} ({b})",
                lineterm="",
            )
        )
        added = sum(1 for ln in lines[2:] if ln.startswith("+"))
        removed = sum(1 for ln in lines[2:] if ln.startswith("-"))
        out.append(FileDiff(name, tuple(lines[:MAX_DIFF_LINES]), added, removed, len(lines) > MAX_DIFF_LINES))
    return out


def compare_in(session: Session, a: int, b: int) -> Comparison:
    """Revision ``a`` -> revision ``b`` in an open session (NotFound for an unknown number)."""
    rev_a, rev_b = revisions.get(session, a), revisions.get(session, b)
    newest = _newest(session)
    out = Comparison(
        _info(rev_a, newest),
        _info(rev_b, newest),
        file_diffs(rev_a.files, rev_b.files, f"revision {a}", f"revision {b}"),
    )
    try:
        old, new = revisions.policy_of(rev_a), revisions.policy_of(rev_b)
    except PolicyError as exc:
        out.problem = (
            f"a revision does not load with this accessd, so only its text is compared: {exc.message}"
        )
        return out
    out.summary = diff_policies(old, new, accounts.role_holder_counts(session))
    out.impact = people_impact(old, new, policy_people.labels(policy_people.active_role_sets(session)))
    return out


def compare(db: Database, a: int, b: int) -> Comparison:
    with db.session() as s:
        return compare_in(s, a, b)
