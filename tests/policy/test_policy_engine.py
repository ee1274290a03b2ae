"""The engine's own behaviour: pre-checks, record-level rules, coercion, failing conditions."""

from datetime import date
from pathlib import Path

import pytest

from accessd.errors import Invalid
from accessd.policy.catalogue import coerce
from accessd.policy.conditions import casbin_rewrite
from accessd.policy.engine import REASONS, Engine, Subject
from accessd.policy.masks import mask_value
from accessd.policy.policyset import PolicySet, load_policy_dir
from accessd.policy.reference import casbin as casbin_ref

POLICIES = Path(__file__).resolve().parents[2] / "policies"
TODAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def demo():
    return load_policy_dir(POLICIES)


@pytest.fixture(scope="module")
def engine(demo):
    return Engine(demo, revision=7)


ANNA = Subject("anna", frozenset({"therapist"}), {"region": "north"})
OWN = {"assigned_therapist_id": "anna", "clinic_region": "north"}


def test_decision_carries_matched_rules_and_revision(engine):
    d = engine.decide(ANNA, "customer", "read", "diagnosis", "care", OWN, TODAY)
    assert (d.effect, d.reason, d.matched_rules, d.revision) == (
        "allow",
        "allowed",
        ("therapist-clinical-own",),
        7,
    )
    assert d.allowed


def test_all_matching_deny_rules_are_reported(engine):
    mia = Subject("mia", frozenset({"marketing"}))
    props = {**OWN, "retention_until": "2020-01-01", "consent_withdrawn_at": "2019-01-01"}
    d = engine.decide(mia, "customer", "read", "diagnosis", "marketing", props, TODAY)
    assert d.effect == "deny" and d.reason == "denied_by_rule"
    assert set(d.matched_rules) == {
        "retention-expired-read",
        "special-clinical-read",
        "marketing-consent-withdrawn",
    }
    assert not d.allowed


def test_status_is_checked_before_rules_even_for_an_unknown_type(engine):
    gone = Subject("anna", frozenset({"therapist"}), status="disabled")
    assert engine.decide(gone, "horse", "read", None, "care", {}, TODAY).reason == "account_disabled"


def test_every_reason_code_is_documented():
    text = (POLICIES.parent / "docs" / "policy.md").read_text()
    for reason in REASONS:
        assert f"`{reason}`" in text, reason


def test_record_level_decision_uses_only_star_rules(engine):
    # anna may read every clinical field of her client, but no rule covers the record as a whole
    assert engine.decide(ANNA, "customer", "read", None, "care", OWN, TODAY).reason == "no_matching_rule"
    dora = Subject("dora", frozenset({"dpo"}))
    d = engine.decide(dora, "customer", "read", None, "legal_claims", {"legal_hold": True}, TODAY)
    assert d.matched_rules == ("dpo-legal-claims",)


def test_properties_are_coerced_and_defaulted(engine):
    dora = Subject("dora", frozenset({"dpo"}))
    for hold in (True, "true", "1", 1, "yes"):
        assert engine.decide(
            dora, "customer", "read", "diagnosis", "legal_claims", {"legal_hold": hold}, TODAY
        ).allowed
    for hold in (False, "false", 0, None, ""):
        assert not engine.decide(
            dora, "customer", "read", "diagnosis", "legal_claims", {"legal_hold": hold}, TODAY
        ).allowed
    expired = {"retention_until": date(2025, 5, 31)}
    assert engine.decide(dora, "customer", "read", "diagnosis", "legal_claims", expired, TODAY).allowed
    assert engine.decide(
        dora,
        "customer",
        "read",
        "diagnosis",
        "legal_claims",
        {"retention_until": "2025-05-31T10:00:00"},
        "2025-06-01",
    ).allowed


def test_a_property_of_the_wrong_type_is_invalid_input(engine):
    with pytest.raises(Invalid) as err:
        engine.decide(ANNA, "customer", "read", "diagnosis", "care", {"retention_until": "soon"}, TODAY)
    assert err.value.pointer == "/resource/properties/retention_until"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "1e999", "x"])
def test_an_int_property_that_is_no_integer_is_a_value_error_never_a_crash(value):

    with pytest.raises(ValueError, match="expected an integer"):
        coerce("int", value)


def test_subjects_with_the_same_roles_share_a_compiled_table(engine):
    other = Subject("zoe", frozenset({"therapist"}), {"region": "south"})
    assert engine.table_for(ANNA) is engine.table_for(other)
    assert engine.table_for(ANNA) is not engine.table_for(Subject("x", frozenset({"billing"})))


