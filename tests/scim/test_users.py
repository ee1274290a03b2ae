"""SCIM Users over HTTP: create, read, replace, modify, delete; filter, sort, page, attributes;
what each does to the account behind it."""

from __future__ import annotations

from sqlalchemy import func, select

from accessd import accounts
from accessd.models import Account, LifecycleEvent
from tests.scim.conftest import ENTERPRISE, ERROR, patch, user


def account(db, subject_id: str) -> Account:
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        s.expunge(acc)
        return acc


def kinds(db, subject_id: str) -> list[tuple[str, str]]:
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        rows = s.execute(
            select(LifecycleEvent.kind, LifecycleEvent.source)
            .where(LifecycleEvent.account_id == acc.id)
            .order_by(LifecycleEvent.id)
        )
        return [tuple(r) for r in rows]


def test_a_created_user_is_an_account_with_the_scim_attributes(scim, loaded_db):
    created = scim.create(
        user(
            "n.neumann",
            externalId="hr-4711",
            displayName="Nina Neumann",
            title="Therapist",
            emails=[{"value": "n.neumann@practice.example", "type": "work", "primary": True}],
            enterprise={"employeeNumber": "E4711", "department": "Therapy"},
        )
    )
    assert created["userName"] == "n.neumann" and created["active"] is True
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")
    assert created[ENTERPRISE] == {"employeeNumber": "E4711", "department": "Therapy"}
    acc = account(loaded_db, "n.neumann")
    assert (acc.id, acc.username, acc.external_id, acc.origin, acc.status) == (
        int(created["id"]),
        "n.neumann",
        "hr-4711",
        "scim",
        "active",
    )
    assert (acc.display_name, acc.email, acc.employee_number, acc.department, acc.title) == (
        "Nina Neumann",
        "n.neumann@practice.example",
        "E4711",
        "Therapy",
        "Therapist",
    )
    assert kinds(loaded_db, "n.neumann") == [("joiner", "scim")]
    assert scim.get(f"/Users/{created['id']}").json == created


def test_attributes_accessd_does_not_keep_are_accepted_and_dropped(scim):
    """HR connectors send name parts, phone numbers and more: accepted, not kept; a missing
    displayName is made from the name."""
    created = scim.create(
        user(
            "o.ortiz",
            name={"givenName": "Olga", "familyName": "Ortiz"},
            phoneNumbers=[{"value": "+49 30 1234", "type": "work"}],
            nickName="Olly",
        )
    )
    assert created["displayName"] == "Olga Ortiz"
    assert not {"name", "phoneNumbers", "nickName"} & set(created)


def test_a_taken_user_name_is_refused_whatever_its_case(scim, employees, loaded_db):
    before = _counts(loaded_db)
    response = scim.post("/Users", user("B.HUBER"))
    assert response.status_code == 409
    assert response.json["schemas"] == [ERROR] and response.json["scimType"] == "uniqueness"
    assert "B.HUBER" in response.json["detail"]
    assert _counts(loaded_db) == before


def test_replace_sets_every_attribute_and_clears_the_absent_ones(scim, loaded_db):
    created = scim.create(
        user("p.park", displayName="Pia Park", title="Clerk", enterprise={"department": "Ops"})
    )
    replaced = scim.put(f"/Users/{created['id']}", user("p.park", displayName="Pia Park-Lee"))
    assert replaced.status_code == 200
    assert replaced.json["displayName"] == "Pia Park-Lee"
    assert "title" not in replaced.json and ENTERPRISE not in replaced.json
    acc = account(loaded_db, "p.park")
    assert (acc.display_name, acc.title, acc.department) == ("Pia Park-Lee", None, None)
    assert [k for k, _ in kinds(loaded_db, "p.park")] == ["joiner", "mover"]


def test_a_user_name_change_keeps_the_subject_id(scim, loaded_db):
    created = scim.create(user("q.quinn"))
    response = scim.patch(
        f"/Users/{created['id']}", patch({"op": "replace", "path": "userName", "value": "q.quinn-smith"})
    )
    assert response.status_code == 204
    acc = account(loaded_db, "q.quinn")
    assert (acc.subject_id, acc.username) == ("q.quinn", "q.quinn-smith")


