"""POST /access/v1/fields: per-record field masks, and the records masked server-side."""

from __future__ import annotations

from tests.support.api import CUSTOMER

URL = "/access/v1/fields"


def page(subject, records, purpose="care", return_records=False, explain=False):
    return {
        "subject": {"type": "user", "id": subject},
        "action": {"name": "read"},
        "context": {"purpose": purpose, "explain": explain},
        "records": [{"type": "customer", "id": str(i), "properties": p} for i, p in enumerate(records)],
        "options": {"return_records": return_records},
    }


def test_reception_gets_masked_ibans_and_no_clinical_fields(client, auth):
    r = client.post(URL, json=page("r.schmidt", [CUSTOMER], return_records=True), headers=auth)
    assert r.status_code == 200
    result = r.json["results"][0]
    assert result["masked"] == ["iban"]
    assert "diagnosis" in result["denied"] and "email" in result["allowed"]
    record = result["record"]
    assert record["iban"].endswith("3000") and "DE89" not in record["iban"]
    assert "diagnosis" not in record and "session_notes" not in record
    assert record["email"] == CUSTOMER["email"]


def test_each_record_is_decided_on_its_own_attributes(client, auth):
    mine = dict(CUSTOMER)
    other = dict(CUSTOMER, assigned_therapist_id="j.okafor")
    r = client.post(URL, json=page("t.meyer", [mine, other]), headers=auth)
    first, second = r.json["results"]
    assert "diagnosis" in first["allowed"]
    assert "diagnosis" in second["denied"]


def test_fifty_records_in_one_call(client, auth):
    records = [dict(CUSTOMER, client_id=f"C-{i}") for i in range(50)]
    r = client.post(URL, json=page("b.huber", records, purpose="billing", return_records=True), headers=auth)
    assert r.status_code == 200
    assert len(r.json["results"]) == 50
    assert all(res["record"]["iban"] == CUSTOMER["iban"] for res in r.json["results"])


def test_unknown_subject_sees_nothing(client, auth):
    r = client.post(URL, json=page("nobody", [CUSTOMER], return_records=True, explain=True), headers=auth)
    result = r.json["results"][0]
    assert result["allowed"] == [] and result["masked"] == [] and result["record"] == {}
    assert result["reason"] == "unknown_subject"


def test_properties_outside_the_catalogue_are_never_returned(client, auth):
    rec = dict(CUSTOMER, secret_note="do not show")
    r = client.post(URL, json=page("b.huber", [rec], purpose="billing", return_records=True), headers=auth)
    assert "secret_note" not in r.json["results"][0]["record"]


def test_too_many_records_is_413(app, client, auth):
    limit = app.extensions["accessd"].settings.api.max_records
    r = client.post(URL, json=page("r.schmidt", [{}] * (limit + 1)), headers=auth)
    assert r.status_code == 413
    assert r.json["pointer"] == "/records"


def test_a_property_of_the_wrong_type_names_the_record(client, auth):
    bad = dict(CUSTOMER, retention_until="next tuesday")
    r = client.post(URL, json=page("b.huber", [CUSTOMER, bad], purpose="billing"), headers=auth)
    assert r.status_code == 400
    assert r.json["pointer"] == "/records/1/properties/retention_until"


def test_an_impossible_date_in_date_shape_names_the_record_and_an_empty_one_is_no_date(client, auth):
    impossible = dict(CUSTOMER, retention_until="2026-02-30")
    r = client.post(URL, json=page("b.huber", [CUSTOMER, impossible], purpose="billing"), headers=auth)
    assert r.status_code == 400
    assert r.json["pointer"] == "/records/1/properties/retention_until"
    assert "2026-02-30" in r.json["message"]

    open_ended = dict(CUSTOMER, retention_until="", therapy_end_date="")
    r = client.post(URL, json=page("b.huber", [open_ended], purpose="billing"), headers=auth)
    assert r.status_code == 200
