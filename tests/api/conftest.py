"""Fixtures for the decision API: demo employees, API tokens, and a client that flushes the
decision log at teardown. Every test using them runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from api_helpers import EMPLOYEES

from accessd import accounts
from accessd.pdp import tokens


@pytest.fixture
def people(loaded_db):
    today = dt.date.today()
    with loaded_db.session() as s:
        for n, (sid, region, roles, status, start, end) in enumerate(EMPLOYEES, start=1):
            acc = accounts.upsert(
                s,
                subject_id=sid,
                username=sid,
                employee_number=f"E{n}",
                display_name=sid,
                region=region,
                status=status,
                start_date=today + dt.timedelta(days=start) if start is not None else None,
                end_date=today + dt.timedelta(days=end) if end is not None else None,
            )
            for role in roles:
                accounts.grant(s, acc, role)
    return [e[0] for e in EMPLOYEES]


@pytest.fixture
def token(loaded_db, people):
    """A bearer token with scope decide (client name 'crm')."""
    with loaded_db.session() as s:
        return tokens.create(s, "crm", "decide")


@pytest.fixture
def admin_token(loaded_db):
    with loaded_db.session() as s:
        return tokens.create(s, "auditor", "admin")


@pytest.fixture
def hr_token(loaded_db):
    with loaded_db.session() as s:
        return tokens.create(s, "hr-system", "hr")


@pytest.fixture
def client(app):
    """The test client; the decision log is flushed and its thread stopped at teardown."""
    yield app.test_client()
    app.extensions["accessd"].close()


@pytest.fixture
def auth(token):
    return {"Authorization": f"Bearer {token}"}
