"""Changing the policy in a real browser: a matrix edit with its live preview, saved as a new
revision that the decision API applies within about two seconds; a rollback; and a helpdesk
user, who may not edit the policy, sees no edit controls and is refused a forged request."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.browser.helpers import axe_check, csrf_token, docs_shot, forget_problems, login_as, shot
from tests.support.api import evaluation

MARKETING = "type=customer&action=read&purpose=marketing"
# marketing reading a client's IBAN for purpose marketing: denied by the demo policy
IBAN_FOR_MARKETING = evaluation("m.rossi", field="iban", purpose="marketing", rid="C-123", explain=True)
PROPAGATION_SECONDS = 2.0  # every worker applies a new revision within a second (README)
STEADY = 10


def _decided_by(server, body: dict, revision: int, effect: str) -> float:
    """Ask until every answer has ``effect`` by ``revision``; the seconds that took (fails after
    PROPAGATION_SECONDS). Asks go to either gunicorn worker (a new connection each), so it takes
    a run of STEADY such answers in a row, not one lucky worker."""
    start = time.monotonic()
    run, since = 0, None
    while True:
        answer = server.evaluate(body)
        ctx = answer.get("context", {})
        if ctx.get("effect") == effect and ctx.get("revision") == revision:
            run, since = run + 1, since or time.monotonic()
            if run >= STEADY:
                return since - start
        else:
            run, since = 0, None
        if time.monotonic() - start > PROPAGATION_SECONDS:
            raise AssertionError(
                f"after {PROPAGATION_SECONDS}s still {answer}, wanted {effect} by revision {revision}"
            )
        time.sleep(0.02)


def _revision_in_force(server) -> int:
    return server.evaluate(IBAN_FOR_MARKETING)["context"]["revision"]


def _save_edit(page, role: str, field: str, effect: str, comment: str) -> int:
    """On the edit page: choose the cell and effect (the live preview follows), save; returns
    the new revision's number (from the flash message)."""
    page.get_by_label(re.compile(r"^Role")).select_option(role)
    page.get_by_label(re.compile(r"^Field")).select_option(field)
    page.get_by_label(re.compile(r"^New effect")).select_option(effect)
    save = page.locator("#preview").get_by_role("button", name="Save as new revision")
    expect(save).to_be_visible()
    page.wait_for_load_state("networkidle")  # the live preview's last answer is in place
    page.get_by_label("Comment", exact=False).fill(comment)
    page.get_by_role("button", name="Save as new revision").click()
    flash = page.get_by_role("status").filter(has_text="Saved as policy revision")
    expect(flash).to_be_visible()
    return int(re.search(r"revision (\d+)", flash.inner_text()).group(1))


def test_a_matrix_edit_previews_live_saves_and_decides_the_api_within_seconds(page, server):
    before = _revision_in_force(server)
    assert server.evaluate(IBAN_FOR_MARKETING)["decision"] is False

    login_as(page, server, "admin")
    page.goto(f"/admin/matrix?{MARKETING}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Field permissions")
    page.get_by_role("button", name="Change permissions").click()  # a link styled as a button
    expect(page).to_have_url(re.compile(r"/admin/matrix/edit\?"))
    axe_check(page)

    # the live preview (htmx, on each change of the form) says who gains what, before saving
    preview = page.locator("#preview")
    page.get_by_label(re.compile(r"^Role")).select_option("marketing")
    page.get_by_label(re.compile(r"^Field")).select_option("iban")
    expect(preview).not_to_contain_text("gains")  # no effect chosen yet
    page.get_by_label(re.compile(r"^New effect")).select_option("allow")
    expect(preview).to_contain_text(
        re.compile(r"\d+ (person|people) in marketing gains? read of iban for purpose marketing")
    )
    expect(page).to_have_url(re.compile(r"/admin/matrix/edit\?"))  # the page itself stayed
    expect(preview.get_by_role("button", name="Save as new revision")).to_be_visible()
    page.wait_for_load_state("networkidle")
    axe_check(page)
    shot(page, "matrix-edit-preview")
    docs_shot(page, "matrix-preview", scroll_to="form.matrix-edit")

    page.get_by_label("Comment", exact=False).fill("marketing reconciles refunds (browser test)")
    page.get_by_role("button", name="Save as new revision").click()
    expect(page).to_have_url(re.compile(r"/admin/revisions$"))
    flash = page.get_by_role("status").filter(has_text="Saved as policy revision")
    expect(flash).to_be_visible()
    saved = int(re.search(r"revision (\d+)", flash.inner_text()).group(1))
    assert saved == before + 1
    shot(page, "revisions")

    # the decision API decides by it, through whichever worker answers
    took = _decided_by(server, IBAN_FOR_MARKETING, saved, "allow")
    print(f"revision {saved} decided the API {took:.2f}s after saving")

    # what changed, as the revisions page shows it
    page.get_by_role("link", name=f"Changes from {before}").first.click()
    expect(page).to_have_url(re.compile(rf"/admin/revisions/diff\?from={before}&to={saved}$"))
    expect(
        page.locator("pre.diff ins").filter(has_text="ui:marketing:customer:read:iban:marketing")
    ).to_have_count(1)
    axe_check(page)
    shot(page, "revision-diff")

    # put it back: a deny for the cell (keeps the suite's later tests on the demo policy's answers)
    page.goto(f"/admin/matrix/edit?{MARKETING}")
    back = _save_edit(page, "marketing", "iban", "deny", "undo the browser test's change")
    _decided_by(server, IBAN_FOR_MARKETING, back, "deny")


