"""The per-process subject cache applies what changed (one disabled account does not reload
every account) and still notices changes made without the ``updated_at`` bump."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update

from accessd import accounts
from accessd.lifecycle import offboarding
from accessd.models import Account, RoleGrant
from accessd.pdp.subjects import SubjectCache


def seed(db, n: int = 20) -> None:
    with db.session() as s:
        for i in range(n):
            acc = accounts.upsert(s, subject_id=f"u{i}", username=f"u{i}", region="north")
            accounts.grant(s, acc, "therapist")


def test_a_disabled_account_is_applied_without_reading_every_account(loaded_db):
    db = loaded_db  # the demo catalogue declares the attributes
    seed(db)
    cache = SubjectCache(db, poll_seconds=0)  # every read checks for changes
    assert cache.get("u3").status == "active" and cache.full_loads == 1
    with db.session() as s:
        offboarding.offboard(s, accounts.get_by_subject_id(s, "u3"), reason="left", source="cli", actor="t")
    subject = cache.get("u3")
    assert subject.status == "disabled" and subject.roles == frozenset()
    assert cache.get("u4").roles == frozenset({"therapist"})
    assert cache.full_loads == 1


def test_new_accounts_grants_and_renamed_subjects_are_applied(loaded_db):
    db = loaded_db  # the demo catalogue declares the attributes
    seed(db, 3)
    cache = SubjectCache(db, poll_seconds=0)
    assert cache.get("u9") is None
    with db.session() as s:
        accounts.upsert(s, subject_id="u9", username="u9")
        accounts.grant(s, accounts.get_by_subject_id(s, "u1"), "billing")
        s.execute(update(Account).where(Account.subject_id == "u2").values(subject_id="u2-new"))
    assert cache.get("u9") is not None
    assert cache.get("u1").roles == frozenset({"therapist", "billing"})
    assert cache.get("u2") is None and cache.get("u2-new").roles == frozenset({"therapist"})
    assert [s.id for s in cache.all()] == ["u0", "u1", "u2-new", "u9"]


def test_a_change_made_without_the_updated_at_bump_still_reaches_the_cache(loaded_db):
    db = loaded_db  # the demo catalogue declares the attributes
    seed(db, 3)
    cache = SubjectCache(db, poll_seconds=0)
    assert cache.get("u1").roles == frozenset({"therapist"})
    with db.session() as s:  # what a hand-written SQL fix might do
        account_id = s.scalar(select(Account.id).where(Account.subject_id == "u1"))
        s.execute(delete(RoleGrant).where(RoleGrant.account_id == account_id))
    assert cache.get("u1").roles == frozenset()
    assert cache.full_loads == 2  # the row counts no longer added up: everything was read again
    with db.session() as s:
        s.execute(delete(Account).where(Account.subject_id == "u2"))
    assert cache.get("u2") is None


def test_an_offboarding_stamped_with_an_older_clock_still_reaches_the_cache(loaded_db):
    """A host whose clock is behind (or a long transaction that commits after a newer change)
    writes an ``updated_at`` older than the newest one cached; the epoch sum still shows it."""
    db = loaded_db
    seed(db, 3)
    with db.session() as s:
        accounts.upsert(s, subject_id="contractor", username="contractor")  # no grants
    cache = SubjectCache(db, poll_seconds=0)
    assert cache.get("contractor").status == "active"
    with db.session() as s:
        account = accounts.get_by_subject_id(s, "contractor")
        stamped = account.updated_at - dt.timedelta(hours=1)
        offboarding.offboard(s, account, reason="left", source="cli", actor="t")
        s.flush()
        s.execute(update(Account).where(Account.id == account.id).values(updated_at=stamped))
    assert cache.get("contractor").status == "disabled"
