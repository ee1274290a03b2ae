"""Subjects come from accessd's accounts, cached per process, and follow account changes."""

from __future__ import annotations

from api_helpers import evaluation

from accessd import accounts


def test_disabling_an_account_reaches_the_decision_path(app, client, auth, loaded_db):
    url = "/access/v1/evaluation"
    assert (
        client.post(url, json=evaluation("b.huber", field="iban", purpose="billing"), headers=auth).json[
            "decision"
        ]
        is True
    )
    with loaded_db.session() as s:
        accounts.get_by_subject_id(s, "b.huber").status = "disabled"
    app.extensions["accessd"].subjects.refresh(force=True)  # what the next poll (<= 1 s) does
    body = client.post(
        url, json=evaluation("b.huber", field="iban", purpose="billing", explain=True), headers=auth
    ).json
    assert body["decision"] is False and body["context"]["reason"] == "account_disabled"


def test_a_new_role_grant_is_picked_up(app, client, auth, loaded_db):
    services = app.extensions["accessd"]
    assert services.subjects.get("s.ito").roles == frozenset({"it_support"})
    with loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "s.ito"), "billing")
    services.subjects._checked = float("-inf")  # the poll interval has passed
    assert services.subjects.get("s.ito").roles == frozenset({"it_support", "billing"})
