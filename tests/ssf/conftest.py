"""Fixtures for the Shared Signals tests: receivers (API clients with scope ssf), the service
with fast retries, a push receiver, and the lifecycle routines that trigger events."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from accessd.lifecycle.offboarding import offboard, reenable
from accessd.models import Account
from accessd.pdp import tokens
from accessd.ssf import events as ev
from tests.support.set_receiver import SetReceiver

SESSION_REVOKED = ev.EVENT_TYPES["session-revoked"]
ACCOUNT_DISABLED = ev.EVENT_TYPES["account-disabled"]
ACCOUNT_ENABLED = ev.EVENT_TYPES["account-enabled"]
CLAIMS_CHANGE = ev.EVENT_TYPES["token-claims-change"]
ISSUER = "http://127.0.0.1:8000"  # the default public_url (the tests' apps set none)

#: settings that keep the tests quick: retries after 50 ms, the outbox looked at every 100 ms
FAST = {
    "retry_first_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "max_attempts": 4,
    "outbox_poll_seconds": 0.1,
    "poll_wait_seconds": 0.5,
    "timeout_seconds": 2,
}


class Api:
    """The test client with a receiver's bearer token."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):
        def call(path, **kwargs):
            return getattr(self.client, method)(
                path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
            )

        return call

    def push_stream(self, url: str, events=ev.SUPPORTED, **members) -> dict:
        delivery = {"method": ev.PUSH, "endpoint_url": url}
        if "authorization_header" in members:
            delivery["authorization_header"] = members.pop("authorization_header")
        r = self.post(
            "/ssf/streams", json={"delivery": delivery, "events_requested": list(events), **members}
        )
        assert r.status_code == 201, r.get_json()
        return r.get_json()


@pytest.fixture
def ssf_app(make_app, employees):
    return make_app(ssf=FAST)


@pytest.fixture
def api(ssf_app, loaded_db):
    with loaded_db.session() as s:
        token = tokens.create(s, "receiver-a", "ssf")
    return Api(ssf_app.test_client(), token)


@pytest.fixture
def other_api(ssf_app, loaded_db):
    with loaded_db.session() as s:
        token = tokens.create(s, "receiver-b", "ssf")
    return Api(ssf_app.test_client(), token)


@pytest.fixture
def receiver():
    with SetReceiver() as r:
        yield r


@pytest.fixture
def ssf_cli(loaded_db):
    """Run an `accessd` command in-process against the test database: ``ssf_cli("events")``."""
    from accessd.cli import main

    def run(*args, input=None):
        env = {"ACCESSD_DATABASE_URL": loaded_db.url}
        return CliRunner(env=env).invoke(main, list(args), input=input, catch_exceptions=False)

    return run


def leave(db, subject_id: str, reason: str = "left the practice") -> bool:
    """Offboard ``subject_id`` now through the one routine (as `accessd offboard` does)."""
    with db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == subject_id))
        return offboard(s, account, reason=reason, source="cli", actor="test")


def come_back(db, subject_id: str, reason: str = "rehired") -> bool:
    with db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == subject_id))
        return reenable(s, account, reason=reason, source="cli", actor="test")
