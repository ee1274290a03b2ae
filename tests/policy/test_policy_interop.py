"""What a standard AuthZEN client (the interop "todo" application) needs from a policy.

Purposes with a default per resource type, property names as data (camelCase, dotted paths into
nested objects), and resource types without fields (record-level decisions) -- all decided
exactly as casbin decides them.
"""

import itertools
from datetime import date

import pytest

from accessd.errors import Invalid, PolicyError
from accessd.policy.cases import run_test_file
from accessd.policy.engine import REASONS, Engine, Subject
from accessd.policy.policyset import PolicySet
from accessd.policy.reference import casbin as casbin_ref
from accessd.policy.reference.synthetic import Request

TODAY = date(2025, 6, 1)

TODO_CATALOGUE = """
purposes:
  app: Using the todo application.
  audit: Reviewing what was done.
roles:
  admin: a
  editor: e
  viewer: v
  evil_genius: g
subject_attributes:
  email: {type: string}
  org.unit: {type: string}
resource_types:
  user:
    actions: [can_read_user]
    default_purpose: app
  todo:
    actions: [can_read_todos, can_create_todo, can_update_todo, can_delete_todo]
    default_purpose: app
    properties:
      ownerID: {type: string}
      owner.unit: {type: string}
  note:
    actions: [read]
    properties:
      ownerID: {type: string}
    fields:
      text: {sensitivity: confidential}
"""

OWN = 'r.obj.ownerID != "" && r.sub.email != "" && r.obj.ownerID == r.sub.email'
SAME_UNIT = 'r.obj.owner.unit != "" && r.sub.org.unit != "" && r.obj.owner.unit == r.sub.org.unit'
TODO_RULES = f"""
p, *, user, can_read_user, *, app, True, allow, full, read-user
p, *, todo, can_read_todos, *, app, True, allow, full, read-todos
p, admin, todo, can_create_todo, *, app, True, allow, full, admin-create
p, editor, todo, can_create_todo, *, app, True, allow, full, editor-create
p, evil_genius, todo, can_update_todo, *, app, True, allow, full, genius-update
p, editor, todo, can_update_todo, *, app, {OWN}, allow, full, editor-update-own
p, admin, todo, can_delete_todo, *, app, True, allow, full, admin-delete
p, editor, todo, can_delete_todo, *, app, {OWN}, allow, full, editor-delete-own
p, viewer, todo, can_read_todos, *, audit, {SAME_UNIT}, allow, full, viewer-audit-unit
p, *, note, read, text, *, r.obj.ownerID == r.sub.id, allow, full, note-own
"""

RICK = Subject("rick", frozenset({"admin", "evil_genius"}), {"email": "rick@the-citadel.com"})
MORTY = Subject("morty", frozenset({"editor"}), {"email": "morty@the-citadel.com"})
SUMMER = Subject("summer", frozenset({"editor"}), {"email": "summer@the-smiths.com"})
BETH = Subject("beth", frozenset({"viewer"}), {"email": "beth@the-smiths.com", "org": {"unit": "smiths"}})
NOMAIL = Subject("jerry", frozenset({"editor"}))
SUBJECTS = [RICK, MORTY, SUMMER, BETH, NOMAIL]


@pytest.fixture(scope="module")
def todo():
    return PolicySet.from_files({"catalogue.yaml": TODO_CATALOGUE, "policy.csv": TODO_RULES})


@pytest.fixture(scope="module")
def engine(todo):
    return Engine(todo)


def test_types_without_fields_and_camel_case_properties_load(todo):
    assert dict(todo.catalogue.types["todo"].fields) == {}
    assert todo.catalogue.types["todo"].default_purpose == "app"
    assert set(todo.catalogue.types["todo"].properties) == {"ownerID", "owner.unit"}


def test_interop_todo_decisions_without_field_or_purpose(engine):
    mortys = {"ownerID": "morty@the-citadel.com"}

    def decide(s, action, props=mortys):
        return engine.decide(s, "todo", action, None, None, props, TODAY)

    assert decide(MORTY, "can_update_todo").matched_rules == ("editor-update-own",)
    assert decide(SUMMER, "can_update_todo").effect == "deny"
    assert decide(RICK, "can_update_todo").matched_rules == ("genius-update",)
    assert decide(BETH, "can_update_todo").effect == "deny"
    assert decide(BETH, "can_read_todos").effect == "allow"
    assert decide(SUMMER, "can_delete_todo").effect == "deny"
    assert decide(RICK, "can_delete_todo").matched_rules == ("admin-delete",)
    assert engine.decide(BETH, "user", "can_read_user", None, None, {}, TODAY).effect == "allow"


