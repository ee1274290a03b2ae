"""Bad input never causes a 500: property-based fuzzing of every decision endpoint.

Hypothesis starts from valid AuthZEN bodies and mutates them (replace any member with any JSON
value, delete members, wrap the body, send raw bytes). Every answer must be 200 or a JSON
400/413 that names the member at fault.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import CUSTOMER

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

# strings a database cannot store or a response cannot encode: each must be refused with a 400
POISON = ["123\ud800", "\udfff", "a\x00b", "\x00"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**301)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "user", "customer", "read", "iban", "care", "2020-01-01", "x" * 300, *POISON]),
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


def check(response, sent: bytes = b""):
    assert response.status_code in (200, 400, 413), (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code != 200:
        assert body["error"] and body["message"] and "pointer" in body
        assert "Traceback" not in body["message"]
    try:
        decoded = json.loads(sent)
    except (ValueError, RecursionError):
        return  # not JSON: refused as such
    if _poisoned(decoded):
        assert response.status_code == 400, "a NUL or lone surrogate anywhere in a request is refused"


def _poisoned(value) -> bool:
    """A NUL or an unpaired surrogate in any string or member name of a decoded body. Decoded,
    not searched in the bytes: a valid pair's escape (``\\ud82e\\udfff``) holds a lone one's."""
    if isinstance(value, dict):
        return any(_poisoned(k) or _poisoned(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_poisoned(v) for v in value)
    return isinstance(value, str) and any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)


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
        data = json.dumps(body).encode()
        check(client.post(url, data=data, headers={**auth, "Content-Type": "application/json"}), data)

    run()


@pytest.mark.parametrize("url", sorted(VALID))
def test_arbitrary_bytes_and_json_never_cause_a_500(client, auth, url):
    @FUZZ
    @given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    def run(data):
        check(client.post(url, data=data, headers={**auth, "Content-Type": "application/json"}), data)

    run()


def _replace_values(base: dict, raw: str):
    """Every variant of ``base`` with one scalar value replaced by the raw JSON text ``raw``."""
    marker = "\u0001MARK\u0001"
    for path in _paths(base):
        if not path:
            continue
        body = json.loads(json.dumps(base))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent[path[-1]], dict | list):
            continue
        parent[path[-1]] = marker
        yield path, json.dumps(body).replace(json.dumps(marker), raw).encode()


EXTREMES = ["1e999", "-1e999", "1" + "0" * 5000, '"123\\ud800"', '"a\\u0000b"', '{"o":1e999}']


@pytest.mark.parametrize("url", sorted(VALID))
def test_extreme_values_in_any_member_get_a_400_not_a_500(client, auth, url):
    """The inputs an outside review found (1e999 in a property, lone surrogates, NUL), placed in
    every scalar member of every endpoint's request."""
    for raw in EXTREMES:
        for path, data in _replace_values(VALID[url], raw):
            r = client.post(url, data=data, headers={**auth, "Content-Type": "application/json"})
            assert r.status_code in (200, 400), (url, path, raw, r.status_code, r.get_data(as_text=True))
            if raw != '{"o":1e999}':
                assert r.status_code == 400, (url, path, raw)


def test_a_character_beyond_the_bmp_is_text_not_a_lone_surrogate(client, auth):
    body = json.loads(json.dumps(VALID["/access/v1/evaluation"]))
    body["context"]["\U0001bbff"] = "\U0001f600"
    data = json.dumps(body).encode()
    assert b"\\ud82e\\udfff" in data  # escaped as a surrogate pair
    r = client.post("/access/v1/evaluation", data=data, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.mark.parametrize("depth", [33, 1000, 5000, 100_000])
def test_deeply_nested_json_is_refused_at_any_depth(client, auth, depth):
    for url in sorted(VALID):
        for where in ("resource", "page"):
            body = dict(VALID[url])
            body[where] = json.loads("[" * min(depth, 500) + "]" * min(depth, 500)) if depth <= 500 else None
            data = json.dumps(body).encode()
            if depth > 500:  # beyond what json.dumps builds: write the text directly
                data = data.replace(b"null", b"[" * depth + b"]" * depth, 1)
            r = client.post(url, data=data, headers={**auth, "Content-Type": "application/json"})
            assert r.status_code == 400, (url, where, depth, r.status_code)
            assert "nest" in r.json["message"]


@pytest.mark.parametrize(
    "page_token",
    [
        base64.urlsafe_b64encode(b'{"o":1e999}').decode(),
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()[:60],
        base64.urlsafe_b64encode(("9" * 12 + ":" + "0" * 16).encode()).decode(),
        "not base64 at all!",
        "\u00e9",
    ],
)
def test_a_forged_page_token_is_a_400(client, auth, page_token):
    body = {**VALID["/access/v1/search/subject"], "page": {"limit": 1, "token": page_token}}
    r = client.post("/access/v1/search/subject", json=body, headers=auth)
    assert r.status_code == 400 and r.json["pointer"] == "/page/token"


@pytest.mark.parametrize(
    "query",
    [
        "since=0001-01-01T00:00:00%2B01:00",
        "until=9999-12-31T23:59:59-01:00",
        "subject=%00",
        "resource=customer:%00",
        "subject=%ED%A0%80",
        "since=" + "9" * 5000,
        "limit=1e999",
        "offset=" + "9" * 5000,
    ],
)
def test_decision_query_parameters_never_cause_a_500(client, admin_token, query):
    r = client.get(f"/api/v1/decisions?{query}", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code in (200, 400), (query, r.status_code, r.get_data(as_text=True))
    if "%00" in query:
        assert r.status_code == 400 and "NUL" in r.json["message"]


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
            json.dumps({**VALID["/access/v1/evaluation"], "resource": {"type": "x", "id": 7}}).encode(),
            "/resource/id",
        ),
        (
            json.dumps({**VALID["/access/v1/evaluation"], "action": {"name": ""}}).encode(),
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
