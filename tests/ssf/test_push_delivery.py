"""Push delivery (RFC 8935) through the real triggers: what reaches a receiver, in which order,
signed how, and what happens when the receiver refuses."""

from __future__ import annotations

import json
import urllib.request

from sqlalchemy import select

from accessd import accounts
from accessd.models import Account, SsfOutbox
from accessd.pdp import tokens
from accessd.ssf import events as ev
from tests.ssf.conftest import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    CLAIMS_CHANGE,
    FAST,
    ISSUER,
    SESSION_REVOKED,
    come_back,
    leave,
)
from tests.support.set_receiver import SetReceiver, event_of, fetch_json, verify

SECRET = "Bearer s3cr3t-of-the-receiver"


def _post(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


def test_a_departure_reaches_the_receiver_as_one_session_revoked_then_one_account_disabled(
    loaded_db, employees, serve, monkeypatch, tmp_path, ssf_cli
):
    """The live server (gunicorn, two workers) delivers what an offboarding in another process
    queued; the receiver refuses the first two POSTs, verifies the signature with the JWKS it
    fetches from the server, and sees each SET once, in order; offboarding again sends nothing."""
    with loaded_db.session() as s:
        token = tokens.create(s, "crm-receiver", "ssf")
    base, _ = serve(
        loaded_db.url,
        ACCESSD_SSF_RETRY_FIRST_SECONDS="0.05",
        ACCESSD_SSF_OUTBOX_POLL_SECONDS="0.1",
    )
    monkeypatch.setenv("ACCESSD_PUBLIC_URL", base)  # this process signs what it queues as that issuer
    with SetReceiver(refuse=2) as receiver:
        stream = _post(
            base + "/ssf/streams",
            token,
            {
                "delivery": {"method": ev.PUSH, "endpoint_url": receiver.url, "authorization_header": SECRET},
                "events_requested": [SESSION_REVOKED, ACCOUNT_DISABLED],
            },
        )
        assert leave(loaded_db, "b.huber", reason="contract ended") is True
        got = receiver.wait_for(2, timeout=15)

        config = fetch_json(base + "/.well-known/ssf-configuration")
        jwks = fetch_json(config["jwks_uri"])
        assert config["issuer"] == stream["iss"] == base
        claims = [verify(g.token, jwks, issuer=base, audience="crm-receiver")[1] for g in got]
        assert [event_of(c)[0] for c in claims] == [SESSION_REVOKED, ACCOUNT_DISABLED]
        assert all(c["sub_id"] == {"format": "email", "email": "b.huber@practice.example"} for c in claims)
        assert claims[0]["txn"] == claims[1]["txn"] and claims[0]["jti"] != claims[1]["jti"]
        assert event_of(claims[0])[1]["reason_admin"] == {"en": "contract ended"}
        assert event_of(claims[0])[1]["initiating_entity"] == "admin"  # `accessd offboard`'s source
        for g in got:
            assert g.headers["Content-Type"] == "application/secevent+jwt"
            assert g.headers["Authorization"] == SECRET
        # the two refusals were the first SET, tried again with the same jti (never the second first)
        assert len(receiver.posts) == 4 and {p.token for p in receiver.posts[:3]} == {got[0].token}

        assert leave(loaded_db, "b.huber") is False  # already offboarded: nothing changes ...
        with loaded_db.session() as s:
            assert s.query(SsfOutbox).count() == 2  # ... and nothing more is sent

    listed = ssf_cli("events", "--status", "delivered").output
    assert listed.count("\tdelivered\t") == 2 and "session-revoked" in listed
    logs = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "s3cr3t" not in listed and "s3cr3t" not in logs


def test_reenable_sends_account_enabled_and_a_role_change_token_claims_change(api, receiver, loaded_db):
    api.push_stream(receiver.url, [ACCOUNT_ENABLED, CLAIMS_CHANGE], format="opaque")
    leave(loaded_db, "b.huber")  # the stream asked for neither of its events: nothing queued
    assert come_back(loaded_db, "b.huber") is True
    with loaded_db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == "b.huber"))
        accounts.grant(s, account, "reception", source="manual", actor="test")
    jwks = api.client.get("/ssf/jwks.json").get_json()
    claims = [verify(g.token, jwks, issuer=ISSUER, audience="receiver-a")[1] for g in receiver.wait_for(2)]
    assert [event_of(c)[0] for c in claims] == [ACCOUNT_ENABLED, CLAIMS_CHANGE]
    assert claims[0]["sub_id"] == {"format": "opaque", "id": "b.huber"}
    assert event_of(claims[1])[1]["claims"] == {"roles": ["reception"]}


