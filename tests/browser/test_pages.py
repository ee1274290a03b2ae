"""Every main page of the admin UI in a real browser: it renders under the Content-Security-Policy
without a console error or a failed request, it has one <h1>, axe-core finds no accessibility
violation, and a full-page screenshot is saved (test-artifacts/screenshots/<name>.png).

These tests only read, so they share one signed-in administrator per module. Pages that need
data made by other tests are checked there: the revision diff and the rollback confirmation
(test_policy), the offboarding confirmation (test_people), TOTP enrolment (test_sign_in)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    CONTEXT_OPTIONS,
    TIMEOUT_MS,
    axe_check,
    forget_problems,
    login_as,
    problems,
    shot,
    watch,
)

# name -> path; names are the screenshots' file names
PAGES = {
    "dashboard": "/admin/",
    "people": "/admin/people",
    "people-filtered": "/admin/people?status=disabled",
    "person": "/admin/people/t.meyer",
    "person-leaving": "/admin/people/a.lind",
    "person-new": "/admin/people/new",
    "roles": "/admin/roles",
    "role": "/admin/roles/therapist",
    "matrix": "/admin/matrix",
    "matrix-cell": "/admin/matrix/cell?type=customer&action=read&purpose=care&role=therapist&field=diagnosis",
    "matrix-edit": "/admin/matrix/edit?type=customer&action=read&purpose=care",
    "revisions": "/admin/revisions",
    "simulator": "/admin/simulator",
    "simulator-result": "/admin/simulator?type=customer&subject=t.meyer&action=read&purpose=care"
    "&p.assigned_therapist_id=t.meyer&p.clinic_region=north&p.marketing_opt_in=true",
    "audit": "/admin/audit",
    "decisions": "/admin/decisions",
    "decisions-one-record": "/admin/decisions?resource=customer:C-123",
    "sync-runs": "/admin/sync",
    "sync-run": "/admin/sync/1",
    "sync-approve": "/admin/sync/1/approve",
    "sync-reject": "/admin/sync/1/reject",
    "clients": "/admin/clients",
    "client-new": "/admin/clients/new",
    "sources": "/admin/sources",
    "streams": "/admin/streams",
    "me": "/admin/me",
}


@pytest.fixture(scope="module")
def admin_page(browser, server):
    """One signed-in administrator's page for the module (these tests change nothing)."""
    context = browser.new_context(base_url=server.base_url, **CONTEXT_OPTIONS)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch(page)
    login_as(page, server, "admin")
    # a few decisions, so that the decision log has rows
    from tests.support.api import evaluation

    for subject, field in (("t.meyer", "diagnosis"), ("r.schmidt", "iban"), ("m.rossi", "email")):
        server.evaluate(evaluation(subject, field=field, rid="C-123"))
    yield page
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_a_main_page_renders_cleanly_and_passes_axe(admin_page, server, name):
    page = admin_page
    forget_problems(page)
    response = page.goto(PAGES[name])
    assert response.status == 200, f"{PAGES[name]} answered {response.status}: {server.log_tail(1500)}"
    expect(page.locator("h1")).to_have_count(1)
    axe_check(page)
    shot(page, name)
    assert not problems(page), "\n".join(problems(page))


def test_the_sign_in_page_passes_axe(page):
    page.goto("/admin/login")
    axe_check(page)
