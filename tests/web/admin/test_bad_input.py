"""Bad input to the admin UI is a 4xx page that says what is wrong, and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from accessd.models import Account


def _accounts(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Account))


def test_a_form_that_is_not_utf8_is_refused_not_mangled(admin_client, demo_db):
    client = admin_client("admin")
    before = _accounts(demo_db)
    body = f"csrf_token={client.csrf()}&subject_id=a%ED%A0%80b&display_name=x"
    answer = client.post("/admin/people/new", data=body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400 and "not valid UTF-8" in answer.text
    assert _accounts(demo_db) == before


def test_a_query_that_is_not_utf8_is_refused(admin_client):
    answer = admin_client("auditor").get("/admin/people?q=%ED%A0%80")
    assert answer.status_code == 400 and "not valid UTF-8" in answer.text


def test_a_wrong_method_is_a_405_page_naming_the_allowed_ones(admin_client):
    answer = admin_client("admin").post("/admin/people", data={})
    assert answer.status_code == 405 and "GET" in answer.headers["Allow"]
    assert "Traceback" not in answer.text


def test_nul_and_huge_numbers_in_page_parameters_are_400(admin_client):
    client = admin_client("auditor")
    for url in ("/admin/people?page=1e999", "/admin/people?q=%00", "/admin/audit?page=" + "9" * 40):
        answer = client.get(url)
        assert answer.status_code == 400, url
