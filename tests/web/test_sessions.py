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


def _cookie_of(tmp_path, **overrides) -> str:
    from accessd import create_app

    settings = {
        "database_url": f"sqlite:///{tmp_path}/a.sqlite3",
        "instance_path": str(tmp_path),
        **overrides,
    }
    app = create_app({"secret_key": "k" * 32, **settings})

    @app.get("/ui-probe")
    def ui_probe():
        session["seen"] = True
        return "ok"

    cookie = app.test_client().get("/ui-probe").headers["Set-Cookie"]
    app.extensions["accessd"].close()
    return cookie


def test_session_cookies_are_secure_httponly_and_samesite_lax_by_default(tmp_path):
    cookie = _cookie_of(tmp_path)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_plain_http_cookies_only_when_the_setting_allows_them(tmp_path):
    cookie = _cookie_of(tmp_path, session_cookie_secure=False)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
