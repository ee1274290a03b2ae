"""API requests never get or set a cookie session; browser pages still can."""

from flask import session


def test_api_responses_never_set_a_session_cookie(app, client):
    @app.get("/ui-probe")
    def ui_probe():
        session["seen"] = True
        return "ok"

    @app.get("/api/v1/probe")
    def api_probe():
        session.get("seen")  # reading works on the null session
        return {"ok": True}

    assert "Set-Cookie" in client.get("/ui-probe").headers
    api = client.get("/api/v1/probe")
    assert api.status_code == 200 and "Set-Cookie" not in api.headers
    assert "Set-Cookie" not in client.get("/healthz").headers
