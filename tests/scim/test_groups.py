"""SCIM Groups are kept as groups and grant roles only through ``scim.group_roles``: joining a
mapped group grants, leaving it (or its deletion, or a changed mapping at the next write) revokes,
an unmapped group grants nothing; every change of roles is signalled once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from accessd import accounts
from accessd.cli import main
from accessd.cli.base import Context
from accessd.lifecycle import signals
from accessd.models import RoleGrant, ScimGroupMember
from tests.scim.conftest import ERROR, MAPPING, Scim, group, patch, user
from tests.scim.test_lifecycle import ask


@pytest.fixture
def emitted(monkeypatch):
    """The signals emitted (the real ``emit`` still runs)."""
    seen = []
    real = signals.emit

    def spy(session, account, change, **detail):
        seen.append((account.subject_id, change, detail))
        return real(session, account, change, **detail)

    monkeypatch.setattr(signals, "emit", spy)
    return seen


def grants(db, subject_id: str) -> list[tuple[str, str, str | None]]:
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        return sorted((g.role, g.source, g.source_ref) for g in acc.grants)


def test_a_mapped_group_grants_its_roles_and_leaving_it_revokes_them(
    scim, scim_app, auth, loaded_db, emitted, clock
):
    decisions = scim_app.test_client()
    nina = scim.create(user("n.new", displayName="Nina New"))
    assert ask(decisions, auth, "n.new") == (False, "no_matching_rule")

    billing = scim.create(group("Billing", nina["id"]))
    assert grants(loaded_db, "n.new") == [("billing", "scim", billing["id"])]
    assert emitted == [("n.new", "roles_changed", {"roles": ["billing"]})]
    assert ask(decisions, auth, "n.new") == (True, "allowed")
    shown = scim.get(f"/Users/{nina['id']}").json
    assert shown["groups"] == [
        {"value": billing["id"], "$ref": billing["meta"]["location"], "display": "Billing", "type": "direct"}
    ]
    assert shown["roles"] == [{"value": "billing", "display": "Billing", "type": "scim"}]
    assert shown["meta"]["version"] != nina["meta"]["version"]  # its groups changed

    leave = patch({"op": "remove", "path": f'members[value eq "{nina["id"]}"]'})
    assert scim.patch(f"/Groups/{billing['id']}", leave).status_code == 204
    assert grants(loaded_db, "n.new") == []
    assert emitted[-1] == ("n.new", "roles_changed", {"roles": []})
    assert ask(decisions, auth, "n.new") == (False, "no_matching_rule")
    assert len(emitted) == 2


def test_an_unmapped_group_grants_nothing(scim, loaded_db, emitted):
    nina = scim.create(user("n.new"))
    other = scim.create(group("Choir", nina["id"]))
    assert other["members"] == [{"value": nina["id"], "$ref": nina["meta"]["location"], "type": "User"}]
    assert grants(loaded_db, "n.new") == []
    assert emitted == []
    assert "roles" not in scim.get(f"/Users/{nina['id']}").json


def test_deleting_a_group_revokes_what_it_granted_but_not_other_grants(scim, loaded_db, employees):
    bernd = scim.find("b.huber")  # billing, granted by hand
    desk = scim.create(group("Front desk", bernd["id"]))
    assert grants(loaded_db, "b.huber") == [("billing", "manual", None), ("reception", "scim", desk["id"])]
    assert scim.delete(f"/Groups/{desk['id']}").status_code == 204
    assert grants(loaded_db, "b.huber") == [("billing", "manual", None)]
    assert scim.get(f"/Groups/{desk['id']}").status_code == 404


def test_a_role_two_groups_grant_stays_until_the_last_one_is_left(scim, make_app, hr_token, loaded_db):
    scim = Scim(
        make_app(scim={"group_roles": {"Billing": ["billing"], "Accounts": "billing"}}).test_client(),
        hr_token,
    )
    nina = scim.create(user("n.new"))
    first = scim.create(group("Billing", nina["id"]))
    second = scim.create(group("Accounts", nina["id"]))
    assert grants(loaded_db, "n.new") == [("billing", "scim", first["id"])]
    scim.delete(f"/Groups/{first['id']}")
    assert grants(loaded_db, "n.new") == [("billing", "scim", second["id"])]
    scim.put(f"/Groups/{second['id']}", group("Accounts"))
    assert grants(loaded_db, "n.new") == []


def test_a_changed_mapping_applies_at_the_next_write_to_the_group(make_app, hr_token, loaded_db):
    before = Scim(make_app(scim={"group_roles": {"Billing": ["billing"]}}).test_client(), hr_token)
    nina = before.create(user("n.new"))
    billing = before.create(group("Billing", nina["id"]))
    assert grants(loaded_db, "n.new") == [("billing", "scim", billing["id"])]

    after = Scim(make_app(scim={"group_roles": {"Billing": ["reception"]}}).test_client(), hr_token)
    assert grants(loaded_db, "n.new") == [("billing", "scim", billing["id"])]  # nothing written yet
    touch = patch({"op": "replace", "path": "externalId", "value": "hr-group-7"})
    assert after.patch(f"/Groups/{billing['id']}", touch).status_code == 204
    assert grants(loaded_db, "n.new") == [("reception", "scim", billing["id"])]


def test_offboarding_removes_the_grants_and_a_rehire_gets_them_back_from_the_groups(scim, loaded_db):
    nina = scim.create(user("n.new"))
    billing = scim.create(group("Billing", nina["id"]))
    scim.patch(f"/Users/{nina['id']}", patch({"op": "replace", "path": "active", "value": False}))
    assert grants(loaded_db, "n.new") == []
    assert scim.get(f"/Groups/{billing['id']}").json["members"][0]["value"] == nina["id"]  # still a member
    scim.patch(f"/Users/{nina['id']}", patch({"op": "replace", "path": "active", "value": True}))
    assert grants(loaded_db, "n.new") == [("billing", "scim", billing["id"])]


def test_deleting_a_user_takes_it_out_of_its_groups(scim, loaded_db):
    nina = scim.create(user("n.new"))
    billing = scim.create(group("Billing", nina["id"]))
    scim.delete(f"/Users/{nina['id']}")
    assert "members" not in scim.get(f"/Groups/{billing['id']}").json
    with loaded_db.session() as s:
        assert s.scalars(select(ScimGroupMember)).all() == []
        assert s.scalars(select(RoleGrant).where(RoleGrant.source == "scim")).all() == []


@pytest.mark.parametrize(
    ("members", "detail"),
    [
        ([{"value": "999999"}], "no user with id '999999'"),
        ([{"value": "x\u0000"}], "cannot be compared"),
        ([{"value": "1", "type": "Group"}], "users only"),
    ],
)
def test_a_group_with_an_unknown_member_is_refused_and_nothing_is_written(scim, loaded_db, members, detail):
    scim.create(user("n.new"))
    response = scim.post("/Groups", {**group("Billing"), "members": members})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["schemas"] == [ERROR] and detail in response.json["detail"]
    assert scim.get("/Groups").json["totalResults"] == 0


def test_group_names_are_unique_whatever_their_case(scim):
    scim.create(group("Billing"))
    response = scim.post("/Groups", group("BILLING"))
    assert response.status_code == 409 and response.json["scimType"] == "uniqueness"


def test_account_show_names_the_scim_groups_and_what_each_grants(scim, loaded_db):
    nina = scim.create(user("n.new"))
    scim.create(group("Billing", nina["id"]))
    scim.create(group("Choir", nina["id"]))
    ctx = Context()
    env = {"ACCESSD_DATABASE_URL": loaded_db.url, "ACCESSD_SCIM_GROUP_ROLES": json.dumps(MAPPING)}
    result = CliRunner().invoke(main, ["account", "show", "n.new"], obj=ctx, env=env)
    ctx.db.dispose()
    assert result.exit_code == 0, result.output
    assert "scim group:  Billing -> billing\n" in result.output
    assert "scim group:  Choir -> no roles (not in scim.group_roles)\n" in result.output
    assert "billing              scim " in result.output  # the grant, with its source
