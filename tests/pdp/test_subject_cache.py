"""Subjects come from accessd's accounts, cached per process, and follow account changes."""

from __future__ import annotations

from accessd import accounts
from accessd.pdp.subjects import SubjectCache
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
    app.extensions["accessd"].subjects.refresh(force=True)  # what the next poll (<= 1 s) does
    body = client.post(
        url, json=evaluation("b.huber", field="iban", purpose="billing", explain=True), headers=auth
    ).json
    assert body["decision"] is False and body["context"]["reason"] == "account_disabled"


def test_a_new_role_grant_is_picked_up_once_the_poll_interval_has_passed(app, client, auth, loaded_db, clock):
    services = app.extensions["accessd"]
    assert services.subjects.get("s.ito").roles == frozenset({"it_support"})
    with loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "s.ito"), "billing")
    clock.advance(services.subjects.poll_seconds + 0.1)
    assert services.subjects.get("s.ito").roles == frozenset({"it_support", "billing"})


def test_the_cache_reads_the_database_again_only_after_its_poll_interval(loaded_db, employees, clock):
    cache = SubjectCache(loaded_db, poll_seconds=60)
    assert cache.get("s.ito").roles == frozenset({"it_support"})
    with loaded_db.session() as s:
        accounts.grant(s, accounts.get_by_subject_id(s, "s.ito"), "billing")
    assert cache.get("s.ito").roles == frozenset({"it_support"})  # no database read within 60 s
    clock.advance(61)
    assert cache.get("s.ito").roles == frozenset({"it_support", "billing"})
