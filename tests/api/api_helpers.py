"""Shared request builders and demo data for the API tests."""

from __future__ import annotations

# subject id, region, roles, status, start offset days, end offset days
EMPLOYEES = [
    ("t.meyer", "north", ["therapist"], "active", None, None),
    ("j.okafor", "south", ["senior_therapist"], "active", None, None),
    ("l.novak", "north", ["therapist"], "active", 14, None),  # starts in two weeks
    ("r.schmidt", "north", ["reception"], "active", None, None),
    ("b.huber", "north", ["billing"], "active", None, None),
    ("m.rossi", "north", ["marketing"], "active", None, None),
    ("d.keller", "north", ["dpo"], "active", None, None),
    ("s.ito", "north", ["it_support"], "active", None, None),
    ("k.weber", "north", ["therapist"], "disabled", None, -30),  # has left
]

# a client record of the demo domain (north region, assigned to t.meyer, opted in)
CUSTOMER = {
    "client_id": "C-123",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "date_of_birth": "1985-12-10",
    "email": "ada@example.org",
    "mobile_phone": "+49 170 5550123",
    "street": "Hauptstr. 1",
    "postal_code": "10115",
    "city": "Berlin",
    "iban": "DE89370400440532013000",
    "insurer_member_no": "A123456789",
    "presenting_issue": "anxiety",
    "diagnosis": "F41.1",
    "medication": "none",
    "session_notes": "first session went well",
    "marketing_opt_in": True,
    "consent_withdrawn_at": "",
    "assigned_therapist_id": "t.meyer",
    "clinic_region": "north",
    "therapy_end_date": "",
    "retention_until": "",
    "legal_hold": False,
}


def evaluation(
    subject,
    action="read",
    field=None,
    purpose="care",
    props=None,
    rid="123",
    rtype="customer",
    explain=False,
    fields=None,
):
    """An AuthZEN evaluation request body."""
    action_obj = {"name": action}
    if field is not None:
        action_obj["properties"] = {"field": field}
    if fields is not None:
        action_obj["properties"] = {"fields": fields}
    body = {
        "subject": {"type": "user", "id": subject},
        "resource": {"type": rtype, "id": rid, "properties": dict(CUSTOMER if props is None else props)},
        "action": action_obj,
        "context": {"purpose": purpose},
    }
    if explain:
        body["context"]["explain"] = True
    return body


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
