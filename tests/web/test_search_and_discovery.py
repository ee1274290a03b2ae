"""AuthZEN search endpoints (with paging) and the well-known configuration."""

from __future__ import annotations

from tests.support.api import CUSTOMER


def test_configuration_lists_the_endpoints(client):
    r = client.get("/.well-known/authzen-configuration")
    assert r.status_code == 200
    cfg = r.json
    # the default public URL (no public_url configured), never the test client's Host header
    assert cfg["policy_decision_point"] == "http://127.0.0.1:8000"
    assert cfg["access_evaluation_endpoint"] == "http://127.0.0.1:8000/access/v1/evaluation"
    for key in (
        "access_evaluations_endpoint",
        "search_subject_endpoint",
        "search_resource_endpoint",
        "search_action_endpoint",
    ):
        assert cfg[key].startswith("http://127.0.0.1:8000/access/v1/")
    assert "urn:accessd:capability:field-masks" in cfg["capabilities"]
    assert cfg["accessd_fields_endpoint"] == "http://127.0.0.1:8000/access/v1/fields"


def who_may_read(field: str, purpose: str) -> dict:
    """A subject search: who may read ``field`` of the demo customer 123 for ``purpose``."""
    return {
        "subject": {"type": "user"},
        "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
        "action": {"name": "read", "properties": {"field": field}},
        "context": {"purpose": purpose},
    }


def test_subject_search_finds_who_may_read_the_iban(client, auth):
    body = who_may_read("iban", "billing")
    r = client.post("/access/v1/search/subject", json=body, headers=auth)
    assert r.status_code == 200
    assert r.json["results"] == [{"type": "user", "id": "b.huber"}]
    assert r.json["page"] == {"next_token": "", "count": 1, "total": 1}


def test_subject_search_pages(client, auth):
    body = {**who_may_read("client_id", "care"), "page": {"limit": 1}}
    seen = []
    for _ in range(10):
        r = client.post("/access/v1/search/subject", json=body, headers=auth).json
        seen += [s["id"] for s in r["results"]]
        if not r["page"]["next_token"]:
            break
        body["page"]["token"] = r["page"]["next_token"]
    assert r["page"]["total"] == len(seen) >= 2  # reception and the therapists of record
    assert len(set(seen)) == len(seen)


def test_bad_page_token_is_400(client, auth):
    body = {
        "subject": {"type": "user"},
        "resource": {"type": "customer", "id": "1"},
        "action": {"name": "read"},
        "page": {"token": "not-a-token!"},
    }
    r = client.post("/access/v1/search/subject", json=body, headers=auth)
    assert r.status_code == 400
    assert r.json["pointer"] == "/page/token"


def test_resource_search_lists_visible_fields(client, auth):
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
        "action": {"name": "read"},
        "context": {"purpose": "care"},
    }
    r = client.post("/access/v1/search/resource", json=body, headers=auth)
    fields = {x["properties"]["field"]: x["properties"]["effect"] for x in r.json["results"]}
    assert fields["iban"] == "mask" and fields["email"] == "allow" and "diagnosis" not in fields


def test_action_search_lists_allowed_actions(client, auth):
    body = {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
        "context": {"purpose": "care"},
    }
    r = client.post("/access/v1/search/action", json=body, headers=auth)
    assert r.json["results"] == [{"name": "read"}, {"name": "update"}]
    body["context"]["purpose"] = "marketing"
    assert client.post("/access/v1/search/action", json=body, headers=auth).json["results"] == []


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["policy_revision"] == 1
    assert ready.json["decision_log"]["status"] == "ok"


def test_openapi_document_is_served(client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert "/access/v1/evaluation" in doc["paths"] and "/access/v1/fields" in doc["paths"]
