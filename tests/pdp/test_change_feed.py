"""Every worker's caches follow the database by change sequence: a change re-reads only what
changed, numbers follow commit order, nothing is missed, and requests never wait for a reload."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import delete, event, select, text, update

from accessd import accounts, changes
from accessd.lifecycle import offboarding
from accessd.models import Account, ApiClient, RoleGrant
from accessd.pdp import tokens


def seed(db, n: int = 20) -> None:
    with db.session() as s:
        for i in range(n):
            acc = accounts.upsert(s, subject_id=f"u{i}", username=f"u{i}", region="north")
            accounts.grant(s, acc, "therapist")


def counter(db) -> tuple[int, int]:
    with db.session() as s:
        return changes.counter(s)


def offboard(db, subject_id: str) -> None:
    with db.session() as s:
        account = accounts.get_by_subject_id(s, subject_id)
        offboarding.offboard(s, account, reason="left", source="cli", actor="t")


@pytest.fixture
def watched(loaded_db, make_feed):
    """20 people, and a feed that has loaded them (its thread polls every 60 s: tests catch up)."""
    seed(loaded_db)
    feed = make_feed(loaded_db, poll_seconds=60)
    assert feed.subjects.get("u3").status == "active"
    return feed


def test_a_disabled_account_is_applied_without_reading_every_account(watched, loaded_db):
    offboard(loaded_db, "u3")
    watched.catch_up()
    subject = watched.subjects.get("u3")
    assert subject.status == "disabled" and subject.roles == frozenset()
    assert watched.subjects.get("u4").roles == frozenset({"therapist"})
    assert watched.subjects.full_loads == 1 and watched.changes_applied == 1  # one account re-read


def test_every_committed_write_takes_one_number_and_reads_and_rollbacks_take_none(loaded_db):
    seed(loaded_db, 2)
    before = counter(loaded_db)[0]
    with loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "u0"), "billing")
        accounts.grant(s, accounts.get_by_subject_id(s, "u1"), "billing")
    with loaded_db.session() as s:
        s.scalar(select(Account).where(Account.subject_id == "u0"))
    with pytest.raises(RuntimeError), loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "u0"), "reception")
        raise RuntimeError("rolled back")
    assert counter(loaded_db)[0] == before + 1
    with loaded_db.session() as s:
        stamped = dict(s.execute(select(Account.subject_id, Account.change_seq)).all())
    assert stamped == {"u0": before + 1, "u1": before + 1}  # no row is left PENDING


def test_new_accounts_grants_and_renamed_subjects_are_applied(watched, loaded_db):
    with loaded_db.session() as s:
        accounts.upsert(s, subject_id="u99", username="u99")
        accounts.grant(s, accounts.get_by_subject_id(s, "u1"), "billing")
        # a bulk statement, as the directory sync writes: the column's onupdate marks the row
        s.execute(update(Account).where(Account.subject_id == "u2").values(subject_id="u2-new"))
    watched.catch_up()
    assert watched.subjects.get("u99") is not None
    assert watched.subjects.get("u1").roles == frozenset({"therapist", "billing"})
    assert watched.subjects.get("u2") is None
    assert watched.subjects.get("u2-new").roles == frozenset({"therapist"})
    assert watched.subjects.full_loads == 1


def test_a_bulk_grant_delete_that_names_no_account_makes_every_worker_read_everything(watched, loaded_db):
    with loaded_db.session() as s:
        account_id = s.scalar(select(Account.id).where(Account.subject_id == "u1"))
        s.execute(delete(RoleGrant).where(RoleGrant.account_id == account_id))
    seq, reload_seq = counter(loaded_db)
    assert reload_seq == seq
    watched.catch_up()
    assert watched.subjects.get("u1").roles == frozenset()
    assert watched.subjects.full_loads == 2


def test_a_row_changed_by_hand_is_caught_by_the_periodic_full_reload(loaded_db, make_feed):
    seed(loaded_db, 3)
    feed = make_feed(loaded_db, poll_seconds=60, full_reload_seconds=0.2)
    assert feed.subjects.get("u1").status == "active"
    with loaded_db.engine.begin() as conn:  # outside accessd: no session, no change sequence
        conn.execute(text("UPDATE account SET status = 'disabled' WHERE subject_id = 'u1'"))
    feed.catch_up()
    time.sleep(0.3)
    feed.catch_up()
    assert feed.subjects.get("u1").status == "disabled" and feed.subjects.full_loads >= 2


def test_an_offboarding_that_commits_after_a_newer_change_is_not_missed(watched, loaded_db):
    """Numbers are taken at commit under the counter's lock, so a long transaction that started
    first but commits last gets the higher number (on SQLite writers cannot overlap at all)."""
    if loaded_db.dialect == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: there is no overlap to order")
    slow = loaded_db.sessions()
    slow.begin()
    # plain row writes: accessd's own writers also append to the audit chain, whose lock would
    # make the second transaction wait for the first
    slow.scalar(select(Account).where(Account.subject_id == "u3")).status = "disabled"
    slow.flush()  # u3's row is written (PENDING), not committed
    with loaded_db.session() as s:  # a later change commits first
        s.scalar(select(Account).where(Account.subject_id == "u4")).status = "disabled"
    watched.catch_up()
    assert watched.subjects.get("u4").status == "disabled"
    assert watched.subjects.get("u3").status == "active"
    slow.commit()
    slow.close()
    watched.catch_up()
    assert watched.subjects.get("u3").status == "disabled"


def test_a_revoked_token_and_a_token_first_seen_as_unknown_follow_the_database(loaded_db, make_feed):
    with loaded_db.session() as s:
        crm = tokens.create(s, "crm", "decide")
    feed = make_feed(loaded_db, poll_seconds=60)
    future = "acd_" + "x" * 43
    assert feed.tokens.lookup(crm).name == "crm" and feed.tokens.lookup(future) is None
    with loaded_db.session() as s:
        tokens.revoke(s, "crm")
        s.add(ApiClient(name="later", scope="decide", token_hash=tokens.hash_token(future)))
    feed.catch_up()
    assert feed.tokens.lookup(crm) is None  # well before the 30 s TTL
    assert feed.tokens.lookup(future).name == "later"  # its cached "unknown" was dropped


def test_a_new_policy_revision_is_compiled_by_the_feed(loaded_db, make_feed):
    from accessd.pdp import revisions
    from tests.conftest import POLICY_DIR

    feed = make_feed(loaded_db, poll_seconds=60)
    assert feed.engines.engine.revision == 1
    files = dict(revisions.load_policy_dir(POLICY_DIR).files)
    files["policy.csv"] += "\n# a comment makes a new revision\n"
    policy = revisions.PolicySet.from_files(files)
    with loaded_db.session() as s:
        rev, created = revisions.store(s, policy, "t")
    assert created
    feed.catch_up()
    assert feed.engines.engine.revision == rev.id


def test_requests_never_read_the_database_once_loaded(watched, loaded_db):
    """The decision path's reads (subject, token, engine) cost no statement in the reading thread."""
    me, seen = threading.get_ident(), []

    def listener(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(loaded_db.engine, "before_cursor_execute", listener)
    try:
        for _ in range(50):
            watched.subjects.get("u1")
            watched.engines.engine  # noqa: B018
    finally:
        event.remove(loaded_db.engine, "before_cursor_execute", listener)
    assert seen == []


def test_the_background_thread_applies_changes_without_any_reader(loaded_db, make_feed):
    seed(loaded_db, 3)
    feed = make_feed(loaded_db, poll_seconds=0.05)
    assert feed.subjects.get("u1").status == "active"
    offboard(loaded_db, "u1")
    deadline = time.monotonic() + 10
    while feed.subjects._subjects["u1"].status != "disabled":  # noqa: SLF001 - no read may help
        assert time.monotonic() < deadline, "the feed thread never applied the change"
        time.sleep(0.01)
    assert feed.lag_seconds() < 10


def test_on_postgresql_a_change_is_pushed_to_a_listening_worker(loaded_db, make_feed):
    if loaded_db.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    seed(loaded_db, 3)
    feed = make_feed(loaded_db, poll_seconds=30)  # polling alone would take 30 s
    assert feed.subjects.get("u1").status == "active"
    deadline = time.monotonic() + 10
    while not feed.listening:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    offboard(loaded_db, "u1")
    while feed.subjects._subjects["u1"].status != "disabled":  # noqa: SLF001
        assert time.monotonic() < deadline, "no notification reached the worker"
        time.sleep(0.005)


def test_a_worker_behind_a_restored_database_reads_everything_again(watched, loaded_db):
    with loaded_db.session() as s:
        s.execute(update(changes.ChangeCounter).values(seq=0, reload_seq=0))
    seq = counter(loaded_db)[0]
    watched.catch_up()  # (the feed's thread may have got there first)
    assert watched.seq == seq and watched.subjects.full_loads == 2
