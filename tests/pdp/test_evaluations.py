"""POST /access/v1/evaluations: batches with top-level defaults and the three semantics."""

from __future__ import annotations

from tests.support.api import CUSTOMER

URL = "/access/v1/evaluations"


def batch(fields, semantic=None, subject="r.schmidt", purpose="care"):
    body = {
        "subject": {"type": "user", "id": subject},
        "resource": {"type": "customer", "id": "123", "properties": CUSTOMER},
        "action": {"name": "read"},
        "context": {"purpose": purpose},
        "evaluations": [{"action": {"name": "read", "properties": {"field": f}}} for f in fields],
    }
    if semantic:
        body["options"] = {"evaluations_semantic": semantic}
    return body


def test_entries_take_top_level_defaults(client, auth):
    r = client.post(URL, json=batch(["email", "iban", "diagnosis"]), headers=auth)
    assert r.status_code == 200
    assert [e["decision"] for e in r.json["evaluations"]] == [True, False, False]
    assert [e["context"]["effect"] for e in r.json["evaluations"]] == ["allow", "mask", "deny"]


def test_an_entry_overrides_a_default(client, auth):
    body = batch(["iban"])
    body["evaluations"].append(
        {
            "subject": {"type": "user", "id": "b.huber"},
            "action": {"name": "read", "properties": {"field": "iban"}},
            "context": {"purpose": "billing"},
        }
    )
    r = client.post(URL, json=body, headers=auth)
    assert [e["decision"] for e in r.json["evaluations"]] == [False, True]


def test_each_entry_has_its_own_decision_id(client, auth):
    r = client.post(URL, json=batch(["email", "city"]), headers=auth)
    ids = [e["context"]["decision_id"] for e in r.json["evaluations"]]
    assert len(set(ids)) == 2


def test_deny_on_first_deny_stops_after_the_deny(client, auth):
    r = client.post(URL, json=batch(["email", "diagnosis", "city"], "deny_on_first_deny"), headers=auth)
    assert [e["decision"] for e in r.json["evaluations"]] == [True, False]


def test_permit_on_first_permit_stops_after_the_permit(client, auth):
    r = client.post(URL, json=batch(["diagnosis", "email", "city"], "permit_on_first_permit"), headers=auth)
    assert [e["decision"] for e in r.json["evaluations"]] == [False, True]


def test_execute_all_is_the_default(client, auth):
    r = client.post(URL, json=batch(["diagnosis", "email", "city"], "execute_all"), headers=auth)
    assert len(r.json["evaluations"]) == 3


def test_without_entries_it_is_a_single_evaluation(client, auth):
    body = batch([])
    body["action"] = {"name": "read", "properties": {"field": "email"}}
    r = client.post(URL, json=body, headers=auth)
    assert r.json["decision"] is True
    del body["evaluations"]
    assert client.post(URL, json=body, headers=auth).json["decision"] is True


def test_a_batch_over_the_limit_is_refused_with_413(app, client, auth):
    limit = app.extensions["accessd"].settings.api.max_batch
    r = client.post(URL, json=batch(["email"] * (limit + 1)), headers=auth)
    assert r.status_code == 413
    assert r.json["pointer"] == "/evaluations"


def test_a_bad_entry_is_named_by_its_index(client, auth):
    body = batch(["email", "iban"])
    body["evaluations"][1]["action"] = {"name": ["read"]}
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 200
    assert r.json["evaluations"][1]["decision"] is False
    assert r.json["evaluations"][1]["context"]["error"]["pointer"] == "/evaluations/1/action/name"


def test_an_unknown_action_in_an_entry_is_a_deny_with_its_reason(client, auth):
    body = batch(["email", "iban"])
    body["evaluations"][1]["action"] = {"name": "delete"}
    body["context"]["explain"] = True
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 200
    assert r.json["evaluations"][1]["context"]["reason"] == "unknown_action"


def test_a_bad_default_is_named_at_the_top_level(client, auth):
    body = batch(["email"])
    body["subject"] = {"type": "user"}
    body["evaluations"].append({"subject": {"type": "user", "id": "b.huber"}, "context": {"purpose": 7}})
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 200
    first, second = (e["context"]["error"] for e in r.json["evaluations"])
    assert first["pointer"] == "/subject/id" and first["message"] == "/subject/id is required"
    assert second["pointer"] == "/evaluations/1/context/purpose"
    assert second["message"] == "/evaluations/1/context/purpose must be a string, not a number"


def test_unknown_semantic_is_refused(client, auth):
    r = client.post(URL, json=batch(["email"], "whatever"), headers=auth)
    assert r.status_code == 400
    assert r.json["pointer"] == "/options/evaluations_semantic"
