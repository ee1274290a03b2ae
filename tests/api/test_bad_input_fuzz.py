"""Bad input never causes a 500: property-based fuzzing of every decision endpoint.

Hypothesis starts from valid AuthZEN bodies and mutates them (replace any member with any JSON
value, delete members, wrap the body, send raw bytes). Every answer must be 200 or a JSON
400/413 that names the member at fault.
"""

from __future__ import annotations

import json

import pytest
from api_helpers import CUSTOMER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = {
    "/access/v1/evaluation": {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "1", "properties": dict(CUSTOMER)},
        "action": {"name": "read", "properties": {"field": "iban"}},
        "context": {"purpose": "care", "explain": True},
    },
    "/access/v1/evaluations": {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "1", "properties": dict(CUSTOMER)},
        "action": {"name": "read"},
        "context": {"purpose": "care"},
        "evaluations": [
            {"action": {"name": "read", "properties": {"fields": ["iban", "email"]}}},
            {"resource": {"type": "invoice", "id": "9", "properties": {"status": "draft"}}},
        ],
        "options": {"evaluations_semantic": "deny_on_first_deny"},
    },
    "/access/v1/fields": {
        "subject": {"type": "user", "id": "b.huber"},
        "action": {"name": "read"},
        "context": {"purpose": "billing"},
        "records": [{"type": "customer", "id": "1", "properties": dict(CUSTOMER)}],
        "options": {"return_records": True},
    },
    "/access/v1/search/subject": {
        "subject": {"type": "user"},
        "resource": {"type": "customer", "id": "1", "properties": dict(CUSTOMER)},
        "action": {"name": "read", "properties": {"field": "email"}},
        "context": {"purpose": "care"},
        "page": {"limit": 2},
    },
    "/access/v1/search/resource": {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "properties": dict(CUSTOMER)},
        "action": {"name": "read"},
        "page": {"limit": 3, "token": ""},
    },
    "/access/v1/search/action": {
        "subject": {"type": "user", "id": "r.schmidt"},
        "resource": {"type": "customer", "id": "1", "properties": dict(CUSTOMER)},
        "context": {"purpose": "care"},
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "user", "customer", "read", "iban", "care", "2020-01-01", "x" * 300]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, base):
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return body


def check(response):
    assert response.status_code in (200, 400, 413), (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code != 200:
        assert body["error"] and body["message"] and "pointer" in body
        assert "Traceback" not in body["message"]


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("url", sorted(VALID))
def test_mutated_bodies_never_cause_a_500(client, auth, url):
    @FUZZ
    @given(body=mutated(VALID[url]))
    def run(body):
        check(client.post(url, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"}))

    run()


@pytest.mark.parametrize("url", sorted(VALID))
def test_arbitrary_bytes_and_json_never_cause_a_500(client, auth, url):
    @FUZZ
    @given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    def run(data):
        check(client.post(url, data=data, headers={**auth, "Content-Type": "application/json"}))

    run()


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b"{not json", ""),
        (b"[1, 2]", ""),
        (b"", ""),
        (json.dumps({"subject": "r.schmidt"}).encode(), "/subject"),
        (
            json.dumps({**VALID["/access/v1/evaluation"], "resource": {"type": 5, "id": "1"}}).encode(),
            "/resource/type",
        ),
        (
            json.dumps(
                {**VALID["/access/v1/evaluation"], "resource": {"type": "spaceship", "id": "1"}}
            ).encode(),
            "/resource/type",
        ),
        (
            json.dumps({**VALID["/access/v1/evaluation"], "action": {"name": "delete"}}).encode(),
            "/action/name",
        ),
        (
            json.dumps({**VALID["/access/v1/evaluation"], "context": {"purpose": 3}}).encode(),
            "/context/purpose",
        ),
        (
            json.dumps(
                {**VALID["/access/v1/evaluation"], "subject": {"type": "user", "id": "x" * 201}}
            ).encode(),
            "/subject/id",
        ),
    ],
)
def test_bad_input_names_the_member_at_fault(client, auth, body, pointer):
    r = client.post("/access/v1/evaluation", data=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json["pointer"] == pointer


def test_a_body_over_the_size_limit_is_413(app, client, auth):
    limit = app.extensions["accessd"].settings.api.max_body_bytes
    big = json.dumps({**VALID["/access/v1/evaluation"], "pad": "x" * limit})
    r = client.post("/access/v1/evaluation", data=big, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json["error"]
