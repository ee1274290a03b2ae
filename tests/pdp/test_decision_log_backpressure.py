"""Backpressure over HTTP: when the decision log cannot take a call's records in time, the call
is answered 503 with Retry-After and none of its records are queued -- no decision is answered
without its record, and no record of an unanswered call is written. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.api import CUSTOMER, evaluation
from tests.support.decision_log import count_rows, writes_blocked


@pytest.fixture
def small_log_app(make_app):
    """The service with room for three queued records, waiting at most 0.2 s for more."""
    return make_app(
        decision_log={
            "buffer_size": 3,
            "max_wait_seconds": 0.2,
            "batch_size": 10_000,
            "flush_seconds": 60,
        }
    )


def fields_call(n: int) -> dict:
    return {
        "subject": {"type": "user", "id": "r.schmidt"},
        "action": {"name": "read"},
        "context": {"purpose": "care"},
        "records": [{"type": "customer", "id": f"c{i}", "properties": CUSTOMER} for i in range(n)],
    }


def test_a_call_the_log_cannot_take_is_answered_503_with_retry_after_and_leaves_no_record(
    small_log_app, loaded_db, auth
):
    client = small_log_app.test_client()
    assert client.post("/access/v1/fields", json=fields_call(3), headers=auth).status_code == 200
    with writes_blocked(loaded_db):  # the writer cannot make room in time
        full = client.post("/access/v1/fields", json=fields_call(3), headers=auth)
        single = client.post(
            "/access/v1/evaluation", json=evaluation("r.schmidt", field="email"), headers=auth
        )
    for answer in (full, single):
        assert answer.status_code == 503
        assert answer.json["error"] == "unavailable" and "decision log" in answer.json["message"]
        assert int(answer.headers["Retry-After"]) >= 1
        assert "decision" not in answer.json and "results" not in answer.json
    small_log_app.extensions["accessd"].close()
    assert count_rows(loaded_db) == 3  # the first call's three records; none of the refused calls
    assert small_log_app.extensions["accessd"].decision_log.stats()["rejected"] == 2
    # once the log has room again, calls are answered (and logged) as before
    assert client.post("/access/v1/fields", json=fields_call(2), headers=auth).status_code == 200
    small_log_app.extensions["accessd"].close()
    assert count_rows(loaded_db) == 5