def test_a_rollback_brings_an_earlier_revision_back_into_force(page, server):
    login_as(page, server, "admin")
    page.goto(f"/admin/matrix/edit?{MARKETING}")
    before = _revision_in_force(server)
    changed = _save_edit(page, "marketing", "iban", "mask", "marketing sees the IBAN masked (browser test)")
    _decided_by(server, IBAN_FOR_MARKETING, changed, "mask")  # AuthZEN: decision false, effect mask

    page.goto("/admin/revisions")
    page.get_by_role("link", name=f"Roll back to {before}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Roll back to revision {before}")
    axe_check(page)
    shot(page, "rollback-confirm")
    page.get_by_label("Reason", exact=False).fill("the masked IBAN was a mistake")
    page.get_by_role("button", name=f"Roll back to revision {before}").click()
    flash = page.get_by_role("status").filter(has_text="Rolled back")
    expect(flash).to_be_visible()
    restored = int(re.search(r"revision (\d+) holds", flash.inner_text()).group(1))
    assert restored == changed + 1

    _decided_by(server, IBAN_FOR_MARKETING, restored, "deny")


def test_helpdesk_sees_no_edit_controls_and_a_forged_edit_is_refused(page, server):
    before = _revision_in_force(server)
    login_as(page, server, "helpdesk")
    page.goto(f"/admin/matrix?{MARKETING}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Field permissions")
    expect(page.get_by_role("button", name="Change permissions")).to_have_count(0)
    expect(page.locator("a[href*='/admin/matrix/edit']")).to_have_count(0)
    page.goto("/admin/revisions")
    expect(page.get_by_role("link", name=re.compile("^Roll back"))).to_have_count(0)

    # the edit page itself: 403
    response = page.goto(f"/admin/matrix/edit?{MARKETING}")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    axe_check(page)

    # a forged save with this session's valid CSRF token: 403, and nothing stored
    page.goto("/admin/people")
    token = csrf_token(page)
    forged = page.request.post(
        server.url("/admin/matrix/save"),
        form={
            "csrf_token": token,
            "base": str(before),
            "edit": "marketing:customer:read:iban:marketing=allow",
            "comment": "forged",
        },
        max_redirects=0,
    )
    assert forged.status == 403
    # the same token is good: without it the answer is the CSRF refusal (400), not 403
    unforged = page.request.post(server.url("/admin/matrix/save"), form={"comment": "x"}, max_redirects=0)
    assert unforged.status == 400
    forged_rollback = page.request.post(
        server.url(f"/admin/revisions/{before}/rollback"),
        form={"csrf_token": token, "base": str(before)},
        max_redirects=0,
    )
    assert forged_rollback.status == 403
    assert _revision_in_force(server) == before
    forget_problems(page, "403")
