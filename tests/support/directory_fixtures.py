"""Fixtures for lifecycle tests (a pytest plugin named in tests/conftest.py): one real OpenLDAP
server per session, a fresh subtree per test.

``ldap_server`` starts Debian's slapd (via the PyPI ``slapd`` helper) once. ``people`` creates
``ou=t<N>`` with ``ou=people`` and ``ou=groups`` below it and gives helpers to add, change,
lock, rename and delete entries; tests never see each other's entries. ``settings`` points
accessd at that subtree and at the test database; ``cli_env`` does the same for `accessd`
commands (``cli`` runs one in-process, real processes get ``cli_env`` as their environment).
"""

from __future__ import annotations

import json

import pytest

from accessd.lifecycle.sync import run_sync
from tests.support.ldap import DEFAULT_POLICY, SERVICE_PASSWORD, People, TestDirectory
from tests.support.lifecycle import make_settings


@pytest.fixture(scope="session")
def ldap_server():
    server = TestDirectory()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def people(ldap_server):
    p = People(ldap_server)
    yield p
    p.conn.unbind()


@pytest.fixture
def settings(ldap_server, people, db):
    return make_settings(ldap_server, people, db.url)


@pytest.fixture
def sync(db, settings):
    """Run a sync against the test subtree: ``sync()``, ``sync("incremental")``, ``sync(dry_run=True)``."""

    def run(kind: str = "full", dry_run: bool = False, **kw):
        return run_sync(db, kw.pop("settings", settings), kind=kind, dry_run=dry_run, actor="test", **kw)

    return run


@pytest.fixture
def cli_env(db, people, ldap_server) -> dict[str, str]:
    return {
        "ACCESSD_DATABASE_URL": db.url,
        "ACCESSD_LDAP_URL": ldap_server.url(),
        "ACCESSD_LDAP_BIND_DN": ldap_server.bind_dn("sync"),
        "ACCESSD_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "ACCESSD_LDAP_USER_BASE": people.people,
        "ACCESSD_LDAP_GROUP_BASE": people.groups,
        "ACCESSD_LDAP_PASSWORD_POLICY_DN": DEFAULT_POLICY,
        "ACCESSD_LDAP_GROUP_ROLES": json.dumps({"billing": ["billing"]}),
        "ACCESSD_SYNC_PROGRESS_EVERY": "2",
    }


@pytest.fixture
def cli(cli_env):
    """Run an `accessd` command in-process: ``cli("sync", "--dry-run")``."""
    from click.testing import CliRunner

    from accessd.cli import main

    def run(*args):
        return CliRunner(env=cli_env).invoke(main, list(args), catch_exceptions=False)

    return run
