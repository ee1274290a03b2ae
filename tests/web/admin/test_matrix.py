"""The permission matrix, its editing with the people preview, revisions with diff and rollback,
and the decision simulator, through the admin UI's views (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import time

import pytest
from sqlalchemy import func, select

from accessd.models import PolicyRevision
from accessd.pdp import revisions, tokens
from tests.support.api import evaluation

R_SCHMIDT = "subject=r.schmidt&type=customer&action=read&purpose=care"
MOBILE = "billing:customer:read:mobile_phone:billing=allow"
SENTENCE = "1 person in billing gains read of mobile_phone for purpose billing"


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def revision_count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(PolicyRevision))


def preview(client, **form):
    data = {"csrf_token": client.csrf(), "type": "customer", "action": "read", "purpose": "billing", **form}
    return client.post("/admin/matrix/preview", data=data)


def save(client, edits, comment="billing calls clients about invoices", base=1):
    return client.post(
        "/admin/matrix/save",
        data={"csrf_token": client.csrf(), "edit": edits, "base": str(base), "comment": comment},
    )


# -- the matrix -----------------------------------------------------------------------------


def test_the_matrix_shows_roles_by_fields_with_badges_and_conditions(admin_client):
    client = admin_client("auditor")
    page = client.get("/admin/matrix?type=customer&action=read&purpose=care")
    assert page.status_code == 200
    body = text(page)
    assert '<th scope="row">reception</th>' in body and '<th scope="col">iban</th>' in body
    assert 'aria-label="reception, iban: mask"' in body
    assert "if reception-iban-masked" in body
    # the legend gives each named rule's condition
    assert "r.obj.clinic_region == r.sub.region" in body
    # an auditor may not edit: no edit link
    assert "Change permissions" not in body and "/admin/matrix/edit" not in body


def test_the_matrix_defaults_and_lists_every_type_and_purpose(admin_client):
    body = text(admin_client("auditor").get("/admin/matrix"))
    assert "customer read for purpose care" in body  # first type, first action, first purpose
    assert "/admin/matrix?type=invoice&action=void" in body


@pytest.mark.parametrize(
    "query",
    [
        "type=patient",
        "type=customer&action=fly",
        "type=customer&action=read&purpose=fun",
        "type=cus%00tomer",
    ],
)
def test_unknown_names_in_the_matrix_are_a_400(admin_client, query):
    answer = admin_client("auditor").get(f"/admin/matrix?{query}")
    assert answer.status_code == 400


def test_a_cell_lists_its_rules_and_the_people_it_covers(admin_client):
    client = admin_client("admin")
    page = client.get("/admin/matrix/cell?type=customer&action=read&purpose=care&role=therapist&field=email")
    assert page.status_code == 200
    body = text(page)
    assert "therapist-contact-own" in body and "r.obj.assigned_therapist_id == r.sub.id" in body
    # t.meyer holds therapist, j.okafor senior_therapist (which inherits it); l.novak has not started
    assert "2 active people hold therapist or senior_therapist" in body
    assert "t.meyer" in body and "j.okafor" in body and "l.novak" not in body
    assert "Change this cell" in body
    for bad in ("role=wizard&field=email", "role=therapist&field=shoe_size", "role=therapist"):
        answer = client.get(f"/admin/matrix/cell?type=customer&action=read&purpose=care&{bad}")
        assert answer.status_code == 400


# -- editing --------------------------------------------------------------------------------


def test_the_preview_names_who_gains_and_saving_makes_a_revision_the_api_decides_with(admin_client, demo_db):
    client = admin_client("admin")
    edit = client.get(
        "/admin/matrix/edit?type=customer&action=read&purpose=billing&role=billing&field=mobile_phone"
    )
    assert edit.status_code == 200
    assert 'hx-post="/admin/matrix/preview"' in edit.text and "Preview" in edit.text
    # without JavaScript: the Preview button renders the page
    page = preview(client, role="billing", field="mobile_phone", effect="allow")
    assert page.status_code == 200
    body = text(page)
    assert SENTENCE in body and "Bernd Huber (b.huber)" in body
    assert "Save as new revision" in body and f'value="{MOBILE}"' in body
    # with htmx: the fragment only
    fragment = client.post(
        "/admin/matrix/preview",
        data={"csrf_token": client.csrf(), "edit": MOBILE},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200 and SENTENCE in text(fragment) and "<html" not in fragment.text
    assert revision_count(demo_db) == 1

    with demo_db.session() as s:
        token = tokens.create(s, "crm-test", "decide")
    auth = {"Authorization": f"Bearer {token}"}
    ask = evaluation("b.huber", field="mobile_phone", purpose="billing")
    assert client.post("/access/v1/evaluation", json=ask, headers=auth).json["decision"] is False

    answer = save(client, [MOBILE])
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/revisions")
    assert "Saved as policy revision 2" in text(client.get("/admin/revisions"))
    with demo_db.session() as s:
        assert revisions.current(s).created_by == "admin:admin.user"
    deadline = time.monotonic() + 3  # every worker polls for a new revision at least once a second
    while True:
        decision = client.post("/access/v1/evaluation", json=ask, headers=auth).json
        if decision["decision"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert decision["decision"] is True and decision["context"]["effect"] == "allow"


def test_pending_edits_accumulate_and_show_in_the_matrix(admin_client):
    client = admin_client("admin")
    page = client.get(f"/admin/matrix/edit?type=customer&action=read&purpose=billing&edit={MOBILE}")
    body = text(page)
    assert page.status_code == 200
    assert 'aria-label="billing, mobile_phone: allow (changed)"' in body
    assert f'name="edit" value="{MOBILE}"' in body
    both = text(preview(client, edit=MOBILE, role="billing", field="email", effect="allow"))
    assert "1 person in billing gains read of email, mobile_phone for purpose billing" in both


def test_a_deny_and_a_mask_are_previewed_with_their_notes(admin_client):
    client = admin_client("admin")
    body = text(preview(client, role="billing", field="iban", effect="deny"))
    assert "1 person in billing loses read of iban for purpose billing" in body
    assert "applies to everyone holding billing" in body
    body = text(preview(client, purpose="care", role="reception", field="iban", effect="mask"))
    assert "3 people in reception: read of iban for purpose care widens to mask" in body


def test_a_refused_edit_is_a_400_page_and_in_the_live_preview_a_message(admin_client, demo_db):
    client = admin_client("admin")
    answer = preview(client, role="billing", field="iban", effect="mask")
    assert answer.status_code == 400 and "cannot narrow" in text(answer)
    live = client.post(
        "/admin/matrix/preview",
        data={"csrf_token": client.csrf(), "edit": "billing:customer:read:iban:billing=mask"},
        headers={"HX-Request": "true"},
    )
    assert live.status_code == 200 and 'role="alert"' in live.text and "cannot narrow" in text(live)


@pytest.mark.parametrize(
    "edits",
    [
        ["wizard:customer:read:iban:billing=allow"],
        ["billing:customer:read:shoe_size:billing=allow"],
        ["billing:patient:read:iban:billing=allow"],
        ["billing:customer:read:iban:billing=maybe"],
        ["billing:customer:read:iban\x00:billing=allow"],
        ["nonsense"],
    ],
)
def test_bad_edits_are_refused_on_save_and_nothing_is_stored(admin_client, demo_db, edits):
    client = admin_client("admin")
    answer = save(client, edits)
    assert answer.status_code == 400
    assert revision_count(demo_db) == 1


def test_save_needs_a_comment_a_current_base_and_a_number(admin_client, demo_db):
    client = admin_client("admin")
    assert save(client, [MOBILE], comment="").status_code == 400
    assert save(client, [MOBILE], base="one").status_code == 400
    assert save(client, [MOBILE], base=7).status_code == 409
    assert revision_count(demo_db) == 1


def test_a_lockout_is_refused(admin_client, demo_db):
    client = admin_client("admin")
    deny = "admin:admin_ui:edit_policy:*:administration=deny"
    body = text(preview(client, type="admin_ui", action="edit_policy", purpose="administration", edit=deny))
    assert "no active account could change the policy" in body and "Save as new revision" not in body
    assert save(client, [deny]).status_code == 400
    assert revision_count(demo_db) == 1


def test_helpdesk_may_look_but_not_edit_even_with_a_forged_post(admin_client, demo_db):
    client = admin_client("helpdesk")
    assert client.get("/admin/matrix?type=customer&action=read&purpose=billing").status_code == 200
    assert client.get("/admin/matrix/edit?type=customer&action=read&purpose=billing").status_code == 403
    assert preview(client, edit=MOBILE).status_code == 403
    assert save(client, [MOBILE]).status_code == 403
    assert client.get("/admin/revisions/1/rollback").status_code == 403
    assert revision_count(demo_db) == 1


def test_a_post_without_csrf_token_is_refused(admin_client, demo_db):
    client = admin_client("admin")
    answer = client.post("/admin/matrix/save", data={"edit": MOBILE, "base": "1", "comment": "x"})
    assert answer.status_code == 400
    assert revision_count(demo_db) == 1


# -- revisions and rollback -----------------------------------------------------------------


def test_revisions_diff_and_rollback(admin_client, demo_db):
    client = admin_client("admin")
    assert save(client, [MOBILE]).status_code == 302
    listing = text(client.get("/admin/revisions"))
    assert "billing calls clients about invoices" in listing and "in force" in listing
    assert "Roll back to 1" in listing

    diff = client.get("/admin/revisions/diff?from=1&to=2")
    assert diff.status_code == 200
    body = text(diff)
    assert SENTENCE in body
    assert "+p, billing, customer, read, mobile_phone, billing, True, allow, full" in body
    assert "billing (1 person):" in body

    confirm = client.get("/admin/revisions/1/rollback")
    assert confirm.status_code == 200
    assert "1 person in billing loses read of mobile_phone for purpose billing" in text(confirm)
    assert revision_count(demo_db) == 2
    done = client.post(
        "/admin/revisions/1/rollback", data={"csrf_token": client.csrf(), "base": "2", "reason": "too early"}
    )
    assert done.status_code == 302
    with demo_db.session() as s:
        rev3 = revisions.get(s, 3)
        assert rev3.files == revisions.get(s, 1).files and rev3.comment == "rollback to 1: too early"
    # the same rollback again: already in force
    again = client.post("/admin/revisions/1/rollback", data={"csrf_token": client.csrf(), "base": "3"})
    assert again.status_code == 409 and revision_count(demo_db) == 3


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/admin/revisions/diff?from=1&to=x", 400),
        ("/admin/revisions/diff?from=1", 400),
        ("/admin/revisions/diff?from=1&to=99", 404),
        ("/admin/revisions/diff?from=1%00&to=1", 400),
        ("/admin/revisions/x/rollback", 404),
        ("/admin/revisions/99/rollback", 404),
        ("/admin/revisions?page=0", 400),
    ],
)
def test_bad_revision_numbers(admin_client, url, status):
    assert admin_client("admin").get(url).status_code == status


def test_a_stale_rollback_is_a_conflict(admin_client, demo_db):
    client = admin_client("admin")
    save(client, [MOBILE])
    answer = client.post("/admin/revisions/1/rollback", data={"csrf_token": client.csrf(), "base": "1"})
    assert answer.status_code == 409 and revision_count(demo_db) == 2


# -- the simulator --------------------------------------------------------------------------


def test_the_simulator_shows_each_fields_effect(admin_client):
    client = admin_client("helpdesk")  # view is enough
    page = client.get(
        "/admin/simulator?type=customer&subject=r.schmidt&action=read&purpose=care"
        "&p.clinic_region=north&p.legal_hold=false&p.retention_until="
    )
    assert page.status_code == 200
    body = text(page)
    assert "Rita Schmidt" in body and "reception-iban-masked" in body
    row = body[body.index('<th scope="row">iban</th>') :][:200]
    assert "badge-mask" in row
    assert '<th scope="row">diagnosis</th>\n        <td><span class="badge badge-deny">' in body


def test_the_simulator_form_lists_the_types_properties(admin_client):
    body = text(admin_client("auditor").get("/admin/simulator?type=invoice"))
    assert 'name="p.created_by"' in body and 'name="p.status"' in body and "Decide" in body


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (R_SCHMIDT + "&p.retention_until=soon", 400, "ISO date"),
        (
            R_SCHMIDT + "&p.legal_hold=perhaps",
            400,
            "true or false",
        ),
        (R_SCHMIDT + "&p.clinic_region=n%00", 400, "NUL"),
        (R_SCHMIDT + "&p.shoe=1", 400, "unknown property"),
        ("subject=r.schmidt&type=patient", 400, "unknown resource type"),
        ("subject=r.schmidt&type=customer&action=fly&purpose=care", 400, "unknown action"),
        ("subject=r.schmidt&type=customer&action=read&purpose=fun", 400, "unknown purpose"),
        ("subject=nobody&type=customer&action=read&purpose=care", 404, "no account"),
        ("subject=r.schmidt&type=customer&action=read&purpose=care&today=2024-13-01", 400, "today"),
    ],
)
def test_bad_simulator_input(admin_client, query, status, message):
    answer = admin_client("auditor").get(f"/admin/simulator?{query}")
    assert answer.status_code == status
    assert message in text(answer)


def test_the_nav_links_the_policy_pages(admin_client):
    body = admin_client("auditor").get("/admin/matrix").text
    for label in ("Permissions", "Revisions", "Simulator"):
        assert f">{label}</a>" in body
