"""The per-process token cache: revocation is seen at the feed's next catch-up (not after a
TTL), and a full cache evicts the least recently used token instead of forgetting every token."""

from __future__ import annotations

import contextlib

from sqlalchemy import event

from accessd.pdp import tokens
from accessd.pdp.tokens import TokenCache


@contextlib.contextmanager
def statements(db):
    """The SQL statements run on ``db`` inside the block."""
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def make_clients(db, n: int) -> list[str]:
    with db.session() as s:
        return [tokens.create(s, f"app{i}", "decide") for i in range(n)]


def test_a_revoked_token_is_refused_at_the_next_catch_up(db, make_feed):
    crm, other = make_clients(db, 2)
    feed = make_feed(db, poll_seconds=60)
    cache = feed.tokens
    assert cache.lookup(crm).name == "app0" and cache.lookup(other).name == "app1"
    with db.session() as s:
        tokens.revoke(s, "app0")
    feed.catch_up()
    assert cache.lookup(crm) is None  # well before the 30 s the cache used to keep it
    assert cache.lookup(other).name == "app1"


def test_a_rotated_token_is_refused_and_its_successor_accepted(db, make_feed):
    (old,) = make_clients(db, 1)
    feed = make_feed(db, poll_seconds=60)
    cache = feed.tokens
    assert cache.lookup(old).name == "app0"
    with db.session() as s:
        new = tokens.rotate(s, "app0")
    feed.catch_up()
    assert cache.lookup(old) is None
    caller = cache.lookup(new)
    assert (caller.name, caller.scope) == ("app0", "decide")


def test_a_known_token_costs_no_database_round_trip(db):
    (token,) = make_clients(db, 1)
    cache = TokenCache(db)
    cache.lookup(token)
    cache.lookup("acd_unknown")
    with statements(db) as seen:
        for _ in range(10):
            assert cache.lookup(token).name == "app0"
            assert cache.lookup("acd_unknown") is None
    assert seen == []


def test_a_full_cache_evicts_the_least_recently_used_token_not_all(db):
    first, second, third = make_clients(db, 3)
    cache = TokenCache(db, max_entries=2)
    cache.lookup(first)
    cache.lookup(second)
    cache.lookup(first)  # first is now the most recently used
    cache.lookup(third)  # the cache is full: second goes, first stays
    with statements(db) as seen:
        assert cache.lookup(first).name == "app0"
        assert cache.lookup(third).name == "app2"
    assert seen == []
    with statements(db) as seen:
        assert cache.lookup(second).name == "app1"
    assert len(seen) == 1


def test_unknown_tokens_never_evict_known_ones(db):
    (token,) = make_clients(db, 1)
    cache = TokenCache(db, max_entries=10)
    cache.lookup(token)
    for i in range(100):  # a flood of bad tokens, ten times the cache size
        assert cache.lookup(f"acd_guess{i}") is None
    with statements(db) as seen:
        assert cache.lookup(token).name == "app0"
    assert seen == []
    assert len(cache) <= 2 * 10
