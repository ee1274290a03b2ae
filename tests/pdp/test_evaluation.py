"""POST /access/v1/evaluation: AuthZEN single evaluations on the demo domain."""

from __future__ import annotations

import json

import pytest

from tests.support.api import CUSTOMER, evaluation

URL = "/access/v1/evaluation"


def ask(client, auth, body):
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 200, r.json
    return r.json


@pytest.mark.parametrize(
    ("subject", "field", "purpose", "expected", "effect"),
    [
        ("b.huber", "iban", "billing", True, "allow"),  # billing reads the IBAN
        ("r.schmidt", "iban", "care", False, "mask"),  # reception sees it masked only
        ("r.schmidt", "email", "care", True, "allow"),
        ("r.schmidt", "diagnosis", "care", False, "deny"),  # no clinical basis
        ("t.meyer", "diagnosis", "care", True, "allow"),  # therapist of record
        ("m.rossi", "email", "marketing", True, "allow"),  # opted in
        ("m.rossi", "email", "care", False, "deny"),  # wrong purpose
        ("s.ito", "client_id", "support", True, "allow"),
        ("s.ito", "first_name", "support", False, "deny"),
    ],
)
def test_demo_domain_field_decisions(client, auth, subject, field, purpose, expected, effect):
    body = ask(client, auth, evaluation(subject, field=field, purpose=purpose))
    assert body["decision"] is expected
    assert body["context"]["effect"] == effect


def test_therapist_reads_clinical_fields_only_of_own_clients(client, auth):
    other = dict(CUSTOMER, assigned_therapist_id="someone.else")
    assert ask(client, auth, evaluation("t.meyer", field="diagnosis", props=other))["decision"] is False
    assert ask(client, auth, evaluation("t.meyer", field="diagnosis"))["decision"] is True


def test_marketing_needs_opt_in_and_no_withdrawal(client, auth):
    withdrawn = dict(CUSTOMER, consent_withdrawn_at="2024-01-01")
    no_opt_in = dict(CUSTOMER, marketing_opt_in=False)
    for props in (withdrawn, no_opt_in):
        assert (
            ask(client, auth, evaluation("m.rossi", field="email", purpose="marketing", props=props))[
                "decision"
            ]
            is False
        )


def test_after_retention_only_the_dpo_reads_for_legal_claims(client, auth):
    expired = dict(CUSTOMER, retention_until="2020-01-01")
    assert (
        ask(client, auth, evaluation("b.huber", field="iban", purpose="billing", props=expired))["decision"]
        is False
    )
    assert (
        ask(client, auth, evaluation("d.keller", field="diagnosis", purpose="legal_claims", props=expired))[
            "decision"
        ]
        is True
    )


def test_masked_field_answers_false_and_names_the_mask(client, auth):
    body = ask(client, auth, evaluation("r.schmidt", field="iban"))
    assert body["decision"] is False
    assert body["context"]["effect"] == "mask"
    assert body["context"]["mask"] == "last4"


def test_every_response_carries_a_decision_id(client, auth):
    r = client.post(URL, json=evaluation("b.huber", field="iban", purpose="billing"), headers=auth)
    decision_id = r.json["context"]["decision_id"]
    assert len(decision_id) == 32
    assert r.headers["X-Decision-Id"] == decision_id
    other = client.post(URL, json=evaluation("b.huber", field="iban", purpose="billing"), headers=auth)
    assert other.json["context"]["decision_id"] != decision_id


def test_explanation_only_when_asked(client, auth):
    plain = ask(client, auth, evaluation("b.huber", field="iban", purpose="billing"))
    assert "reason" not in plain["context"] and "matched_rules" not in plain["context"]
    explained = ask(client, auth, evaluation("b.huber", field="iban", purpose="billing", explain=True))
    assert explained["context"]["reason"] == "allowed"
    assert explained["context"]["matched_rules"] == ["billing-iban-read"]
    assert explained["context"]["revision"] == 1


def test_deny_explanation_names_reason_and_rule(client, auth):
    body = ask(client, auth, evaluation("r.schmidt", field="diagnosis", explain=True))
    assert body["context"]["reason"] == "denied_by_rule"
    assert body["context"]["matched_rules"] == ["special-clinical-read"]


