"""Several deliverers (one per web worker and the scheduler, in different processes) share one
outbox: each SET is POSTed once, and each person's events arrive in order."""

from __future__ import annotations

import json
import threading

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select

from accessd import accounts
from accessd.config import SsfSettings
from accessd.db import Database
from accessd.lifecycle.offboarding import offboard
from accessd.models import Account, SsfKey
from accessd.ssf import streams
from accessd.ssf.delivery import Deliverer
from tests.ssf.conftest import FAST
from tests.support.set_receiver import SetReceiver

PEOPLE = 40


def test_competing_deliverers_post_every_set_once_and_each_persons_in_order(db):
    with db.session() as s:
        for n in range(PEOPLE):
            accounts.upsert(s, subject_id=f"p{n:03}", username=f"p{n:03}", email=f"p{n:03}@x.example")
    with SetReceiver() as receiver:
        streams.add_push_stream(
            db,
            receiver.url,
            ["session-revoked", "account-disabled"],
            audience=None,
            fmt="opaque",
            authorization=None,
            actor="test",
        )
        with db.session() as s:
            for account in s.scalars(select(Account)):
                offboard(s, account, reason="test", source="cli", actor="test")
        # four "processes": each its own engine and thread, all on the same rows
        workers = [Deliverer(Database(db.url), SsfSettings(**FAST)) for _ in range(4)]
        barrier = threading.Barrier(len(workers))

        def drain(deliverer):
            barrier.wait()
            while deliverer.run_once():
                pass

        threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        got = receiver.wait_for(2 * PEOPLE)
        for w in workers:
            w.close()
            w.db.dispose()

    tokens = [g.token for g in receiver.posts]
    assert len(tokens) == len(set(tokens)) == 2 * PEOPLE  # none twice
    order: dict[str, list[str]] = {}
    for g in got:
        claims = jwt.decode(g.token, _any_key(db)).claims
        order.setdefault(claims["sub_id"]["id"], []).append(next(iter(claims["events"])).rsplit("/", 1)[1])
    assert len(order) == PEOPLE
    assert all(events == ["session-revoked", "account-disabled"] for events in order.values())


def _any_key(db) -> ECKey:
    with db.session() as s:
        return ECKey.import_key(json.loads(s.scalar(select(SsfKey.private_jwk))))