def test_iss_sub_names_accessd_as_issuer(api, receiver, loaded_db):
    api.push_stream(receiver.url, [SESSION_REVOKED], format="iss_sub")
    leave(loaded_db, "m.rossi")
    (got,) = receiver.wait_for(1)
    _, claims = verify(
        got.token, api.client.get("/ssf/jwks.json").get_json(), issuer=ISSUER, audience="receiver-a"
    )
    assert claims["sub_id"] == {"format": "iss_sub", "iss": ISSUER, "sub": "m.rossi"}


def test_a_suspension_revokes_sessions_and_disables(api, receiver, loaded_db):
    from accessd.lifecycle.offboarding import suspend

    api.push_stream(receiver.url)
    with loaded_db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == "t.meyer"))
        assert suspend(s, account, reason="parental leave", source="hr", actor="test")
    jwks = api.client.get("/ssf/jwks.json").get_json()
    claims = [verify(g.token, jwks, issuer=ISSUER, audience="receiver-a")[1] for g in receiver.wait_for(2)]
    assert [event_of(c)[0] for c in claims] == [SESSION_REVOKED, ACCOUNT_DISABLED]


def test_a_receiver_that_keeps_refusing_ends_failed_and_retry_delivers(api, loaded_db, ssf_cli):
    with SetReceiver(refuse=10**6) as receiver:
        sid = api.push_stream(receiver.url, [SESSION_REVOKED, ACCOUNT_DISABLED], authorization_header=SECRET)[
            "stream_id"
        ]
        leave(loaded_db, "b.huber")
        _wait_until(lambda: _statuses(loaded_db) == ["failed", "failed"])
        first, second = _tokens(loaded_db)
        # max_attempts (4) each, and the second only once the first had failed for good
        assert [p.token for p in receiver.posts] == [first] * 4 + [second] * 4
        listed = ssf_cli("events").output
        assert "failed\tsession-revoked\tb.huber" in listed and "HTTP 503" in listed
        assert "s3cr3t" not in listed and "s3cr3t" not in ssf_cli("events", "--json").output
        assert "s3cr3t" not in ssf_cli("stream", "list").output
        receiver.refuse = 0
        assert "2 failed deliveries pending again" in ssf_cli("events", "retry", "--stream", sid).output
        assert [g.token for g in receiver.wait_for(2)] == [first, second]
    _wait_until(lambda: _statuses(loaded_db) == ["delivered", "delivered"])


def test_a_receiver_that_rejects_the_set_fails_it_at_once(api, loaded_db):
    refusal = {"err": "invalid_audience", "description": "not us"}
    with SetReceiver(refuse=1, refuse_status=400, refuse_body=refusal) as receiver:
        api.push_stream(receiver.url, [SESSION_REVOKED, ACCOUNT_DISABLED])
        leave(loaded_db, "b.huber")
        # the second goes once the first has failed for good
        _wait_until(lambda: _statuses(loaded_db) == ["failed", "delivered"])
    with loaded_db.session() as s:
        rows = list(s.scalars(select(SsfOutbox).order_by(SsfOutbox.id)))
    assert [(r.status, r.attempts) for r in rows] == [("failed", 1), ("delivered", 1)]
    assert rows[0].last_error == "HTTP 400 invalid_audience: not us"


def test_redirects_are_not_followed(api, loaded_db):
    with SetReceiver(refuse=10**6, refuse_status=307) as receiver:
        api.push_stream(receiver.url, [SESSION_REVOKED])
        leave(loaded_db, "b.huber")
        _wait_until(lambda: _statuses(loaded_db) == ["failed"])
    with loaded_db.session() as s:
        assert "redirects are not followed" in s.scalar(select(SsfOutbox.last_error))


def _statuses(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(SsfOutbox.status).order_by(SsfOutbox.id)))


def _tokens(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(SsfOutbox.token).order_by(SsfOutbox.id)))


def _wait_until(check, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_scheduler_process_pushes_what_it_queues(db, receiver):
    from accessd import jobs
    from accessd.config import load_settings
    from accessd.ssf import streams

    with db.session() as s:
        accounts.upsert(s, subject_id="alice", username="alice", email="alice@x.example")
    streams.add_push_stream(
        db, receiver.url, ["session-revoked"], audience=None, fmt="email", authorization=None, actor="test"
    )
    jobs.start_event_delivery(db, load_settings(overrides={"ssf": FAST}))
    try:
        leave(db, "alice")  # as the departures job would
        (got,) = receiver.wait_for(1)
        assert event_of(json.loads(_payload(got.token)))[0] == SESSION_REVOKED
    finally:
        jobs._deliverer.close()


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
