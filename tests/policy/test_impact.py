"""The people impact of a policy change: per group of people, in sentences, with exact counts."""

import random
import time
from pathlib import Path

import pytest

from accessd.policy.impact import people_impact
from accessd.policy.policyset import PolicySet, load_policy_dir

POLICIES = Path(__file__).resolve().parents[2] / "policies"

# hand-made population: 12 billing clerks (3 of them also in marketing), 40 therapists, 2 senior
# therapists, 7 receptionists, 1 person without roles
PEOPLE = {
    frozenset({"billing"}): 9,
    frozenset({"billing", "marketing"}): 3,
    frozenset({"therapist"}): 40,
    frozenset({"senior_therapist"}): 2,
    frozenset({"reception"}): 7,
    frozenset(): 1,
}


@pytest.fixture(scope="module")
def demo():
    return load_policy_dir(POLICIES)


def _edit(policy: PolicySet, add: str = "", drop: str = "", catalogue: tuple[str, str] | None = None):
    csv = "".join(
        line + "\n" for line in policy.files["policy.csv"].splitlines() if not (drop and line.endswith(drop))
    )
    files = {**policy.files, "policy.csv": csv + add}
    if catalogue:
        files["catalogue.yaml"] = files["catalogue.yaml"].replace(*catalogue)
    return PolicySet.from_files(files)


def test_a_gain_names_the_role_and_how_many_hold_it(demo):
    new = _edit(demo, "p, billing, customer, read, mobile_phone, billing, True, allow, full, x\n")
    impact = people_impact(demo, new, PEOPLE)
    assert impact.format() == "12 people in billing gain read of mobile_phone for purpose billing"
    assert (impact.people, impact.population) == (12, 62)
    [line] = impact.lines
    assert (line.kind, line.roles, line.fields) == ("gain", ("billing",), ("mobile_phone",))
    assert line.after.level == "allow" and line.after.unless  # retention still applies


def test_names_are_carried_when_given(demo):
    new = _edit(demo, "p, billing, customer, read, mobile_phone, billing, True, allow, full, x\n")
    impact = people_impact(demo, new, {frozenset({"billing"}): ["Bernd Huber (b.huber)"]})
    assert impact.format() == "1 person in billing gains read of mobile_phone for purpose billing"
    assert impact.lines[0].names == ("Bernd Huber (b.huber)",)


def test_a_mask_for_a_role_without_access_is_a_masked_gain(demo):
    new = _edit(demo, "p, marketing, customer, read, iban, marketing, True, allow, mask, x\n")
    assert people_impact(demo, new, PEOPLE).format() == (
        "3 people in marketing gain masked read of iban for purpose marketing"
    )


def test_allow_over_a_conditional_mask_widens_and_back_narrows(demo):
    new = _edit(demo, "p, reception, customer, read, iban, care, True, allow, full, x\n")
    assert people_impact(demo, new, PEOPLE).format() == (
        "7 people in reception: read of iban for purpose care widens to allow"
    )
    assert people_impact(new, demo, PEOPLE).format() == (
        "7 people in reception: read of iban for purpose care narrows to mask under conditions"
    )


def test_a_mask_instead_of_full_access_narrows_to_mask(demo):
    new = _edit(
        demo, "p, billing, customer, read, iban, billing, True, allow, mask, x\n", drop="billing-iban-read"
    )
    assert people_impact(demo, new, PEOPLE).format() == (
        "12 people in billing: read of iban for purpose billing narrows to mask"
    )


def test_a_deny_reaches_the_inheriting_role_too(demo):
    new = _edit(demo, "p, therapist, customer, read, client_id, care, True, deny, -, x\n")
    assert people_impact(demo, new, PEOPLE).format().splitlines() == [
        "2 people in senior_therapist lose read of client_id for purpose care",
        "40 people in therapist lose read of client_id for purpose care",
    ]


def test_a_change_that_comes_from_a_combination_of_roles_names_the_combination(demo):
    # a deny on marketing takes away what billing grants: only people holding both lose it
    new = _edit(demo, "p, marketing, customer, read, iban, billing, True, deny, -, x\n")
    assert people_impact(demo, new, PEOPLE).format() == (
        "3 people in billing and marketing lose read of iban for purpose billing"
    )


def test_a_rule_for_everyone_counts_people_without_roles(demo):
    new = _edit(demo, "p, *, customer, read, client_id, support, True, allow, full, x\n")
    lines = people_impact(demo, new, PEOPLE).format().splitlines()
    assert "1 person without a role gains read of client_id for purpose support" in lines
    assert "40 people in therapist gain read of client_id for purpose support" in lines


def test_lost_fields_of_one_group_make_one_line(demo):
    new = _edit(demo, drop="therapist-contact-own")
    assert (
        "40 people in therapist lose read of email, mobile_phone for purpose care"
        in people_impact(demo, new, PEOPLE).format().splitlines()
    )


def test_renaming_a_rule_or_reordering_changes_nobody(demo):
    line = "p, billing, customer, read, iban, billing, True, allow, full, billing-iban-read"
    renamed = _edit(
        demo, line.replace("billing-iban-read", "iban-for-billing") + "\n", drop="billing-iban-read"
    )
    impact = people_impact(demo, renamed, PEOPLE)
    assert impact.empty and impact.people == 0
    assert impact.format() == "no change for any active person"


def test_a_catalogue_change_compares_every_cell(demo):
    # a new role inheriting billing: nobody holds it, so nobody changes; the population still counts
    new = _edit(
        demo,
        "g, billing_lead, billing\n",
        catalogue=(
            "  billing: Invoices clients and insurers.\n",
            "  billing: Invoices clients and insurers.\n  billing_lead: Leads billing.\n",
        ),
    )
    assert people_impact(demo, new, PEOPLE).empty
    people = {**PEOPLE, frozenset({"billing_lead"}): 2}
    impact = people_impact(demo, new, people)
    # several types change: each line names its type
    assert impact.format().splitlines()[0] == (
        "2 people in billing_lead gain read of client_id, first_name, last_name, date_of_birth, street, "
        "postal_code, city, iban, insurer_member_no on customer for purpose billing"
    )


def test_ten_thousand_people_take_well_under_a_second(demo):
    rnd = random.Random(7)
    roles = list(demo.catalogue.roles)
    people: dict[frozenset, int] = {}
    for _ in range(10_000):
        rs = frozenset(rnd.sample(roles, rnd.choice((1, 1, 1, 2, 3))))
        people[rs] = people.get(rs, 0) + 1
    edit = _edit(demo, "p, billing, customer, read, mobile_phone, billing, True, allow, full, x\n")
    everything = _edit(demo, catalogue=("  it_support:", "  newcomer: New.\n  it_support:"))
    for new in (edit, everything):
        start = time.perf_counter()
        impact = people_impact(demo, new, people)
        assert time.perf_counter() - start < 0.5
        assert impact.population == 10_000
    billing = sum(n for rs, n in people.items() if "billing" in rs)
    assert people_impact(demo, edit, people).people == billing
