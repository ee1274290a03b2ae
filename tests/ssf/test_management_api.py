"""The transmitter's discovery document, JWKS and the SSF 1.0 stream management API."""

from __future__ import annotations

from sqlalchemy import select

from accessd.models import AuditEvent, SsfOutbox
from accessd.ssf import events as ev
from tests.ssf.conftest import ACCOUNT_DISABLED, ISSUER, SESSION_REVOKED, leave
from tests.support.set_receiver import verify


def test_configuration_names_every_endpoint_under_the_issuer(api):
    doc = api.client.get("/.well-known/ssf-configuration")
    assert doc.status_code == 200 and doc.mimetype == "application/json"
    body = doc.get_json()
    assert body["issuer"] == ISSUER and body["spec_version"] == "1_0"
    assert body["delivery_methods_supported"] == ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]
    assert body["default_subjects"] == "ALL"
    assert body["jwks_uri"] == ISSUER + "/ssf/jwks.json"
    for name, path in (
        ("configuration_endpoint", "/ssf/streams"),
        ("status_endpoint", "/ssf/status"),
        ("add_subject_endpoint", "/ssf/subjects:add"),
        ("remove_subject_endpoint", "/ssf/subjects:remove"),
        ("verification_endpoint", "/ssf/verify"),
    ):
        assert body[name] == ISSUER + path


