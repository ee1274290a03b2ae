"""``make_feed(db, **cache_settings)``: a worker's caches and their change feed over ``db``,
closed at teardown (the feed's thread starts with the first read, as in a worker)."""

from __future__ import annotations

import pytest

from accessd.config import CacheSettings
from accessd.pdp.feed import ChangeFeed
from accessd.pdp.revisions import EngineHolder
from accessd.pdp.subjects import SubjectCache
from accessd.pdp.tokens import TokenCache


@pytest.fixture
def make_feed():
    made = []

    def make(db, **settings) -> ChangeFeed:
        feed = ChangeFeed(db, CacheSettings(**settings), SubjectCache(), TokenCache(db), EngineHolder(db))
        made.append(feed)
        return feed

    yield make
    for feed in made:
        feed.close()
