"""Subjects come from accessd's accounts, cached per process, and follow account changes."""

from __future__ import annotations

from accessd import accounts
from tests.support.api import evaluation


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
    app.extensions["accessd"].feed.catch_up()  # what the worker's feed thread does within 0.5 s
    body = client.post(
        url, json=evaluation("b.huber", field="iban", purpose="billing", explain=True), headers=auth
    ).json
    assert body["decision"] is False and body["context"]["reason"] == "account_disabled"


def test_a_new_role_grant_is_picked_up_by_the_feed(app, client, auth, loaded_db):
    services = app.extensions["accessd"]
    assert services.subjects.get("s.ito").roles == frozenset({"it_support"})
    with loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "s.ito"), "billing")
    services.feed.catch_up()
    assert services.subjects.get("s.ito").roles == frozenset({"it_support", "billing"})
