"""Fixtures for the decision API (a pytest plugin named in tests/conftest.py): demo employees and
API tokens. Every test using them runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from accessd import demo
from accessd.pdp import tokens


@pytest.fixture
def employees(loaded_db):
    """The demo employees (accessd.demo.EMPLOYEES) with their roles; returns their subject ids."""
    with loaded_db.session() as s:
        return demo.load_employees(s, "test")


@pytest.fixture
def token(loaded_db, employees):
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
def auth(token):
    return {"Authorization": f"Bearer {token}"}
