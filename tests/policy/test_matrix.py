"""The field-permission matrix shows, per role and field, allow / mask / deny with the rules and
conditions behind it, on the demo policy."""

from pathlib import Path

import pytest

from accessd.errors import Invalid
from accessd.policy.matrix import build, columns_of, inheriting_roles, ui_rule_id
from accessd.policy.policyset import PolicySet, load_policy_dir

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def demo():
    return load_policy_dir(POLICIES)


def test_rows_are_the_declared_roles_and_columns_the_fields_then_the_record(demo):
    m = build(demo, "customer", "read", "billing")
    assert m.roles == tuple(demo.catalogue.roles)
    assert m.columns[:2] == ("client_id", "first_name")
    # the retention rule names field *, so the record as a whole is a column
    assert m.columns[-1] == "*" and len(m.columns) == len(demo.catalogue.types["customer"].fields) + 1


def test_an_unconditional_allow_shows_the_deny_rules_that_can_still_close_it(demo):
    cell = build(demo, "customer", "read", "billing").cell("billing", "iban")
    assert (cell.effect, cell.otherwise, cell.when) == ("allow", "allow", ())
    assert [r.id for r in cell.unless] == ["retention-expired-read"]
    assert "r.obj.retention_until" in cell.unless[0].cond
    assert [r.id for r in cell.rules] == ["retention-expired-read", "billing-iban-read"]
    assert cell.rules[1].cond is None  # written True: unconditional


def test_a_conditional_mask_names_its_rule_and_condition(demo):
    cell = build(demo, "customer", "read", "care").cell("reception", "iban")
    assert (cell.effect, cell.otherwise) == ("mask", "deny")
    assert [(r.id, r.level) for r in cell.when] == [("reception-iban-masked", "mask")]
    assert "r.obj.clinic_region == r.sub.region" in cell.when[0].cond


def test_nothing_granted_is_deny_without_rules(demo):
    cell = build(demo, "customer", "read", "billing").cell("billing", "mobile_phone")
    assert cell.effect == "deny" and not cell.when and not cell.denied_by


def test_inherited_rules_count_for_the_inheriting_role(demo):
    m = build(demo, "customer", "read", "care")
    senior = m.cell("senior_therapist", "first_name")
    assert [r.id for r in senior.when] == ["therapist-identity-own", "senior-name-region"]
    assert [r.sub for r in senior.when] == ["therapist", "senior_therapist"]
    assert m.cell("senior_therapist", "client_id").effect == "allow"


def test_an_unconditional_deny_closes_the_cell(demo):
    policy = PolicySet.from_files(
        {
            **demo.files,
            "policy.csv": demo.files["policy.csv"]
            + "p, billing, customer, read, iban, billing, True, deny, -, no-iban\n",
        }
    )
    cell = build(policy, "customer", "read", "billing").cell("billing", "iban")
    assert cell.effect == "deny" and [r.id for r in cell.denied_by] == ["no-iban"]


def test_a_star_purpose_rule_applies_to_every_purpose(demo):
    # invoice-no-void-draft is written for purpose *: it appears under billing and under care
    for purpose in ("billing", "care"):
        cell = build(demo, "invoice", "void", purpose).cell("billing", "*")
        assert "invoice-no-void-draft" in [r.id for r in cell.rules]


def test_a_type_without_fields_has_only_the_record_column(demo):
    m = build(demo, "admin_ui", "edit_policy", "administration")
    assert m.columns == ("*",)
    assert m.cell("admin", "*").effect == "allow"
    assert m.cell("helpdesk", "*").effect == "deny"


def test_the_record_column_appears_only_when_a_star_rule_reaches_it(demo):
    assert "*" not in columns_of(demo, "invoice", "read", "care")
    assert "*" in columns_of(demo, "invoice", "read", "billing")


def test_a_ui_rule_is_found_in_its_cell(demo):
    rid = ui_rule_id("billing", "customer", "read", "mobile_phone", "billing")
    assert rid == "ui:billing:customer:read:mobile_phone:billing"
    assert (
        ui_rule_id("dpo", "customer", "read", "*", "legal_claims") == "ui:dpo:customer:read:_all:legal_claims"
    )
    policy = PolicySet.from_files(
        {
            **demo.files,
            "policy.csv": demo.files["policy.csv"]
            + f"p, billing, customer, read, mobile_phone, billing, True, allow, full, {rid}\n",
        }
    )
    cell = build(policy, "customer", "read", "billing").cell("billing", "mobile_phone")
    assert cell.effect == "allow" and cell.ui_rule.id == rid and cell.ui_rule.ui


@pytest.mark.parametrize(
    ("rtype", "action", "purpose", "message"),
    [
        ("patient", "read", "care", "unknown resource type 'patient'"),
        ("customer", "delete", "care", "unknown action 'delete' for customer"),
        ("customer", "read", "fun", "unknown purpose 'fun'"),
        ("customer", "read", "*", "unknown purpose '*'"),
    ],
)
def test_unknown_names_are_refused(demo, rtype, action, purpose, message):
    with pytest.raises(Invalid, match=message):
        build(demo, rtype, action, purpose)


def test_inheriting_roles_are_the_role_and_its_heirs(demo):
    assert inheriting_roles(demo, "therapist") == ("therapist", "senior_therapist")
    assert inheriting_roles(demo, "billing") == ("billing",)
