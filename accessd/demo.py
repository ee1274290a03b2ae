"""Demo data for the therapy practice: the policy, employees with roles, a token, an administrator."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd import accounts, clock
from accessd.console import admins
from accessd.models import AdminUser, ApiClient
from accessd.pdp import revisions, tokens

# subject_id, display name, department, region, roles, status, start offset days, end offset days
EMPLOYEES = [
    ("t.meyer", "Tanja Meyer", "Therapy", "north", ["therapist"], "active", None, None),
    ("j.okafor", "James Okafor", "Therapy", "south", ["senior_therapist"], "active", None, None),
    ("l.novak", "Lena Novak", "Therapy", "north", ["therapist"], "active", 14, None),  # starts in 2 weeks
    ("r.schmidt", "Rita Schmidt", "Front desk", "north", ["reception"], "active", None, None),
    ("p.garcia", "Pablo Garcia", "Front desk", "south", ["reception"], "active", None, None),
    ("b.huber", "Bernd Huber", "Accounts", "north", ["billing"], "active", None, None),
    ("m.rossi", "Marta Rossi", "Marketing", "north", ["marketing"], "active", None, None),
    ("d.keller", "Dana Keller", "Legal", "north", ["dpo"], "active", None, None),
    ("s.ito", "Sam Ito", "IT", "north", ["it_support"], "active", None, None),
    ("k.weber", "Karl Weber", "Therapy", "north", ["therapist"], "disabled", None, -30),  # has left
    ("a.lind", "Anna Lind", "Front desk", "south", ["reception"], "active", None, 21),  # leaves in 3 weeks
]


# a client record of the demo domain (north region, assigned to t.meyer, opted in to marketing)
CLIENT_RECORD = {
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


def load_employees(session: Session, actor: str) -> list[str]:
    """Create or update the demo employees with their roles (idempotent); return their subject ids.
    Start and end dates are relative to the clock's today."""
    today = clock.today()
    for n, (sid, name, dept, region, roles, status, start, end) in enumerate(EMPLOYEES, start=1):
        acc = accounts.upsert(
            session,
            subject_id=sid,
            username=sid,
            employee_number=f"E{1000 + n}",
            display_name=name,
            email=f"{sid}@practice.example",
            department=dept,
            region=region,
            status=status,
            status_reason="left the practice" if status == "disabled" else None,
            start_date=today + dt.timedelta(days=start) if start is not None else None,
            end_date=today + dt.timedelta(days=end) if end is not None else None,
        )
        for role in roles:
            accounts.grant(session, acc, role, source="manual", actor=actor)
    return [e[0] for e in EMPLOYEES]


def load(session: Session, policy_dir: Path, actor: str, admin_password: str | None = None) -> list[str]:
    """Load demo data (idempotent, except that each run issues a new demo-crm API token and
    revokes the previous one); return lines telling how to reach the service."""
    lines = []
    if revisions.current(session) is None:
        rev, _ = revisions.load_dir(session, policy_dir, actor)
        lines.append(f"policy revision {rev.id} loaded from {policy_dir}")
    lines.append(f"{len(load_employees(session, actor))} demo employees loaded")

    # a token is shown only once, so every run issues a fresh one (the previous stops working)
    if session.scalar(select(ApiClient).where(ApiClient.name == "demo-crm")) is None:
        token = tokens.create(session, "demo-crm", "decide")
        lines.append(f"API token (scope decide, client demo-crm): {token}")
    else:
        token = tokens.rotate(session, "demo-crm")
        lines.append(f"API token (scope decide, client demo-crm, the previous one revoked): {token}")

    if session.scalar(select(AdminUser).where(AdminUser.username == "admin")) is None:
        password = admin_password or secrets.token_urlsafe(16)
        admins.create(
            session, username="admin", role="admin", password=password, display_name="Demo Admin", actor=actor
        )
        lines.append(f"admin login: admin / {password}")
    else:
        lines.append("admin login: user 'admin' exists (password unchanged)")
    return lines
