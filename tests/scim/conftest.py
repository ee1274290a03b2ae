"""Fixtures for the SCIM tests: the app with a group-role mapping, and a small SCIM client over
Flask's test client (every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

#: scim.group_roles in these tests
MAPPING = {"Billing": ["billing"], "Front desk": ["reception"]}


def user(user_name: str, active: bool = True, **attributes) -> dict:
    """A User body (enterprise attributes go in ``enterprise={...}``)."""
    body = {"schemas": [USER], "userName": user_name, "active": active, **attributes}
    enterprise = body.pop("enterprise", None)
    if enterprise:
        body["schemas"] = [USER, ENTERPRISE]
        body[ENTERPRISE] = enterprise
    return body


def group(name: str, *member_ids: str) -> dict:
    return {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in member_ids]}


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


class Scim:
    """SCIM calls with the hr token; each returns Flask's response (``.status_code``, ``.json``)."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(
        self, method: str, path: str, body=None, headers=None, data=None, content_type="application/scim+json"
    ):
        kwargs = {"headers": {**self.headers, **(headers or {})}}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        if body is not None or data is not None:
            kwargs["content_type"] = content_type
        return self.client.open("/scim/v2" + path, method=method, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def create(self, body: dict) -> dict:
        """POST a User (or a Group, by its schema) and return the created resource."""
        endpoint = "/Groups" if body["schemas"] == [GROUP] else "/Users"
        response = self.post(endpoint, body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json

    def find(self, user_name: str) -> dict:
        """The User whose userName is ``user_name`` (a demo employee, say)."""
        found = self.get(f'/Users?filter=userName eq "{user_name}"').json
        assert found["totalResults"] == 1, found
        return found["Resources"][0]


@pytest.fixture
def scim_app(make_app):
    return make_app(scim={"group_roles": MAPPING})


@pytest.fixture
def scim(scim_app, hr_token):
    yield Scim(scim_app.test_client(), hr_token)
    scim_app.extensions["accessd"].close()
