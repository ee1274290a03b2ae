"""What a standard AuthZEN 1.0 client expects beyond the demo cases: request ids on every answer,
discovery that names the configured URL, per-entry errors in batches, unknown vocabulary as a
deny, JSON only, bounded work, and search paging that cannot mix two queries."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from accessd.models import DecisionLog
from tests.support.api import CUSTOMER, evaluation

EVAL = "/access/v1/evaluation"
BATCH = "/access/v1/evaluations"


def _logged(app) -> int:
    services = app.extensions["accessd"]
    services.decision_log.flush()
    with services.db.session() as s:
        return s.scalar(select(func.count(DecisionLog.id)))


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("post", EVAL, {"json": evaluation("r.schmidt", field="email")}, 200),
        ("post", EVAL, {"data": b"{not json", "content_type": "application/json"}, 400),
        ("post", EVAL, {"data": b"{}", "content_type": "text/plain"}, 415),
        ("post", "/access/v1/nowhere", {"json": {}}, 404),
        ("get", EVAL, {}, 405),
        ("get", "/.well-known/authzen-configuration", {}, 200),
        ("get", "/healthz", {}, 200),
    ],
)
def test_the_request_id_comes_back_on_every_answer(client, auth, method, url, kwargs, status):
    r = getattr(client, method)(url, headers={**auth, "X-Request-ID": "req-42"}, **kwargs)
    assert r.status_code == status
    assert r.headers["X-Request-ID"] == "req-42"


def test_the_request_id_comes_back_on_authentication_errors(client):
    r = client.post(EVAL, json={}, headers={"X-Request-ID": "req-43"})
    assert r.status_code == 401 and r.headers["X-Request-ID"] == "req-43"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_discovery_names_the_configured_url_never_the_host_header(make_app):
    app = make_app(public_url="https://pdp.practice.example/")
    r = app.test_client().get("/.well-known/authzen-configuration", headers={"Host": "evil.example"})
    doc = r.json
    assert doc["policy_decision_point"] == "https://pdp.practice.example"
    assert doc["access_evaluation_endpoint"] == "https://pdp.practice.example/access/v1/evaluation"
    assert "evil.example" not in r.get_data(as_text=True)


def test_a_bad_entry_in_a_batch_is_a_deny_with_its_error_and_the_others_are_decided(app, client, auth):
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
        "context": {"purpose": "care"},
        "evaluations": [
            {"action": {"name": "read", "properties": {"field": "email"}}},
            {"action": {"name": 5}},
            "not an object",
            {"action": {"name": "read", "properties": {"field": "city"}}},
            {
                "resource": {"type": "customer", "id": "1", "properties": {"retention_until": "soon"}},
                "action": {"name": "read", "properties": {"field": "city"}},
            },
            {"resource": {"type": "customer", "id": "2"}},  # no action here nor at the top level
        ],
    }
    r = client.post(BATCH, json=body, headers=auth)
    assert r.status_code == 200
    out = r.json["evaluations"]
    assert [e["decision"] for e in out] == [True, False, False, True, False, False]
    assert out[1]["context"]["error"]["pointer"] == "/evaluations/1/action/name"
    assert out[2]["context"]["error"]["pointer"] == "/evaluations/2"
    assert out[4]["context"]["error"]["pointer"] == "/evaluations/4/resource/properties/retention_until"
    assert out[5]["context"]["error"]["pointer"] == "/action"  # the missing top-level default
    assert "error" not in out[0]["context"] and "error" not in out[3]["context"]
    # every answer, including the refused entries, has its record
    assert _logged(app) == 6


def test_a_batch_malformed_as_a_whole_is_a_400(client, auth):
    r = client.post(BATCH, json={"evaluations": {"not": "an array"}}, headers=auth)
    assert r.status_code == 400 and r.json["pointer"] == "/evaluations"
    r = client.post(
        BATCH,
        json={"evaluations": [{}], "options": {"evaluations_semantic": "whatever"}},
        headers=auth,
    )
    assert r.status_code == 400 and r.json["pointer"] == "/options/evaluations_semantic"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"resource": {"type": "spaceship", "id": "1"}}, "unknown_resource_type"),
        ({"action": {"name": "launch"}}, "unknown_action"),
        ({"action": {"name": "read", "properties": {"field": "horoscope"}}}, "unknown_field"),
        ({"context": {"purpose": "curiosity", "explain": True}}, "unknown_purpose"),
    ],
)
def test_unknown_vocabulary_is_a_deny_with_its_reason(app, client, auth, change, reason):
    body = {**evaluation("r.schmidt", field="email", explain=True), **change}
    body["context"] = {**body["context"], "explain": True}
    r = client.post(EVAL, json=body, headers=auth)
    assert r.status_code == 200, r.json
    assert r.json["decision"] is False
    assert r.json["context"]["reason"] == reason
    assert _logged(app) == 1


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_declared_json_is_a_415(app, client, auth, content_type):
    headers = dict(auth)
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post(EVAL, data=json.dumps(evaluation("r.schmidt", field="email")), headers=headers)
    assert r.status_code == 415
    assert "application/json" in r.json["message"]
    assert _logged(app) == 0


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client, auth):
    data = json.dumps(evaluation("r.schmidt", field="email"))
    for ct in ("application/json; charset=utf-8", "application/authzen+json"):
        r = client.post(EVAL, data=data, headers={**auth, "Content-Type": ct})
        assert r.status_code == 200, (ct, r.json)


def test_work_per_request_is_bounded_with_a_413_that_names_the_limit(app, client, auth):
    # the review's request: 1,000 small entries sharing a 1,000-field list given once at the top
    fields = [f"f{i}" for i in range(1000)]
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "action": {"name": "read", "properties": {"fields": fields}},
        "context": {"purpose": "care"},
        "evaluations": [{"resource": {"type": "customer", "id": str(i)}} for i in range(1000)],
    }
    assert len(json.dumps(body)) < 60_000
    r = client.post(BATCH, json=body, headers=auth)
    assert r.status_code == 413
    assert "50000" in r.json["message"] and "1000000" in r.json["message"]
    records = [{"type": "customer", "id": str(i), "properties": CUSTOMER} for i in range(1000)]
    body = {"subject": {"type": "user", "id": "b.huber"}, "action": {"name": "read"}, "records": records}
    app.extensions["accessd"].settings.api.max_decisions = 10_000
    r = client.post("/access/v1/fields", json=body, headers=auth)
    assert r.status_code == 413 and "10000" in r.json["message"]
    assert _logged(app) == 0  # nothing was decided


def test_a_batch_just_under_the_limit_is_answered(app, client, auth):
    app.extensions["accessd"].settings.api.max_decisions = 100
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "1", "properties": CUSTOMER},
        "context": {"purpose": "care"},
        "evaluations": [{"action": {"name": "read", "properties": {"fields": ["email", "city"]}}}] * 50,
    }
    assert client.post(BATCH, json=body, headers=auth).status_code == 200
    body["evaluations"].append({"action": {"name": "read", "properties": {"field": "email"}}})
    assert client.post(BATCH, json=body, headers=auth).status_code == 413


SEARCH = {
    "subject": {"type": "user"},
    "resource": {"type": "customer", "id": "1", "properties": CUSTOMER},
    "action": {"name": "read", "properties": {"field": "client_id"}},
    "context": {"purpose": "care"},
}


def test_search_page_limit_zero_gives_only_the_total(client, auth):
    r = client.post("/access/v1/search/subject", json={**SEARCH, "page": {"limit": 0}}, headers=auth)
    assert r.status_code == 200
    assert r.json["results"] == [] and r.json["page"]["count"] == 0 and r.json["page"]["total"] >= 2


def test_a_page_token_is_bound_to_its_query(client, auth):
    first = client.post("/access/v1/search/subject", json={**SEARCH, "page": {"limit": 1}}, headers=auth).json
    token = first["page"]["next_token"]
    assert token
    same = client.post(
        "/access/v1/search/subject", json={**SEARCH, "page": {"limit": 1, "token": token}}, headers=auth
    )
    assert same.status_code == 200 and same.json["results"] != first["results"]
    other = {**SEARCH, "context": {"purpose": "billing"}, "page": {"limit": 1, "token": token}}
    r = client.post("/access/v1/search/subject", json=other, headers=auth)
    assert r.status_code == 400 and r.json["pointer"] == "/page/token"
    assert "different query" in r.json["message"]


def test_without_a_purpose_or_a_default_the_deny_says_purpose_required(client, auth):
    body = evaluation("b.huber", field="iban", explain=True)
    del body["context"]["purpose"]
    r = client.post(EVAL, json=body, headers=auth)
    assert r.status_code == 200
    assert r.json["decision"] is False and r.json["context"]["reason"] == "purpose_required"


def test_an_api_client_default_purpose_applies_when_a_request_names_none(app, client, loaded_db, employees):
    from accessd.errors import Invalid
    from accessd.pdp import tokens

    with loaded_db.session() as s:
        billing_app = tokens.create(s, "billing-app", "decide", default_purpose="billing")
        with pytest.raises(Invalid, match="not declared"):
            tokens.create(s, "gossip-app", "decide", default_purpose="gossip")
    body = evaluation("b.huber", field="iban", explain=True)
    del body["context"]["purpose"]
    r = client.post(EVAL, json=body, headers={"Authorization": f"Bearer {billing_app}"})
    assert r.json["decision"] is True and r.json["context"]["reason"] == "allowed"
    body["context"]["purpose"] = "care"  # a purpose in the request wins over the default
    r = client.post(EVAL, json=body, headers={"Authorization": f"Bearer {billing_app}"})
    assert r.json["decision"] is False
    services = app.extensions["accessd"]
    services.decision_log.flush()
    with services.db.session() as s:
        purposes = [row.purpose for row in s.scalars(select(DecisionLog).order_by(DecisionLog.id))]
    assert purposes == ["billing", "care"]  # the log names the purpose each decision was made for
