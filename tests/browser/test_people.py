"""People in a real browser: the list, a person's page, and offboarding someone who is signed in
elsewhere -- their next click lands on the sign-in page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import axe_check, docs_shot, forget_problems, login, login_as, shot


def test_the_people_list_finds_a_person_and_opens_their_page(page, server):
    login_as(page, server, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("People")
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name=re.compile("Tanja Meyer"))).to_be_visible()
    axe_check(page)
    shot(page, "people-list")
    docs_shot(page, "people")

    page.get_by_role("searchbox").fill("okafor")
    page.get_by_role("searchbox").press("Enter")
    expect(table.get_by_role("row", name=re.compile("James Okafor"))).to_be_visible()
    expect(table.get_by_role("row", name=re.compile("Tanja Meyer"))).to_have_count(0)

    table.get_by_role("link", name="j.okafor", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/people/j\.okafor$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("James Okafor")
    expect(page.get_by_role("heading", name="Effective access")).to_be_visible()
    axe_check(page)
    shot(page, "person-j.okafor")
    docs_shot(page, "person")


def test_a_person_who_left_shows_as_disabled(page, server):
    login_as(page, server, "auditor")
    page.goto("/admin/people/k.weber")
    expect(page.locator(".badge").first).to_have_text("disabled")
    # an auditor changes nobody: no action buttons
    expect(page.get_by_role("navigation", name="Actions on this person")).to_have_count(0)


def test_offboarding_signs_the_person_out_at_their_next_click(page, server, new_context):
    leaver = server.users["leaver"]
    # the leaver (helpdesk) is working in another browser
    theirs = new_context().new_page()
    login_as(theirs, server, "leaver")
    theirs.goto("/admin/people")
    expect(theirs.get_by_role("heading", level=1)).to_contain_text("People")

    login_as(page, server, "admin")
    page.goto(f"/admin/people/{leaver.username}")
    page.get_by_role("button", name="Offboard now").click()  # a link styled as a button
    expect(page.get_by_role("heading", name="What will happen")).to_be_visible()
    axe_check(page)
    shot(page, "person-offboard-confirm")
    page.get_by_label("Reason", exact=False).fill("left the practice (browser test)")
    page.get_by_role("button", name="Offboard now").click()
    expect(page).to_have_url(re.compile(rf"/admin/people/{re.escape(leaver.username)}$"))
    expect(page.locator(".badge").first).to_have_text("disabled")

    # their next click: the sign-in page, saying why
    theirs.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(theirs).to_have_url(re.compile(r"/admin/login"))
    expect(theirs.get_by_role("status")).to_contain_text("session has ended")
    # and they cannot sign in again
    login(theirs, leaver.username, leaver.password)
    expect(theirs).to_have_url(re.compile(r"/admin/login"))
    expect(theirs.get_by_role("alert")).to_be_visible()
    forget_problems(theirs)  # the refused sign-in's 4xx
