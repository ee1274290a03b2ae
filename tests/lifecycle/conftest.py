"""Fixtures for lifecycle tests: one real OpenLDAP server per session, a fresh subtree per test.

``ldap_server`` starts Debian's slapd (via the PyPI ``slapd`` helper) once. ``people`` creates
``ou=t<N>`` with ``ou=people`` and ``ou=groups`` below it and gives helpers to add, change,
lock, rename and delete entries; tests never see each other's entries. ``settings`` points
accessd at that subtree and at the test database.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ldap_server import People, TestDirectory  # noqa: E402
from lifecycle_helpers import make_settings  # noqa: E402

from accessd.lifecycle.sync import run_sync  # noqa: E402


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
