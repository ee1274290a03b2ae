"""Bad input and bad credentials get a clear SCIM error (4xx, no stack trace) and change nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from accessd.models import Account, AuditEvent, LifecycleEvent, ScimGroup
from accessd.pdp import tokens
from tests.scim.conftest import ERROR, USER, Scim, patch, user


def state(db) -> tuple[int, int, int, int]:
    with db.session() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (Account, AuditEvent, LifecycleEvent, ScimGroup)
        )


def assert_scim_error(response, status: int, *words: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/scim+json"
    assert response.json["schemas"] == [ERROR] and response.json["status"] == str(status)
    assert "Traceback" not in text and 'File "' not in text
    for word in words:
        assert word in response.json["detail"], response.json


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            b'{"schemas": ["' + USER.encode() + b'"], "userName": "x\\u0000y", "active": true}',
            400,
            ["control"],
        ),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": "x\\ud800y", "active": true}', 400, []),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": "\xff\xfe", "active": true}', 400, []),
        (b"[" * 100_000 + b"]" * 100_000, 400, ["recursion"]),
        (b'{"userName": ', 400, ["JSON"]),
        (b'{"schemas": ["' + USER.encode() + b'"], "active": true}', 400, ["userName"]),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": "a"}', 400, ["active"]),
        (
            b'{"schemas": ["' + USER.encode() + b'"], "userName": "' + b"a" * 201 + b'", "active": true}',
            400,
            ["200"],
        ),
        (
            b'{"schemas": ["'
            + USER.encode()
            + b'"], "userName": "a", "active": true, "emails": [{"value": "no"}]}',
            400,
            ["e-mail"],
        ),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": " a", "active": true}', 400, ["spaces"]),
    ],
    ids=[
        "nul",
        "lone-surrogate",
        "not-utf8",
        "deep",
        "truncated",
        "no-username",
        "no-active",
        "long",
        "email",
        "spaces",
    ],
)
def test_a_bad_user_body_is_refused_with_a_scim_error(scim, loaded_db, body, status, words):
    before = state(loaded_db)
    assert_scim_error(scim.post("/Users", data=body), status, *words)
    assert state(loaded_db) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(scim, loaded_db, make_app, hr_token):
    small = Scim(make_app(api={"max_body_bytes": 1000}).test_client(), hr_token)
    before = state(loaded_db)
    big = json.dumps(user("a", displayName="x" * 2000)).encode()
    assert_scim_error(small.post("/Users", data=big), 413, "1000 bytes")
    assert state(loaded_db) == before


def test_a_body_that_is_not_json_is_refused_with_415(scim):
    response = scim.post("/Users", data=b"userName=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json["schemas"] == [ERROR]


def test_a_failing_patch_changes_nothing_of_the_operations_before_it(scim, loaded_db, employees):
    bernd = scim.find("b.huber")
    before = state(loaded_db)
    operations = patch(
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "userName", "value": "r.schmidt"},  # taken: 409
    )
    assert_scim_error(scim.patch(f"/Users/{bernd['id']}", operations), 409, "r.schmidt")
    assert state(loaded_db) == before
    assert scim.get(f"/Users/{bernd['id']}").json["active"] is True


@pytest.mark.parametrize(
    "query",
    [
        'filter=userName eq "a\u0000"',
        "filter=userName eq",
        "filter=nosuch pr",
        "sortBy=nosuch",
        "count=x",
        "attributes=%00",
    ],
)
def test_a_bad_search_is_a_400(scim, query):
    response = scim.get(f"/Users?{query}")
    assert_scim_error(response, 400)


@pytest.mark.parametrize(
    "path", ["/Users/99999999999999999999", "/Users/abc", "/Users/%00", "/Groups/%00", "/Groups/1"]
)
def test_an_unknown_id_is_a_404(scim, path):
    assert_scim_error(scim.get(path), 404)
    assert_scim_error(scim.delete(path), 404)


def test_requests_need_a_token_with_scope_hr(scim_app, loaded_db):
    client = scim_app.test_client()
    with loaded_db.session() as s:
        decide = tokens.create(s, "crm", "decide")
        revoked = tokens.create(s, "old-hr", "hr")
        tokens.revoke(s, "old-hr")

    missing = client.get("/scim/v2/Users")
    assert_scim_error(missing, 401, "Bearer")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert_scim_error(client.get("/scim/v2/Users", headers={"Authorization": "Basic eDp5"}), 401)
    assert_scim_error(
        client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {revoked}"}), 401, "revoked"
    )
    assert_scim_error(client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {decide}"}), 403, "hr")
    assert_scim_error(client.get("/scim/v2/Schemas", headers={"Authorization": f"Bearer {decide}"}), 403)
    # the service provider configuration is public (RFC 7644 section 4)
    assert client.get("/scim/v2/ServiceProviderConfig").status_code == 200


def test_unknown_endpoints_and_methods(scim):
    assert_scim_error(scim.get("/Pets"), 404)
    assert_scim_error(scim.delete("/Users"), 405)
    assert scim.delete("/Users").headers["Allow"]
