"""`accessd stream` (streams for receivers without the management API) and `accessd events`."""

from __future__ import annotations

import json

from sqlalchemy import select

from accessd.config import SsfSettings
from accessd.models import SsfKey, SsfStream
from accessd.ssf import keys
from accessd.ssf.delivery import Deliverer
from tests.ssf.conftest import FAST, ISSUER, leave
from tests.support.set_receiver import event_of, verify


def _deliver(db) -> None:
    deliverer = Deliverer(db, SsfSettings(**FAST))
    try:
        while deliverer.run_once():
            pass
    finally:
        deliverer.close()


def _jwks(db) -> dict:
    with db.session() as s:
        return keys.jwks(s, 30)


def test_stream_add_pushes_the_chosen_events_with_the_given_audience_format_and_header(
    ssf_cli, loaded_db, employees, receiver
):
    out = ssf_cli(
        "stream",
        "add",
        receiver.url,
        "--events",
        "account-disabled",
        "--audience",
        "https://crm.example",
        "--format",
        "opaque",
        "--authorization",
        "Bearer cli-secret-7",
    ).output
    assert out.startswith("stream ") and "account-disabled to " + receiver.url in out
    listed = ssf_cli("stream", "list").output
    assert "cli\tenabled\tpush " + receiver.url + "\tauthorization: set\taccount-disabled\topaque" in listed
    assert "cli-secret-7" not in listed + ssf_cli("stream", "list", "--json").output

    leave(loaded_db, "b.huber")
    _deliver(loaded_db)
    (got,) = receiver.sets
    assert got.headers["Authorization"] == "Bearer cli-secret-7"
    _, claims = verify(got.token, _jwks(loaded_db), issuer=ISSUER, audience="https://crm.example")
    assert claims["sub_id"] == {"format": "opaque", "id": "b.huber"}
    assert event_of(claims)[0].endswith("/account-disabled")
    assert "delivered" in ssf_cli("stream", "list").output.splitlines()[0].split("\t")[-1]


def test_stream_add_reads_the_header_from_stdin_and_defaults_the_audience_to_the_origin(
    ssf_cli, loaded_db, receiver
):
    ssf_cli(
        "stream",
        "add",
        receiver.url,
        "--events",
        "session-revoked",
        "--authorization-file",
        "-",
        input="Bearer from-stdin\n",
    )
    with loaded_db.session() as s:
        stream = s.scalar(select(SsfStream))
        assert stream.authorization_header == "Bearer from-stdin"
        assert stream.audience == [receiver.url.rsplit("/", 1)[0]]
        assert stream.client is None


def test_stream_add_refuses_unknown_events_and_bad_urls(ssf_cli, loaded_db):
    bad = ssf_cli("stream", "add", "https://r.example/e", "--events", "session-revoked,coffee-break")
    assert bad.exit_code == 2 and "unknown event 'coffee-break'" in bad.output
    assert "session-revoked" in bad.output  # names the known ones
    assert ssf_cli("stream", "add", "r.example/e", "--events", "session-revoked").exit_code == 2
    header = ssf_cli(
        "stream", "add", "https://r.example/e", "--events", "session-revoked", "--authorization", "a\nb"
    )
    assert header.exit_code == 2
    assert ssf_cli("stream", "list").output == ""


def test_stream_remove(ssf_cli, loaded_db, receiver):
    ssf_cli("stream", "add", receiver.url, "--events", "session-revoked")
    with loaded_db.session() as s:
        sid = s.scalar(select(SsfStream.id))
    assert ssf_cli("stream", "remove", sid).output == f"removed stream {sid}\n"
    assert ssf_cli("stream", "list").output == ""
    gone = ssf_cli("stream", "remove", sid)
    assert gone.exit_code == 2 and "no stream" in gone.output


def test_events_json_lists_pending_deliveries(ssf_cli, loaded_db, employees, receiver):
    ssf_cli("stream", "add", receiver.url, "--events", "session-revoked,account-disabled")
    leave(loaded_db, "b.huber")
    rows = [json.loads(line) for line in ssf_cli("events", "--json").output.splitlines()]
    assert [(r["event"], r["status"], r["subject_id"], r["attempts"]) for r in rows] == [
        ("session-revoked", "pending", "b.huber", 0),
        ("account-disabled", "pending", "b.huber", 0),
    ]
    assert ssf_cli("events", "--status", "failed").output == ""
    assert ssf_cli("events", "retry").output == "0 failed deliveries pending again\n"


def test_rotate_key_signs_with_a_new_key_and_keeps_the_old_one_published(
    ssf_cli, loaded_db, employees, receiver
):
    ssf_cli("stream", "add", receiver.url, "--events", "session-revoked")
    leave(loaded_db, "b.huber")
    out = ssf_cli("stream", "rotate-key").output
    leave(loaded_db, "m.rossi")
    _deliver(loaded_db)
    jwks = _jwks(loaded_db)
    assert len(jwks["keys"]) == 2
    kids = [
        verify(g.token, jwks, issuer=ISSUER, audience=receiver.url.rsplit("/", 1)[0])[0]["kid"]
        for g in receiver.sets
    ]
    assert kids[0] != kids[1] and out == f"new signing key {kids[1]}\n"
    with loaded_db.session() as s:
        assert all("d" not in k for k in jwks["keys"]) and s.query(SsfKey).count() == 2


def test_token_create_accepts_the_ssf_scope(ssf_cli):
    out = ssf_cli("token", "create", "--name", "okta-receiver", "--scope", "ssf")
    assert out.exit_code == 0 and out.output.startswith("acd_")
