"""Policy diffs tell a reviewer which roles gain or lose which fields, and how many people."""

from pathlib import Path

import pytest

from accessd.policy.diff import diff_policies
from accessd.policy.policyset import PolicySet, load_policy_dir

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def demo():
    return load_policy_dir(POLICIES)


def _with_rules(policy: PolicySet, add: str = "", drop: str = "") -> PolicySet:
    lines = [line for line in policy.files["policy.csv"].splitlines() if not (drop and line.endswith(drop))]
    return PolicySet.from_files({**policy.files, "policy.csv": "\n".join(lines) + "\n" + add + "\n"})


def test_identical_policies_have_an_empty_diff(demo):
    d = diff_policies(demo, demo, {"billing": 3})
    assert d.empty and "no change" in d.format()


def test_a_new_rule_shows_the_gain_with_the_number_of_holders(demo):
    new = _with_rules(demo, "p, billing, customer, read, email, billing, True, allow, full, billing-email")
    d = diff_policies(demo, new, {"billing": 3})
    assert d.added_rules == ["billing-email"]
    [change] = d.changes
    assert (change.role, change.holders, change.rtype, change.action, change.purpose) == (
        "billing",
        3,
        "customer",
        "read",
        "billing",
    )
    assert [(f.field, f.kind, str(f.after)) for f in change.fields] == [
        ("email", "gains", "allow unless retention-expired-read")
    ]
    assert "billing (3 people):" in d.format() and "gains email: none -> allow unless" in d.format()


def test_inherited_changes_are_reported_for_the_inheriting_role(demo):
    new = _with_rules(demo, drop="therapist-contact-own")
    d = diff_policies(demo, new, {"therapist": 5, "senior_therapist": 1})
    roles = {c.role for c in d.changes}
    assert roles == {"therapist", "senior_therapist"}
    lost = {f.field for c in d.changes for f in c.fields if f.kind == "loses"}
    assert lost == {"email", "mobile_phone"}
    assert "senior_therapist (1 person):" in d.format()


def test_conditional_and_masked_access_are_distinguished(demo):
    new = _with_rules(demo, drop="reception-iban-masked")
    d = diff_policies(demo, new, {})
    [change] = d.changes
    [fc] = change.fields
    assert fc.field == "iban" and fc.kind == "loses"
    assert str(fc.before) == "mask if reception-iban-masked unless retention-expired-read"


def test_a_new_deny_narrows_access(demo):
    new = _with_rules(demo, "p, *, customer, read, iban, billing, r.obj.legal_hold, deny, -, no-iban-on-hold")
    d = diff_policies(demo, new, {})
    fc = next(f for c in d.changes if c.role == "billing" for f in c.fields if f.field == "iban")
    assert fc.kind == "narrows" and str(fc.after) == "allow unless retention-expired-read/no-iban-on-hold"


def test_first_revision_lists_everything_as_gained(demo):
    d = diff_policies(None, demo, {"dpo": 1})
    assert d.added_roles == list(demo.catalogue.roles)
    dpo = [c for c in d.changes if c.role == "dpo"]
    assert any(f.field == "*" for c in dpo for f in c.fields)
    assert all(f.kind == "gains" for c in d.changes for f in c.fields)
