"""Bearer tokens: 401 without or with a bad token, 403 with the wrong scope, cached look-ups."""

from __future__ import annotations

import pytest

from accessd.pdp import tokens
from tests.support.api import evaluation

ENDPOINTS = [
    "/access/v1/evaluation",
    "/access/v1/evaluations",
    "/access/v1/fields",
    "/access/v1/search/subject",
    "/access/v1/search/resource",
    "/access/v1/search/action",
]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer acd_wrong"}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer"}],
)
def test_missing_or_bad_token_is_401_json(client, employees, headers):
    for url in ENDPOINTS:
        r = client.post(url, json=evaluation("b.huber"), headers=headers)
        assert r.status_code == 401, url
        assert r.json["error"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_scope_is_403_json(client, hr_token, admin_token):
    for tok in (hr_token, admin_token):
        r = client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 403
        assert r.json["error"] == "forbidden"


def test_401_and_403_bodies_say_what_is_wrong_and_point_at_the_header(client, employees, hr_token):
    cases = [
        ({}, 401, "missing bearer token: send 'Authorization: Bearer <token>'", 'Bearer realm="accessd"'),
        ({"Authorization": "Basic eDp5"}, 401, "the Authorization header must be 'Bearer <token>'", None),
        ({"Authorization": "Bearer acd_wrong"}, 401, "unknown or revoked token", None),
        (
            {"Authorization": f"Bearer {hr_token}"},
            403,
            "a token with scope 'hr' may not call this endpoint; it needs scope 'decide'",
            'Bearer realm="accessd", error="insufficient_scope"',
        ),
    ]
    for headers, status, message, challenge in cases:
        r = client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers=headers)
        assert r.status_code == status
        assert r.json == {
            "error": "unauthorized" if status == 401 else "forbidden",
            "message": message,
            "pointer": "/headers/Authorization",
        }
        assert r.headers["WWW-Authenticate"] == (challenge or 'Bearer realm="accessd"')


def test_decision_log_endpoint_needs_admin_scope(client, auth, admin_token):
    assert client.get("/api/v1/decisions?resource=customer:1", headers=auth).status_code == 403
    r = client.get(
        "/api/v1/decisions?resource=customer:1", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert r.status_code == 200


def test_known_token_costs_no_database_round_trip(app, client, auth, loaded_db):
    import threading

    from sqlalchemy import event

    services = app.extensions["accessd"]
    client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers=auth)  # warm the caches
    statements, me = [], threading.get_ident()

    def listener(*args):  # the request's own statements, not the change feed's polls
        if threading.get_ident() == me:
            statements.append(args[2])

    event.listen(services.db.engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            assert client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers=auth).status_code == 200
    finally:
        event.remove(services.db.engine, "before_cursor_execute", listener)
    assert not [s for s in statements if "INSERT" not in s.upper()]  # only log writes, no reads


def test_revoked_token_stops_working_after_the_cache_time(app, client, auth, loaded_db):
    assert client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers=auth).status_code == 200
    with loaded_db.session() as s:
        tokens.revoke(s, "crm")
    app.extensions["accessd"].tokens.clear()  # what token_cache_seconds passing does
    assert client.post(ENDPOINTS[0], json=evaluation("b.huber"), headers=auth).status_code == 401


def test_public_endpoints_need_no_token(client):
    for url in ("/healthz", "/openapi.json", "/.well-known/authzen-configuration"):
        assert client.get(url).status_code == 200
