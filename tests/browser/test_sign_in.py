"""Signing in to the admin UI in a real browser: password, the TOTP second factor, lockout,
sign-out, CSRF on form posts, and the sign-in page's accessibility."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import expect

from tests.browser.helpers import axe_check, forget_problems, login, login_as, shot


def test_sign_in_with_a_password_and_out_again(page, server):
    page.goto("/admin/login")
    expect(page).to_have_title(re.compile("Sign in"))
    axe_check(page)
    shot(page, "login")

    login_as(page, server, "admin")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Eva Fischer")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/admin/login"))
    expect(page.get_by_role("status")).to_contain_text("signed out")
    # the old session is gone: a page needs a sign-in again, and comes back to it after
    page.goto("/admin/me")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fme|/admin/login\?next=/admin/me"))
    login(page, "e.fischer", server.users["admin"].password)
    expect(page).to_have_url(re.compile(r"/admin/me$"))


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(page, server):
    login(page, "e.fischer", "not-the-password-at-all-9")
    expect(page).to_have_url(re.compile(r"/admin/login"))
    wrong_password = page.get_by_role("alert").inner_text()
    login(page, "no.such.person", "not-the-password-at-all-9")
    expect(page.get_by_role("alert")).to_have_text(wrong_password)
    assert "unknown username or wrong password" in wrong_password
    forget_problems(page, "401")


def test_sign_in_never_redirects_to_another_site(page, server):
    user = server.users["admin"]
    login(page, user.username, user.password, next_path="//evil.example/admin")
    assert page.url.startswith(server.base_url + "/admin")


def test_turning_on_totp_then_signing_in_with_a_code(page, server, new_context):
    user = server.users["totp"]
    login_as(page, server, "totp")
    page.goto("/admin/me")
    axe_check(page)
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    axe_check(page)
    shot(page, "me-totp-enrolment")

    # a wrong code does not turn it on
    page.get_by_label("Code", exact=False).fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    # the previous step's code (accepted: one step of clock drift), so that the sign-in below uses
    # another code than the enrolment did
    page.get_by_label("Code", exact=False).fill(totp.at(time.time() - 30))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in is on")
    expect(page.locator(".recovery-codes code")).to_have_count(10)

    # a new browser: the password alone is not enough any more
    # (wrong codes and recovery codes at this step: tests/web/admin/test_sign_in.py; each wrong code
    # is checked against every recovery code's argon2 hash, seconds of CPU that add nothing here)
    other = new_context().new_page()
    login(other, user.username, user.password)
    expect(other).to_have_url(re.compile(r"/admin/login/code"))
    axe_check(other)
    shot(other, "login-code")
    other.get_by_label("Code", exact=False).fill(totp.now())
    other.get_by_role("button", name="Continue").click()
    expect(other).not_to_have_url(re.compile(r"/admin/login"))
    expect(other.get_by_role("link", name=user.display_name)).to_be_visible()


def test_repeated_failures_lock_the_sign_in_for_a_while(page, server):
    user = server.users["locked"]
    for _ in range(5):
        login(page, user.username, "wrong-password-wrong-password")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("too many failed sign-ins")
    expect(alert).to_contain_text(re.compile(r"locked for \d+ minute"))  # temporary, and says so
    shot(page, "login-locked")

    # even the right password is refused while it lasts, with the time left
    login(page, user.username, user.password)
    expect(page).to_have_url(re.compile(r"/admin/login"))
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"locked for \d+ more minute"))
    axe_check(page)
    forget_problems(page, "401")


def test_a_form_post_without_its_csrf_token_is_refused(page, server):
    login_as(page, server, "admin")
    # the sign-out form, stripped of its token as a forged cross-site form would be
    page.locator("form:has(button:text('Sign out')) input[name=csrf_token]").evaluate("e => e.remove()")
    response_status = {}
    page.on("response", lambda r: response_status.setdefault(r.url, r.status))
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert response_status.get(server.url("/admin/logout")) == 400
    expect(page.get_by_role("heading", level=1)).to_contain_text("400")
    # still signed in: nothing happened
    page.goto("/admin/me")
    expect(page).to_have_url(re.compile(r"/admin/me$"))
    forget_problems(page, "400")
