"""Poll delivery (RFC 8936): a receiver fetches its SETs and acknowledges them."""

from __future__ import annotations

import threading

from sqlalchemy import select

from accessd.models import SsfOutbox
from accessd.pdp import tokens
from tests.ssf.conftest import ACCOUNT_DISABLED, FAST, ISSUER, SESSION_REVOKED, Api, leave
from tests.support.set_receiver import event_of, verify


def _poll_stream(api) -> str:
    made = api.post("/ssf/streams", json={"events_requested": [SESSION_REVOKED, ACCOUNT_DISABLED]})
    assert made.status_code == 201
    return made.get_json()["stream_id"]


def test_poll_returns_pending_sets_in_order_until_acknowledged(api, loaded_db, ssf_cli):
    sid = _poll_stream(api)
    url = f"/ssf/poll/{sid}"
    assert api.post(url, json={"returnImmediately": True}).get_json() == {"sets": {}, "moreAvailable": False}
    leave(loaded_db, "b.huber")

    answer = api.post(url, json={"returnImmediately": True})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    sets = answer.get_json()["sets"]
    jwks = api.client.get("/ssf/jwks.json").get_json()
    claims = [verify(token, jwks, issuer=ISSUER, audience="receiver-a")[1] for token in sets.values()]
    assert [event_of(c)[0] for c in claims] == [SESSION_REVOKED, ACCOUNT_DISABLED]
    assert list(sets) == [c["jti"] for c in claims]
    first, second = sets

    # not acknowledged: handed out again; maxEvents bounds the answer
    again = api.post(url, json={"returnImmediately": True, "maxEvents": 1}).get_json()
    assert list(again["sets"]) == [first] and again["moreAvailable"] is True

    acked = api.post(url, json={"ack": [first], "returnImmediately": True}).get_json()
    assert list(acked["sets"]) == [second] and acked["moreAvailable"] is False

    reported = {second: {"err": "invalid_key", "description": "unknown kid"}}
    done = api.post(url, json={"setErrs": reported, "maxEvents": 0}).get_json()
    assert done == {"sets": {}, "moreAvailable": False}
    with loaded_db.session() as s:
        rows = list(s.scalars(select(SsfOutbox).order_by(SsfOutbox.id)))
    assert [r.status for r in rows] == ["delivered", "failed"]
    assert rows[1].last_error == "receiver: invalid_key: unknown kid"
    assert "failed\taccount-disabled\tb.huber" in ssf_cli("events").output
    assert "\tpoll\t" in ssf_cli("events").output


def test_a_long_poll_answers_as_soon_as_an_event_is_queued(make_app, employees, loaded_db):
    app = make_app(ssf={**FAST, "poll_wait_seconds": 30})
    with loaded_db.session() as s:
        api = Api(app.test_client(), tokens.create(s, "receiver-a", "ssf"))
    sid = _poll_stream(api)
    later = threading.Timer(0.2, leave, args=(loaded_db, "b.huber"))
    later.start()
    try:
        answer = api.post(f"/ssf/poll/{sid}", json={})  # returnImmediately defaults to false
    finally:
        later.join()
    assert len(answer.get_json()["sets"]) >= 1  # well before the 30 s the poll may be held


def test_a_paused_poll_stream_answers_nothing_and_a_push_stream_cannot_be_polled(api, loaded_db, receiver):
    sid = _poll_stream(api)
    api.post("/ssf/status", json={"stream_id": sid, "status": "paused"})
    leave(loaded_db, "b.huber")
    assert api.post(f"/ssf/poll/{sid}", json={"returnImmediately": True}).get_json()["sets"] == {}
    api.post("/ssf/status", json={"stream_id": sid, "status": "enabled"})
    assert len(api.post(f"/ssf/poll/{sid}", json={"returnImmediately": True}).get_json()["sets"]) == 2

    push = api.push_stream(receiver.url)["stream_id"]
    assert api.post(f"/ssf/poll/{push}", json={}).status_code == 400


def test_bad_poll_requests_are_refused(api):
    sid = _poll_stream(api)
    for body, pointer in (
        ({"maxEvents": -1}, "/maxEvents"),
        ({"maxEvents": True}, "/maxEvents"),
        ({"ack": "all"}, "/ack"),
        ({"setErrs": {"x": "bad"}}, "/setErrs/x"),
        ({"returnImmediately": "yes"}, "/returnImmediately"),
        ({"acks": []}, "/acks"),
    ):
        answer = api.post(f"/ssf/poll/{sid}", json=body)
        assert answer.status_code == 400 and answer.get_json()["pointer"] == pointer, body
    empty = api.post(f"/ssf/poll/{sid}", data=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 200  # no body: a poll with every default (returns after the wait)