def test_directory_accounts_are_users_too(scim, employees):
    """Every account is a SCIM User, so an HR system can find and offboard anyone."""
    found = scim.find("b.huber")
    assert found["displayName"] == "Bernd Huber"
    assert found["emails"] == [{"value": "b.huber@practice.example", "type": "work"}]
    assert found["roles"] == [{"value": "billing", "type": "manual"}]
    assert found[ENTERPRISE]["employeeNumber"].startswith("E")


def test_filter_sort_page_and_attributes(scim, loaded_db):
    for name, department in [
        ("u.delta", "Ops"),
        ("u.alpha", "Therapy"),
        ("u.charlie", "Ops"),
        ("u.bravo", "Ops"),
    ]:
        scim.create(user(name, enterprise={"department": department}))

    ops = scim.get(
        f'/Users?filter={ENTERPRISE}:department eq "ops"&sortBy=userName&sortOrder=descending'
        "&startIndex=2&count=1&attributes=userName"
    ).json
    assert (ops["totalResults"], ops["startIndex"], ops["itemsPerPage"]) == (3, 2, 1)
    assert [{k: v for k, v in r.items() if k != "schemas"} for r in ops["Resources"]] == [
        {"id": ops["Resources"][0]["id"], "userName": "u.charlie"}
    ]

    sorted_names = [
        r["userName"] for r in scim.get('/Users?sortBy=userName&filter=userName sw "u."').json["Resources"]
    ]
    assert sorted_names == ["u.alpha", "u.bravo", "u.charlie", "u.delta"]
    assert scim.get('/Users?filter=userName eq "U.ALPHA"').json["totalResults"] == 1
    assert scim.get('/Users?filter=userName eq "nobody"').json["totalResults"] == 0

    page = scim.get("/Users?startIndex=3&count=2").json  # a plain listing, by id
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (4, 3, 2)
    assert [r["userName"] for r in page["Resources"]] == ["u.charlie", "u.bravo"]

    searched = scim.post(
        "/Users/.search", {"filter": 'userName co "arl"', "excludedAttributes": "emails"}
    ).json
    assert [r["userName"] for r in searched["Resources"]] == ["u.charlie"]


def test_delete_offboards_keeps_the_account_and_answers_404_from_then_on(scim, loaded_db):
    created = scim.create(user("r.roth"))
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    assert scim.get(f"/Users/{created['id']}").status_code == 404
    assert scim.delete(f"/Users/{created['id']}").status_code == 404
    assert scim.get('/Users?filter=userName eq "r.roth"').json["totalResults"] == 0
    assert scim.get("/Users").json["totalResults"] == 0
    acc = account(loaded_db, "r.roth")  # kept, disabled, with its history
    assert (acc.status, acc.disabled_by) == ("disabled", "scim")
    assert kinds(loaded_db, "r.roth") == [("joiner", "scim"), ("leaver", "scim"), ("scim_deleted", "scim")]


def test_creating_a_deleted_user_again_is_a_rehire_of_the_same_account(scim, loaded_db):
    created = scim.create(user("s.stein", displayName="Sara Stein"))
    scim.delete(f"/Users/{created['id']}")

    again = scim.create(user("S.Stein", displayName="Sara Stein-Berg"))
    assert again["id"] == created["id"] and again["active"] is True
    acc = account(loaded_db, "s.stein")
    assert (acc.status, acc.username, acc.display_name) == ("active", "S.Stein", "Sara Stein-Berg")
    assert [k for k, _ in kinds(loaded_db, "s.stein")] == [
        "joiner",
        "leaver",
        "scim_deleted",
        "mover",
        "rehire",
    ]


def test_a_user_created_inactive_is_disabled_from_the_start(scim, loaded_db):
    created = scim.create(user("t.tal", active=False))
    assert created["active"] is False
    assert account(loaded_db, "t.tal").status == "disabled"


def _counts(db) -> tuple[int, int]:
    with db.session() as s:
        return s.scalar(select(func.count(Account.id))), s.scalar(select(func.count(LifecycleEvent.id)))