def test_jwks_publishes_one_public_es256_key_and_never_the_private_part(api):
    first = api.client.get("/ssf/jwks.json").get_json()
    again = api.client.get("/ssf/jwks.json").get_json()
    assert first == again and len(first["keys"]) == 1
    (key,) = first["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
    assert "d" not in key


def test_create_read_update_replace_delete(api, receiver):
    made = api.push_stream(receiver.url, [SESSION_REVOKED, "urn:example:unknown"], description="CRM")
    assert made["iss"] == ISSUER and made["aud"] == "receiver-a" and made["format"] == "email"
    assert made["events_requested"] == [SESSION_REVOKED, "urn:example:unknown"]
    assert made["events_delivered"] == [SESSION_REVOKED]  # unknown URIs are ignored
    assert made["events_supported"] == list(ev.SUPPORTED)
    sid = made["stream_id"]

    one = api.get(f"/ssf/streams?stream_id={sid}")
    assert one.status_code == 200 and one.get_json() == made
    assert one.headers["Cache-Control"] == "no-store"
    assert api.get("/ssf/streams").get_json() == [made]

    patched = api.patch(
        "/ssf/streams", json={"stream_id": sid, "events_requested": [ACCOUNT_DISABLED], "format": "opaque"}
    ).get_json()
    assert patched["events_delivered"] == [ACCOUNT_DISABLED] and patched["format"] == "opaque"
    assert patched["description"] == "CRM"  # what the PATCH left out stays

    replaced = api.put(
        "/ssf/streams",
        json={"stream_id": sid, "delivery": made["delivery"], "events_requested": [SESSION_REVOKED]},
    ).get_json()
    assert "description" not in replaced and replaced["format"] == "email"  # a PUT removes the rest

    assert api.delete(f"/ssf/streams?stream_id={sid}").status_code == 204
    assert api.get(f"/ssf/streams?stream_id={sid}").status_code == 404
    assert api.get("/ssf/streams").get_json() == []


def test_a_stream_without_delivery_is_polled_at_its_own_url(api):
    made = api.post("/ssf/streams", json={"events_requested": [SESSION_REVOKED]}).get_json()
    assert made["delivery"] == {"method": ev.POLL, "endpoint_url": f"{ISSUER}/ssf/poll/{made['stream_id']}"}


def test_without_a_token_401_with_another_scope_403(api, loaded_db, receiver):
    from accessd.pdp import tokens

    with loaded_db.session() as s:
        decide = tokens.create(s, "crm-app", "decide")
    assert api.client.get("/ssf/streams").status_code == 401
    answer = api.client.get("/ssf/streams", headers={"Authorization": f"Bearer {decide}"})
    assert answer.status_code == 403 and "ssf" in answer.get_json()["message"]


def test_another_receivers_stream_does_not_exist_for_it(api, other_api, receiver):
    sid = api.push_stream(receiver.url)["stream_id"]
    assert other_api.get("/ssf/streams").get_json() == []
    for answer in (
        other_api.get(f"/ssf/streams?stream_id={sid}"),
        other_api.patch("/ssf/streams", json={"stream_id": sid, "description": "mine"}),
        other_api.delete(f"/ssf/streams?stream_id={sid}"),
        other_api.get(f"/ssf/status?stream_id={sid}"),
        other_api.post("/ssf/status", json={"stream_id": sid, "status": "disabled"}),
        other_api.post("/ssf/verify", json={"stream_id": sid}),
        other_api.post(
            "/ssf/subjects:remove", json={"stream_id": sid, "subject": {"format": "opaque", "id": "x"}}
        ),
        other_api.post(f"/ssf/poll/{sid}", json={}),
    ):
        assert answer.status_code == 404, answer.get_json()
    assert api.get(f"/ssf/status?stream_id={sid}").get_json() == {"stream_id": sid, "status": "enabled"}


def test_bad_requests_are_refused_with_what_is_wrong(api, receiver):
    cases = [
        ({"delivery": {"method": "urn:example:carrier-pigeon"}}, "/delivery/method"),
        ({"delivery": {"method": ev.PUSH}}, "/delivery/endpoint_url"),
        ({"delivery": {"method": ev.PUSH, "endpoint_url": "ftp://x"}}, "/delivery/endpoint_url"),
        (
            {
                "delivery": {
                    "method": ev.PUSH,
                    "endpoint_url": receiver.url,
                    "authorization_header": "a\r\nX: y",
                }
            },
            "/delivery/authorization_header",
        ),
        ({"event_requested": [SESSION_REVOKED]}, "/event_requested"),  # misspelt: refused, not ignored
        ({"events_requested": "all"}, "/events_requested"),
        ({"format": "phone_number"}, "/format"),
        ({"iss": "https://someone-else.example"}, "/iss"),
    ]
    for body, pointer in cases:
        answer = api.post("/ssf/streams", json=body)
        assert answer.status_code == 400, body
        assert answer.get_json()["pointer"] == pointer, answer.get_json()
    assert api.post("/ssf/streams", data="{", content_type="application/json").status_code == 400
    assert api.post("/ssf/streams", data="x", content_type="text/plain").status_code == 415
    assert api.get("/ssf/streams").get_json() == []  # nothing half-made


def test_put_without_delivery_and_transmitter_members_that_differ_are_refused(api, receiver):
    made = api.push_stream(receiver.url)
    sid = made["stream_id"]
    assert api.put("/ssf/streams", json={"stream_id": sid}).status_code == 400
    wrong = api.patch("/ssf/streams", json={"stream_id": sid, "aud": "someone-else"})
    assert wrong.status_code == 400 and wrong.get_json()["pointer"] == "/aud"
    same = api.patch("/ssf/streams", json={**made, "description": "read, changed, written back"})
    assert same.status_code == 200 and same.get_json()["description"] == "read, changed, written back"


def test_the_authorization_header_is_never_shown_and_kept_across_a_read_modify_write(
    api, receiver, loaded_db, caplog
):
    made = api.push_stream(receiver.url, authorization_header="Bearer receiver-secret-1")
    sid = made["stream_id"]
    shown = [made, api.get(f"/ssf/streams?stream_id={sid}").get_json(), api.get("/ssf/streams").get_json()]
    # read, change the description, write the whole thing back: the secret stays
    written = api.put("/ssf/streams", json={**made, "description": "x"}).get_json()
    shown.append(written)
    with loaded_db.session() as s:
        audit = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("ssf.%")))]
    assert all("receiver-secret-1" not in repr(x) for x in (*shown, *audit))
    assert "receiver-secret-1" not in caplog.text
    leave(loaded_db, "b.huber")
    (got,) = receiver.wait_for(1)[:1]
    assert got.headers["Authorization"] == "Bearer receiver-secret-1"

    # a new URL without a header drops the secret: it is never sent to another URL
    with type(receiver)() as elsewhere:
        api.patch(
            "/ssf/streams",
            json={"stream_id": sid, "delivery": {"method": ev.PUSH, "endpoint_url": elsewhere.url}},
        )
        leave(loaded_db, "m.rossi")
        got = elsewhere.wait_for(1)[0]
        assert "Authorization" not in got.headers


def test_status_pause_holds_events_and_enable_delivers_them_in_order(api, receiver, loaded_db):
    sid = api.push_stream(receiver.url)["stream_id"]
    paused = api.post("/ssf/status", json={"stream_id": sid, "status": "paused", "reason": "maintenance"})
    assert paused.get_json() == {"stream_id": sid, "status": "paused", "reason": "maintenance"}
    assert api.get(f"/ssf/status?stream_id={sid}").get_json()["status"] == "paused"
    leave(loaded_db, "b.huber")
    with loaded_db.session() as s:
        assert [r.status for r in s.scalars(select(SsfOutbox))] == ["pending", "pending"]  # held
    assert receiver.posts == []
    api.post("/ssf/status", json={"stream_id": sid, "status": "enabled"})
    jwks = api.client.get("/ssf/jwks.json").get_json()
    claims = [verify(g.token, jwks, issuer=ISSUER, audience="receiver-a")[1] for g in receiver.wait_for(2)]
    assert [next(iter(c["events"])) for c in claims] == [SESSION_REVOKED, ACCOUNT_DISABLED]