def test_an_editor_without_an_email_owns_no_todo_without_an_owner(engine):
    for props in ({}, {"ownerID": ""}):
        d = engine.decide(NOMAIL, "todo", "can_update_todo", None, None, props, TODAY)
        assert (d.effect, d.reason) == ("deny", "no_matching_rule")


def test_no_purpose_and_no_default_is_purpose_required(engine):
    assert "purpose_required" in REASONS
    for purpose in (None, ""):
        d = engine.decide(MORTY, "note", "read", "text", purpose, {"ownerID": "morty"}, TODAY)
        assert (d.effect, d.reason) == ("deny", "purpose_required")
        m = engine.mask(MORTY, "note", "read", purpose, [{}], TODAY)[0]
        assert (m.denied, m.reason) == (("text",), "purpose_required")
    assert engine.decide(MORTY, "note", "read", "text", "app", {"ownerID": "morty"}, TODAY).effect == "allow"


def test_a_named_purpose_wins_over_the_default(engine):
    props = {"owner": {"unit": "smiths"}}
    assert engine.decide(BETH, "todo", "can_read_todos", None, "audit", props, TODAY).matched_rules == (
        "viewer-audit-unit",
    )
    assert engine.decide(BETH, "todo", "can_read_todos", None, None, props, TODAY).matched_rules == (
        "read-todos",
    )
    assert (
        engine.resolve_purpose("todo", None) == "app" and engine.resolve_purpose("todo", "audit") == "audit"
    )
    assert engine.resolve_purpose("note", None) is None and engine.resolve_purpose("horse", None) is None


def test_vocabulary_checks_come_before_the_purpose(engine):
    assert engine.decide(MORTY, "horse", "read", None, None, {}, TODAY).reason == "unknown_resource_type"
    assert engine.decide(MORTY, "note", "fly", None, None, {}, TODAY).reason == "unknown_action"
    assert (
        engine.decide(MORTY, "todo", "can_read_todos", None, "gossip", {}, TODAY).reason == "unknown_purpose"
    )


def test_a_mask_of_a_type_without_fields_carries_the_record_level_answer(engine):
    records = [{"ownerID": "morty@the-citadel.com"}, {"ownerID": "rick@the-citadel.com"}, {}]
    masks = engine.mask(MORTY, "todo", "can_update_todo", None, records, TODAY)
    assert [(m.allowed, m.masked, m.denied) for m in masks] == [((), (), ())] * 3
    assert [m.reason for m in masks] == [None, "no_matching_rule", "no_matching_rule"]
    gone = Subject("morty", frozenset({"editor"}), status="disabled")
    assert engine.mask(gone, "todo", "can_update_todo", None, records, TODAY)[0].reason == "account_disabled"


def test_dotted_names_read_nested_members(engine):
    d = engine.decide(BETH, "todo", "can_read_todos", None, "audit", {"owner": {"unit": "smiths"}}, TODAY)
    assert d.effect == "allow"
    assert engine.object_dict("todo", {"owner": {"unit": "smiths", "x": 1}}) == {
        "ownerID": "",
        "owner": {"unit": "smiths"},
    }
    assert engine.subject_dict(BETH)["org"] == {"unit": "smiths"}
    # a flat "owner.unit" key is not the nested member
    d = engine.decide(BETH, "todo", "can_read_todos", None, "audit", {"owner.unit": "smiths"}, TODAY)
    assert d.effect == "deny"


@pytest.mark.parametrize(
    ("props", "pointer"),
    [
        ({"owner": "smiths"}, "/resource/properties/owner"),
        ({"owner": {"unit": ["a"]}}, "/resource/properties/owner/unit"),
        ({"ownerID": {"a": 1}}, "/resource/properties/ownerID"),
    ],
)
def test_a_nested_property_of_the_wrong_shape_is_invalid_input(engine, props, pointer):
    with pytest.raises(Invalid) as err:
        engine.decide(BETH, "todo", "can_read_todos", None, "audit", props, TODAY)
    assert err.value.pointer == pointer