def test_deny_never_leaks_attribute_values(client, auth):
    body = ask(client, auth, evaluation("m.rossi", field="diagnosis", purpose="marketing", explain=True))
    text = json.dumps(body)
    for value in ("F41.1", "Ada", "DE89370400440532013000", "anxiety", "t.meyer", "north"):
        assert value not in text


def test_unknown_subject_is_denied_with_its_reason(client, auth):
    body = ask(client, auth, evaluation("nobody", field="email", explain=True))
    assert body["decision"] is False
    assert body["context"]["reason"] == "unknown_subject"


def test_roles_in_the_request_are_ignored(client, auth):
    body = evaluation("r.schmidt", field="diagnosis")
    body["subject"]["properties"] = {"roles": ["therapist", "dpo"], "status": "active"}
    assert ask(client, auth, body)["decision"] is False


@pytest.mark.parametrize(
    ("subject", "reason"), [("k.weber", "account_disabled"), ("l.novak", "account_not_started")]
)
def test_account_status_denies_before_any_rule(client, auth, subject, reason):
    props = dict(CUSTOMER, assigned_therapist_id=subject)
    body = ask(client, auth, evaluation(subject, field="diagnosis", props=props, explain=True))
    assert body["decision"] is False
    assert body["context"]["reason"] == reason


@pytest.mark.parametrize(
    ("field", "purpose", "reason"),
    [
        ("shoe_size", "care", "unknown_field"),
        ("email", "gossip", "unknown_purpose"),
        ("email", None, "purpose_required"),
    ],
)
def test_unknown_field_or_purpose_is_a_deny_with_reason(client, auth, field, purpose, reason):
    body = ask(client, auth, evaluation("r.schmidt", field=field, purpose=purpose, explain=True))
    assert body["decision"] is False
    assert body["context"]["reason"] == reason


def test_record_level_allowed_when_some_field_is_visible(client, auth):
    body = ask(client, auth, evaluation("r.schmidt", explain=True))
    assert body["decision"] is True
    assert "iban" in body["context"]["fields"]["masked"]
    assert "diagnosis" not in body["context"]["fields"]["allowed"]
    other_region = dict(CUSTOMER, clinic_region="south")
    assert ask(client, auth, evaluation("r.schmidt", props=other_region))["decision"] is False


def test_several_fields_are_true_only_if_all_allowed(client, auth):
    both = ask(client, auth, evaluation("b.huber", fields=["iban", "last_name"], purpose="billing"))
    assert both["decision"] is True
    mixed = ask(client, auth, evaluation("r.schmidt", fields=["email", "iban", "diagnosis"]))
    assert mixed["decision"] is False
    assert mixed["context"]["effects"] == {"email": "allow", "iban": "mask", "diagnosis": "deny"}


def test_request_id_is_echoed(client, auth):
    r = client.post(URL, json=evaluation("b.huber"), headers={**auth, "X-Request-ID": "req-42"})
    assert r.headers["X-Request-ID"] == "req-42"


def test_other_resource_types_of_the_catalogue_work(client, auth):
    invoice = {"created_by": "b.huber", "status": "issued", "clinic_region": "north"}
    body = ask(
        client, auth, evaluation("b.huber", action="void", rtype="invoice", purpose="billing", props=invoice)
    )
    assert body["decision"] is True


def test_a_missing_region_on_both_sides_never_grants_access(loaded_db, client, auth):
    """The outside review's fail-open: an account without a region reading a record whose
    application omitted clinic_region matched the region rules ("" == "")."""
    from accessd import accounts

    with loaded_db.session() as s:
        for sid, role in (("no-region-reception", "reception"), ("no-region-senior", "senior_therapist")):
            accounts.grant(s, accounts.upsert(s, subject_id=sid, username=sid), role)
    app_services = client.application.extensions["accessd"]
    app_services.feed.catch_up()
    record = {k: v for k, v in CUSTOMER.items() if k != "clinic_region"}
    for sid, field, action in [
        ("no-region-reception", "first_name", "read"),
        ("no-region-reception", "date_of_birth", "read"),
        ("no-region-reception", "email", "read"),
        ("no-region-reception", "email", "update"),
        ("no-region-senior", "diagnosis", "read"),
        ("no-region-senior", "session_notes", "read"),
    ]:
        body = ask(client, auth, evaluation(sid, action=action, field=field, props=record, explain=True))
        assert body["decision"] is False and body["context"]["effect"] == "deny", (sid, field, action)