def test_status_disabled_drops_held_events_and_queues_none(api, receiver, loaded_db):
    sid = api.push_stream(receiver.url)["stream_id"]
    api.post("/ssf/status", json={"stream_id": sid, "status": "paused"})
    leave(loaded_db, "b.huber")
    api.post("/ssf/status", json={"stream_id": sid, "status": "disabled"})
    leave(loaded_db, "m.rossi")
    with loaded_db.session() as s:
        assert list(s.scalars(select(SsfOutbox))) == []
    assert api.post("/ssf/status", json={"stream_id": sid, "status": "sleeping"}).status_code == 400
    assert api.post("/ssf/verify", json={"stream_id": sid}).status_code == 400


def test_a_removed_subject_gets_no_events_until_added_again(api, receiver, loaded_db):
    sid = api.push_stream(receiver.url, [SESSION_REVOKED])["stream_id"]
    gone = api.post(
        "/ssf/subjects:remove",
        json={"stream_id": sid, "subject": {"format": "email", "email": "B.Huber@practice.example"}},
    )
    assert gone.status_code == 204
    leave(loaded_db, "b.huber")
    api.post(
        "/ssf/subjects:add",
        json={
            "stream_id": sid,
            "subject": {"format": "iss_sub", "iss": ISSUER, "sub": "m.rossi"},
            "verified": True,
        },
    )
    api.post(
        "/ssf/subjects:remove", json={"stream_id": sid, "subject": {"format": "opaque", "id": "m.rossi"}}
    )
    back = api.post(
        "/ssf/subjects:add", json={"stream_id": sid, "subject": {"format": "opaque", "id": "m.rossi"}}
    )
    assert back.status_code == 200
    leave(loaded_db, "m.rossi")
    got = receiver.wait_for(1)
    jwks = api.client.get("/ssf/jwks.json").get_json()
    assert [
        verify(g.token, jwks, issuer=ISSUER, audience="receiver-a")[1]["sub_id"]["email"] for g in got
    ] == ["m.rossi@practice.example"]
    with loaded_db.session() as s:
        assert s.scalar(select(SsfOutbox.subject_id)) == "m.rossi"  # none was written for b.huber


def test_subjects_unknown_ones_are_answered_alike_and_bad_ones_refused(api, receiver):
    sid = api.push_stream(receiver.url)["stream_id"]
    nobody = {"stream_id": sid, "subject": {"format": "email", "email": "nobody@nowhere.example"}}
    assert api.post("/ssf/subjects:remove", json=nobody).status_code == 204  # no probing who works here
    assert api.post("/ssf/subjects:add", json=nobody).status_code == 200
    phone = {"stream_id": sid, "subject": {"format": "phone_number", "phone_number": "+1"}}
    assert api.post("/ssf/subjects:add", json=phone).status_code == 400
    itself = {"stream_id": sid, "subject": {"format": "opaque", "id": sid}}
    assert api.post("/ssf/subjects:remove", json=itself).status_code == 400


def test_verification_sends_a_signed_set_with_the_state(api, receiver):
    sid = api.push_stream(receiver.url, [])["stream_id"]  # no events requested: verification still goes
    assert api.post("/ssf/verify", json={"stream_id": sid, "state": "c3RhdGU="}).status_code == 204
    (got,) = receiver.wait_for(1)
    _, claims = verify(
        got.token, api.client.get("/ssf/jwks.json").get_json(), issuer=ISSUER, audience="receiver-a"
    )
    assert claims["sub_id"] == {"format": "opaque", "id": sid}
    assert claims["events"] == {ev.VERIFICATION: {"state": "c3RhdGU="}}
    assert got.headers["Content-Type"] == "application/secevent+jwt"


def test_a_body_without_content_type_is_read_as_json(api, receiver):
    """SSF 1.0's examples send the management requests without a Content-Type."""
    body = b'{"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "%s"}}' % receiver.url.encode()
    made = api.client.open("/ssf/streams", method="POST", data=body, headers=api.headers)
    assert made.status_code == 201, made.get_json()