def test_mask_value_styles():
    assert mask_value("DE89370400440532013000", "last4") == "•" * 18 + "3000"
    assert mask_value("secret", "redact") == "•••"
    assert mask_value(None, "last4") is None


SMALL_CAT = """
purposes: {care: c}
roles: {clerk: c}
subject_attributes: {region: {type: string}}
resource_types:
  doc:
    actions: [read]
    properties: {region: {type: string}, rank: {type: int}}
    fields: {a: {sensitivity: internal}, b: {sensitivity: internal}}
"""


def _small(rows: str) -> Engine:
    return Engine(PolicySet.from_files({"catalogue.yaml": SMALL_CAT, "policy.csv": rows}))


def _break(engine: Engine, text: str) -> None:
    idx = engine.compiled.condition_texts.index(text)

    def boom(*args):
        raise RuntimeError("broken")

    engine._conds[idx] = boom


def test_a_failing_allow_condition_does_not_match():
    e = _small("p, clerk, doc, read, *, care, r.obj.rank > 1, allow, full, a1\n")
    _break(e, "r.obj.rank > 1")
    d = e.decide(Subject("s", frozenset({"clerk"})), "doc", "read", "a", "care", {"rank": 5}, TODAY)
    assert (d.effect, d.reason) == ("deny", "condition_error")


def test_a_failing_deny_condition_matches_and_fails_closed():
    e = _small(
        "p, clerk, doc, read, *, care, True, allow, full, a1\n"
        "p, *, doc, read, b, care, r.obj.rank > 1, deny, -, d1\n"
    )
    _break(e, "r.obj.rank > 1")
    s = Subject("s", frozenset({"clerk"}))
    d = e.decide(s, "doc", "read", "b", "care", {"rank": 0}, TODAY)
    assert (d.effect, d.reason, d.matched_rules) == ("deny", "condition_error", ("d1",))
    assert e.decide(s, "doc", "read", "a", "care", {"rank": 0}, TODAY).effect == "allow"
    m = e.mask(s, "doc", "read", "care", [{"rank": 0}], TODAY)[0]
    assert m.allowed == ("a",) and m.denied == ("b",)


def test_conditions_are_rewritten_exactly_like_casbin():
    assert casbin_rewrite('!g(r.sub.id, "x") && r.obj.a != "b" || r.obj.c') == (
        'not g(r_sub.id, "x") and r_obj.a != "b" or r_obj.c'
    )


def test_string_constants_are_rewritten_like_casbin_does():
    # casbin turns "a&&b" inside a quoted string into "aandb"; so must the engine.
    rows = 'p, clerk, doc, read, a, care, r.obj.region == "x&&y", allow, full, a1\n'
    e = _small(rows)
    enforcer = casbin_ref.build_enforcer(e.policy, [Subject("s", frozenset({"clerk"}))])
    s = Subject("s", frozenset({"clerk"}))
    for region in ("x&&y", "xandy", "x"):
        req = casbin_ref.request(e, s, "doc", "read", "a", "care", {"region": region}, TODAY)
        assert (
            casbin_ref.three_way(enforcer, req)
            == e.decide(s, "doc", "read", "a", "care", {"region": region}, TODAY).effect
        )
    assert e.decide(s, "doc", "read", "a", "care", {"region": "xandy"}, TODAY).effect == "allow"


def test_field_dependent_conditions_are_evaluated_per_field_in_masks():
    e = _small('p, clerk, doc, read, *, care, r.field == "a" || r.obj.rank > 3, allow, full, a1\n')
    s = Subject("s", frozenset({"clerk"}))
    m = e.mask(s, "doc", "read", "care", [{"rank": 0}, {"rank": 9}], TODAY)
    assert (m[0].allowed, m[0].denied) == (("a",), ("b",))
    assert m[1].allowed == ("a", "b")


def test_whole_record_reason_when_nothing_is_visible(engine):
    rita = Subject("rita", frozenset({"reception"}), {"region": "north"})
    m = engine.mask(rita, "customer", "read", "care", [{**OWN, "retention_until": "2001-01-01"}, OWN], TODAY)
    assert m[0].reason == "denied_by_rule" and not m[0].allowed
    assert m[1].reason is None and "email" in m[1].allowed and m[1].masked == ("iban",)
    gone = engine.mask(
        Subject("rita", frozenset({"reception"}), status="pending"), "customer", "read", "care", [OWN], TODAY
    )
    assert gone[0].reason == "account_pending" and "client_id" in gone[0].denied
