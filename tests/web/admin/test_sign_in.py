"""Signing in to the admin UI: passwords, lockout, TOTP, the session re-check, CSRF, headers."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from accessd.console import admins
from accessd.lifecycle import offboarding
from accessd.models import Account, AdminUser
from tests.web.admin.conftest import PASSWORD, csrf_from, make_admin, sign_in


@pytest.fixture
def app(demo_db, make_app):
    return make_app(admin={"max_failures": 3, "lockout_minutes": 15, "sign_in_rate": "100 per minute"})


def test_an_administrator_signs_in_and_reaches_their_page(app, demo_db):
    make_admin(demo_db, "Ada.Admin", "admin")
    client = app.test_client()
    answer = sign_in(client, "ada.admin")
    assert answer.status_code == 302
    me = client.get("/admin/me")
    assert me.status_code == 200 and "ada.admin" in me.text
    with demo_db.session() as s:
        assert s.query(AdminUser).one().last_login_at is not None


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    wrong = sign_in(client, "ada", "not the password at all")
    unknown = sign_in(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        "unknown username or wrong password" in wrong.text
        and "unknown username or wrong password" in unknown.text
    )
    assert client.get("/admin/me").status_code == 302


def test_repeated_failures_lock_the_sign_in_even_for_the_right_password(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "ada", "wrong wrong wrong").status_code == 401
    locked = sign_in(client, "ada", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text
    with demo_db.session() as s:
        admins.unlock(s, "ada", actor="test")
    assert sign_in(client, "ada", PASSWORD).status_code == 302


def test_sign_in_is_throttled_per_address(demo_db, make_app):
    app = make_app(admin={"sign_in_rate": "3 per minute"})
    client = app.test_client()
    codes = [sign_in(client, "nobody", "whatever whatever").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_totp_is_asked_for_and_a_recovery_code_works_once(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    sign_in(client, "ada")
    token = csrf_from(client.get("/admin/me").text)
    client.post("/admin/me/totp", data={"csrf_token": token})
    with demo_db.session() as s:
        secret = s.query(AdminUser).one().totp_secret
    used = pyotp.TOTP(secret).now()
    done = client.post("/admin/me/totp/confirm", data={"csrf_token": token, "code": used})
    assert done.status_code == 200 and "recovery codes" in done.text.lower()
    codes = re.findall(r"<li><code>([^<]+)</code></li>", done.text)
    assert len(codes) == admins.RECOVERY_CODES

    fresh = app.test_client()
    assert sign_in(fresh, "ada").headers["Location"].startswith("/admin/login/code")
    assert fresh.get("/admin/me").status_code == 302  # not signed in after the password alone
    page = fresh.get("/admin/login/code")
    bad = fresh.post("/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": "000000"})
    assert bad.status_code == 401
    # the enrolment's code is spent (a code is good once); the next step's is accepted (clock drift)
    assert (
        fresh.post("/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": used}).status_code
        == 401
    )
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    ok = fresh.post("/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": next_code})
    assert ok.status_code == 302 and fresh.get("/admin/me").status_code == 200
    replay = app.test_client()
    sign_in(replay, "ada")
    page = replay.get("/admin/login/code")
    assert (
        replay.post(
            "/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": next_code}
        ).status_code
        == 401
    )

    other = app.test_client()
    sign_in(other, "ada")
    page = other.get("/admin/login/code")
    assert (
        other.post(
            "/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": codes[0]}
        ).status_code
        == 302
    )
    again = app.test_client()
    sign_in(again, "ada")
    page = again.get("/admin/login/code")
    assert (
        again.post(
            "/admin/login/code", data={"csrf_token": csrf_from(page.text), "code": codes[0]}
        ).status_code
        == 401
    )


def test_an_offboarded_administrator_is_signed_out_at_the_next_request(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    sign_in(client, "ada")
    assert client.get("/admin/me").status_code == 200
    with demo_db.session() as s:
        account = s.query(Account).filter_by(subject_id="ada").one()
        offboarding.offboard(s, account, reason="left", source="hr", actor="test")
    answer = client.get("/admin/me")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
    assert sign_in(app.test_client(), "ada").status_code == 403


def test_a_person_without_a_console_role_may_not_sign_in(app, demo_db):
    make_admin(demo_db, "ada", "auditor")
    with demo_db.session() as s:
        account = s.query(Account).filter_by(subject_id="ada").one()
        from accessd import accounts

        accounts.revoke(s, account, "auditor", actor="test")
    answer = sign_in(app.test_client(), "ada")
    assert answer.status_code == 403 and "may not use" in answer.text


def test_a_post_without_csrf_token_is_refused(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    sign_in(client, "ada")
    answer = client.post("/admin/me/totp", data={})
    assert answer.status_code == 400 and "CSRF" in answer.text
    with demo_db.session() as s:
        assert s.query(AdminUser).one().totp_secret is None


def test_pages_carry_a_strict_content_security_policy(app, demo_db):
    answer = app.test_client().get("/admin/login")
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    cookie = answer.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_a_session_idle_too_long_is_signed_out(demo_db, make_app, monkeypatch):
    import time

    app = make_app(admin={"idle_minutes": 1})
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    sign_in(client, "ada")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    answer = client.get("/admin/me")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


def test_next_never_leads_off_site(app, demo_db):
    make_admin(demo_db, "ada", "admin")
    client = app.test_client()
    page = client.get("/admin/login")
    answer = client.post(
        "/admin/login?next=//evil.example/x",
        data={"csrf_token": csrf_from(page.text), "username": "ada", "password": PASSWORD},
    )
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/admin")


def test_weak_passwords_are_refused(demo_db):
    from accessd.errors import Invalid

    for weak in ("short", "password1234", "ada.lovelace1", "qwertyuiopasdf"):
        with pytest.raises(Invalid), demo_db.session() as s:
            admins.create(s, username="ada.lovelace", role="admin", password=weak, actor="test")


def test_only_the_sign_in_forms_pay_for_the_rate_limiter(app):
    limiter = app.extensions["admin_limiter"]
    hooks = [*app.before_request_funcs.get(None, []), *app.after_request_funcs.get(None, [])]
    assert not [h for h in hooks if getattr(h, "__self__", None) is limiter or "limiter" in repr(h).lower()]
