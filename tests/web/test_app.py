"""The app factory, health endpoints and error mapping."""

from accessd import create_app


def test_healthz_and_readyz_report_the_policy_revision(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["policy_revision"] == 1 and ready.get_json()["database"] == "ok"


def test_readyz_is_unavailable_without_a_policy(db, tmp_path):
    app = create_app({"database_url": db.url, "instance_path": str(tmp_path)})
    resp = app.test_client().get("/readyz")
    app.extensions["accessd"].close()
    assert resp.status_code == 503 and resp.get_json()["policy_revision"] is None


def test_readyz_is_unavailable_when_the_database_is_unreachable(tmp_path):
    url = "postgresql://nobody@127.0.0.1:1/none"
    app = create_app({"database_url": url, "instance_path": str(tmp_path)})
    resp = app.test_client().get("/readyz")
    app.extensions["accessd"].close()
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"


def test_unknown_api_path_gets_json_404_without_internals(client):
    resp = client.get("/access/v1/nope")
    assert resp.status_code == 404 and resp.is_json and resp.get_json()["error"] == "not_found"
    assert "Traceback" not in resp.get_data(as_text=True)


def test_wrong_method_gets_405_naming_allowed_methods(client):
    resp = client.post("/healthz")
    assert resp.status_code == 405 and "GET" in resp.headers["Allow"]
