"""Compliance: scim2-tester (the checks behind ``scim2 ... test``) against the live server under
gunicorn reports no failure; discovery describes what accessd keeps; Bulk runs each operation on
its own."""

from __future__ import annotations

import json

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import func, select

from accessd.models import Account
from tests.scim.conftest import GROUP, MAPPING, user


def test_scim2_tester_reports_no_failure_against_the_live_server(serve, database_url, loaded_db, hr_token):
    base, _ = serve(database_url, workers=2, ACCESSD_SCIM_GROUP_ROLES=json.dumps(MAPPING))
    with Client(base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {hr_token}"}) as http:
        results = check_server(SyncSCIMClient(http))
    failures = [f"{r.status.name} {r.title}: {r.reason}" for r in results if r.status != Status.SUCCESS]
    print(f"scim2-tester: {len(results)} checks, {len(failures)} not successful")
    assert not failures, "\n".join(failures)
    titles = {r.title for r in results}
    assert {"object_creation", "object_replacement", "object_deletion", "check_add_attribute"} <= titles
    assert len(results) >= 70  # every check ran: discovery, CRUD and PATCH on Users and Groups


def test_discovery_describes_the_attributes_accessd_keeps(scim):
    types = scim.get("/ResourceTypes").json["Resources"]
    assert {t["name"]: t["endpoint"] for t in types} == {"User": "/Users", "Group": "/Groups"}
    schema = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json
    attributes = {a["name"]: a for a in schema["attributes"]}
    assert set(attributes) == {"userName", "displayName", "title", "active", "emails", "groups", "roles"}
    assert attributes["active"]["required"] is True
    assert attributes["roles"]["mutability"] == "readOnly"
    config = scim.get("/ServiceProviderConfig").json
    assert config["patch"]["supported"] and config["bulk"]["supported"] and config["etag"]["supported"]
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["changePassword"]["supported"] is False


def test_bulk_runs_each_operation_on_its_own(scim, loaded_db):
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("v.vogel")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("V.VOGEL")},  # taken
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {"schemas": [GROUP], "displayName": "Billing", "members": [{"value": "bulkId:a"}]},
            },
        ],
    }
    response = scim.post("/Bulk", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [int(op["status"]) for op in response.json["Operations"]] == [201, 409, 201]
    with loaded_db.session() as s:
        assert s.scalar(select(func.count(Account.id))) == 1
        assert {g.role for g in s.scalar(select(Account)).grants} == {"billing"}
