"""A change committed anywhere reaches every worker of a real server: on PostgreSQL by
LISTEN/NOTIFY (polling is set to 30 s, so only the push can explain it), on SQLite by polling."""

from __future__ import annotations

import json
import time
import urllib.request

from accessd import accounts, changes
from accessd.lifecycle import offboarding
from tests.support.api import evaluation

BOUND = 5.0  # seconds; the targets are far lower (bench/scale.py measures them)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:  # a new connection each time
        return json.load(answer)


def ask(base: str, token: str, subject: str) -> bool:
    body = json.dumps(evaluation(subject, field="iban", purpose="billing")).encode()
    request = urllib.request.Request(
        base + "/access/v1/evaluation",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)["decision"]


def workers_at(base: str, seq: int, n: int) -> dict[str, int]:
    """Probe /readyz until ``n`` workers report having applied sequence ``seq``."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + BOUND
    while sum(1 for s in seen.values() if s >= seq) < n:
        assert time.monotonic() < deadline, f"workers after {BOUND} s: {seen}, wanted {seq} in {n}"
        cache = get(base + "/readyz")["cache"]
        seen[cache["worker"]] = cache["seq"]
    return seen


def test_an_offboarding_reaches_every_worker_of_a_running_server(serve, loaded_db, employees, token):
    poll = "30" if loaded_db.dialect == "postgresql" else "0.5"
    base, _ = serve(loaded_db.url, workers=2, ACCESSD_CACHE_POLL_SECONDS=poll)
    for _ in range(20):  # both workers load their caches
        assert ask(base, token, "b.huber") is True
    with loaded_db.session() as s:
        offboarding.offboard(
            s, accounts.get_by_subject_id(s, "b.huber"), reason="left", source="cli", actor="t"
        )
    with loaded_db.session() as s:
        seq = changes.counter(s)[0]
    workers_at(base, seq, 2)
    assert not any(ask(base, token, "b.huber") for _ in range(20))
