"""A client that speaks only AuthZEN 1.0 (plain urllib, spec shapes only) against the real
service under gunicorn: discovery, evaluations, batch; then a clean shutdown loses no log entry."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select

from accessd.models import DecisionLog
from tests.support.api import CUSTOMER, post_json


@pytest.fixture
def server(serve, loaded_db, employees, token):
    base, proc = serve(loaded_db.url)
    return base, token, proc


def test_an_authzen_only_client_gets_correct_decisions(server, loaded_db):
    base, token, proc = server
    with urllib.request.urlopen(base + "/.well-known/authzen-configuration") as r:
        cfg = json.load(r)
    evaluate = cfg["access_evaluation_endpoint"]

    def ask(subject, field, purpose, props=CUSTOMER):
        return post_json(
            evaluate,
            token,
            {
                "subject": {"type": "user", "id": subject},
                "resource": {"type": "customer", "id": "123", "properties": props},
                "action": {"name": "read", "properties": {"field": field}},
                "context": {"purpose": purpose},
            },
        )["decision"]

    assert ask("b.huber", "iban", "billing") is True
    assert ask("r.schmidt", "iban", "care") is False  # masked: never true for an AuthZEN-only client
    assert ask("t.meyer", "diagnosis", "care") is True
    assert ask("t.meyer", "diagnosis", "care", dict(CUSTOMER, assigned_therapist_id="x")) is False
    assert ask("m.rossi", "email", "marketing") is True
    assert ask("m.rossi", "email", "marketing", dict(CUSTOMER, marketing_opt_in=False)) is False
    assert ask("k.weber", "diagnosis", "care") is False  # has left

    batch = post_json(
        cfg["access_evaluations_endpoint"],
        token,
        {
            "subject": {"type": "user", "id": "r.schmidt"},
            "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
            "context": {"purpose": "care"},
            "evaluations": [
                {"action": {"name": "read", "properties": {"field": f}}}
                for f in ("email", "diagnosis", "city")
            ],
            "options": {"evaluations_semantic": "execute_all"},
        },
    )
    assert [e["decision"] for e in batch["evaluations"]] == [True, False, True]

    try:
        post_json(evaluate, "acd_not-a-token", {})
        raise AssertionError("expected 401")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401 and json.load(exc)["error"] == "unauthorized"

    # clean shutdown: every decision made so far (7 single + 3 batch) is in the log
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    with loaded_db.session() as s:
        assert s.scalar(select(func.count(DecisionLog.id))) == 10
