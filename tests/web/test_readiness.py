"""/readyz answers for the decision log of every worker, not only the one that answered: each
writer reports its counters to ``decision_log_worker`` every heartbeat, and readiness adds up the
rows of workers heard from within 5 heartbeats. It also fails when the answering worker's caches
have not followed the database for ``cache.max_lag_seconds``. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from accessd.models import DecisionLogWorker, utcnow
from tests.support.decision_log import entry, idle_writer, wait_for


@pytest.fixture
def ready_app(make_app):
    return make_app(decision_log={"ready_max_queued": 5, "heartbeat_seconds": 0.2})


def test_readyz_is_degraded_while_another_worker_has_records_queued_beyond_the_threshold(
    ready_app, loaded_db
):
    client = ready_app.test_client()
    assert client.get("/readyz").status_code == 200
    other = idle_writer(loaded_db, heartbeat_seconds=0.2)  # another worker process, same database
    other.record_many([entry(i) for i in range(10)])
    answer = wait_for(lambda: (r := client.get("/readyz")).status_code == 503 and r, what="503")
    log = answer.json["decision_log"]
    assert log["status"] == "degraded" and log["queued"] == 10 and log["workers"] == 1
    assert "10 decision records queued" in answer.json["reason"]
    other.close()  # writes the ten and reports an empty queue
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json["decision_log"]["queued"] == 0 and answer.json["decision_log"]["written"] == 10


def test_readyz_names_a_failing_worker_without_its_error_details_and_forgets_stale_ones(ready_app, loaded_db):
    client = ready_app.test_client()
    error = 'OperationalError: connection to server at "10.1.2.3", port 5432 failed'
    with loaded_db.session() as s:
        s.add(  # stopped reporting a minute ago (killed): left out, however full it was
            DecisionLogWorker(
                worker="gone:1:1",
                queued=10**6,
                written=0,
                failed_batches=9,
                waiting=0,
                rejected=0,
                last_error=error,
                updated_at=utcnow() - dt.timedelta(minutes=1),
            )
        )
    assert client.get("/readyz").status_code == 200
    with loaded_db.session() as s:
        s.add(
            DecisionLogWorker(
                worker="failing:2:2",
                queued=3,
                written=7,
                failed_batches=1,
                waiting=0,
                rejected=0,
                last_error=error,
                updated_at=utcnow(),
            )
        )
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert (
        answer.json["reason"]
        == "decision log: writing decision records fails in 1 worker(s) (OperationalError)"
    )
    assert "10.1.2.3" not in answer.get_data(as_text=True)
    assert answer.json["decision_log"]["queued"] == 3 and answer.json["decision_log"]["workers"] == 1


def test_readyz_fails_when_the_workers_caches_stop_following_the_database(make_app):
    import time

    app = make_app(cache={"max_lag_seconds": 1})
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["cache"]["seq"] is not None
    app.extensions["accessd"].feed.close()  # as if the feed's thread were stuck
    time.sleep(1.2)
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json["reason"].startswith("caches 1.") and "bound 1 s" in stale.json["reason"]
