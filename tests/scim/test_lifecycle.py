"""``active`` through SCIM is the one lifecycle: a departure denies the person's next decision,
is recorded once with its source and request, and replaying the request changes nothing; a
stale ETag changes nothing either."""

from __future__ import annotations

from sqlalchemy import func, select

from accessd import accounts
from accessd.models import AuditEvent, LifecycleEvent
from tests.scim.conftest import patch
from tests.support.api import evaluation

INACTIVE = patch({"op": "replace", "path": "active", "value": False})
ACTIVE = patch({"op": "replace", "path": "active", "value": True})


def ask(client, auth, subject="b.huber") -> tuple[bool, str]:
    """``subject`` (billing) reads a client's IBAN for billing."""
    client.application.extensions["accessd"].feed.catch_up()  # what the worker's feed does
    body = evaluation(subject, field="iban", purpose="billing", explain=True)
    answer = client.post("/access/v1/evaluation", json=body, headers=auth).get_json()
    return answer["decision"], answer["context"]["reason"]


def events(db, subject="b.huber") -> list[tuple]:
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject)
        rows = s.execute(
            select(LifecycleEvent.kind, LifecycleEvent.source, LifecycleEvent.actor, LifecycleEvent.event_ref)
            .where(LifecycleEvent.account_id == acc.id, LifecycleEvent.kind != "joiner")
            .order_by(LifecycleEvent.id)
        )
        return [tuple(r) for r in rows]


def audit_count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(AuditEvent.id)))


def test_active_false_denies_the_next_decision_once_and_a_replay_changes_nothing(
    scim, scim_app, auth, loaded_db, clock
):
    decisions = scim_app.test_client()
    assert ask(decisions, auth) == (True, "allowed")
    bernd = scim.find("b.huber")

    response = scim.patch(f"/Users/{bernd['id']}", INACTIVE, headers={"X-Request-ID": "hr-req-1"})
    assert response.status_code == 204
    assert response.headers["X-Request-ID"] == "hr-req-1"
    assert ask(decisions, auth) == (False, "account_disabled")
    assert events(loaded_db) == [("leaver", "scim", "scim:hr-system", "hr-req-1")]
    gone = scim.get(f"/Users/{bernd['id']}").json
    assert gone["active"] is False and "roles" not in gone  # offboarding removed every grant

    audited = audit_count(loaded_db)
    replay = scim.patch(f"/Users/{bernd['id']}", INACTIVE, headers={"X-Request-ID": "hr-req-1"})
    assert replay.status_code == 204 and replay.headers["ETag"] == gone["meta"]["version"]
    assert events(loaded_db) == [("leaver", "scim", "scim:hr-system", "hr-req-1")]
    assert audit_count(loaded_db) == audited
    assert ask(decisions, auth) == (False, "account_disabled")


def test_a_put_with_active_false_offboards_too_and_active_true_rehires(
    scim, scim_app, auth, loaded_db, clock
):
    decisions = scim_app.test_client()
    bernd = scim.find("b.huber")
    body = {k: v for k, v in bernd.items() if k not in ("id", "meta", "groups", "roles")}

    assert scim.put(f"/Users/{bernd['id']}", {**body, "active": False}).json["active"] is False
    assert ask(decisions, auth) == (False, "account_disabled")
    again = scim.patch(f"/Users/{bernd['id']}", ACTIVE, headers={"X-Request-ID": "hr-req-2"})
    assert again.status_code == 204
    assert [e[0] for e in events(loaded_db)] == ["leaver", "rehire"]
    assert events(loaded_db)[-1][-1] == "hr-req-2"
    # re-enabled, but without the manual grant offboarding removed: no billing role, no IBAN
    assert ask(decisions, auth) == (False, "no_matching_rule")
    with loaded_db.session() as s:
        acc = accounts.get_by_subject_id(s, "b.huber")
        assert (acc.status, acc.disabled_by, acc.roles) == ("active", None, frozenset())


def test_a_suspended_account_stays_suspended_on_active_false_and_resumes_on_active_true(
    scim, loaded_db, employees
):
    from accessd.lifecycle import offboarding
    from accessd.lifecycle.states import Source

    with loaded_db.session() as s:
        offboarding.suspend(
            s, accounts.get_by_subject_id(s, "b.huber"), reason="leave", source=Source.HR, actor="t"
        )
    bernd = scim.find("b.huber")
    assert bernd["active"] is False
    body = {k: v for k, v in bernd.items() if k not in ("id", "meta", "groups", "roles")}
    assert scim.put(f"/Users/{bernd['id']}", {**body, "title": "Accountant"}).status_code == 200
    assert [e[0] for e in events(loaded_db)] == ["suspended", "mover"]
    assert scim.patch(f"/Users/{bernd['id']}", ACTIVE).status_code == 204
    assert [e[:2] for e in events(loaded_db)][-1] == ("resumed", "scim")


def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(scim, loaded_db, employees):
    bernd = scim.find("b.huber")
    old = bernd["meta"]["version"]
    title = patch({"op": "replace", "path": "title", "value": "Head of accounts"})
    changed = scim.patch(
        f"/Users/{bernd['id']}", title, headers={"If-Match": old, "X-Request-ID": "hr-req-3"}
    )
    assert changed.status_code == 204 and changed.headers["ETag"] != old

    audited = audit_count(loaded_db)
    for response in (
        scim.patch(f"/Users/{bernd['id']}", INACTIVE, headers={"If-Match": old}),
        scim.put(
            f"/Users/{bernd['id']}", {"userName": "b.huber", "active": False}, headers={"If-Match": old}
        ),
        scim.delete(f"/Users/{bernd['id']}", headers={"If-Match": old}),
    ):
        assert response.status_code == 412, response.get_data(as_text=True)
        assert response.json["status"] == "412"
    assert audit_count(loaded_db) == audited
    assert events(loaded_db) == [("mover", "scim", "scim:hr-system", "hr-req-3")]
    current = scim.get(f"/Users/{bernd['id']}")
    assert current.json["active"] is True and current.headers["ETag"] == changed.headers["ETag"]
    assert (
        scim.get(f"/Users/{bernd['id']}", headers={"If-None-Match": changed.headers["ETag"]}).status_code
        == 304
    )