def test_the_todo_policy_decides_exactly_as_casbin(todo, engine):
    owners = [{"ownerID": s.attributes.get("email", "")} for s in SUBJECTS] + [
        {},
        {"ownerID": ""},
        {"owner": {"unit": "smiths"}},
        {"owner": {"unit": ""}, "ownerID": "beth@the-smiths.com"},
    ]
    requests = [
        Request(s, rtype, action, field, purpose, props, TODAY)
        for s, props, purpose in itertools.product(SUBJECTS, owners, (None, "app", "audit"))
        for rtype, action, field in [
            *(("todo", a, None) for a in todo.catalogue.types["todo"].actions),
            ("user", "can_read_user", None),
            ("note", "read", "text"),
            ("note", "read", None),
        ]
        if not (rtype == "note" and purpose is None)  # no default: purpose_required, not a casbin question
    ]
    effects = {
        engine.decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties).effect for q in requests
    }
    assert effects == {"allow", "deny"}
    for fast in (False, True):
        enforcer = casbin_ref.build_caching_enforcer(todo, SUBJECTS, fast=fast)
        assert casbin_ref.compare(engine, enforcer, requests, exact_rules_every=5) == []


def test_policy_test_cases_may_leave_the_purpose_out(engine):
    text = """
subjects:
  morty: {id: morty, roles: [editor], attributes: {email: morty@the-citadel.com}}
cases:
  - name: morty updates his own todo
    subject: morty
    resource: {type: todo, properties: {ownerID: morty@the-citadel.com}}
    action: can_update_todo
    field: null
    expect: allow
  - name: a note needs a purpose
    subject: morty
    resource: {type: note}
    action: read
    field: text
    expect: deny
    reason: purpose_required
"""
    results = run_test_file(engine, text, "todo.yaml")
    assert [r.passed for r in results] == [True, True], results


# ---------------------------------------------------------------------------------------------
# catalogue validation


def _catalogue_error(catalogue: str, rules: str = TODO_RULES) -> PolicyError:
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({"catalogue.yaml": catalogue, "policy.csv": rules})
    return err.value


BAD_NAMES = [
    ("keys", "reserved"),
    ("owner.items", "reserved"),
    ("owner._secret", "must be letters"),
    ("class", "Python keyword"),
    ("a.r.b", "casbin would rewrite"),
    ("p1.x", "casbin would rewrite"),
    ("owner-id", "must be letters"),
    ("9lives", "must be letters"),
    ("owner..id", "must be letters"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES, ids=[n for n, _ in BAD_NAMES])
def test_property_names_casbin_could_not_read_are_refused(name, reason):
    cat = TODO_CATALOGUE.replace("      owner.unit: {type: string}", f"      {name}: {{type: string}}")
    err = _catalogue_error(cat, "p, *, user, can_read_user, *, app, True, allow, full, r\n")
    assert err.file == "catalogue.yaml" and reason in err.reason
    assert err.line == cat.splitlines().index(f"      {name}: {{type: string}}") + 1


def test_a_name_cannot_be_a_value_and_an_object():
    cat = TODO_CATALOGUE.replace("      ownerID: {type: string}\n", "      owner: {type: string}\n", 1)
    err = _catalogue_error(cat, "p, *, user, can_read_user, *, app, True, allow, full, r\n")
    assert "'owner.unit' is inside 'owner'" in err.reason


def test_reading_an_object_instead_of_its_member_names_the_members():
    rules = 'p, *, todo, can_read_todos, *, app, r.obj.owner == "x", allow, full, r\n'
    err = _catalogue_error(TODO_CATALOGUE, rules)
    assert err.file == "policy.csv" and "r.obj.owner is not a declared property" in err.reason
    assert "(it holds owner.unit)" in err.reason


def test_default_purpose_must_be_declared():
    cat = TODO_CATALOGUE.replace(
        "default_purpose: app\n    properties", "default_purpose: fun\n    properties"
    )
    err = _catalogue_error(cat)
    assert err.file == "catalogue.yaml" and "default_purpose 'fun' is not a declared purpose" in err.reason
    assert err.line == cat.splitlines().index("    default_purpose: fun") + 1


def test_rules_on_a_type_without_fields_take_field_star():
    rules = TODO_RULES + "p, admin, todo, can_read_todos, title, app, True, allow, full, by-field\n"
    err = _catalogue_error(TODO_CATALOGUE, rules)
    assert err.file == "policy.csv" and "todo has no fields; its rules take field *" in err.reason
