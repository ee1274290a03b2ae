"""Directory sign-in to the admin UI against a real slapd: the LDAP bind decides the password,
the directory groups decide the console role, and an unreachable directory is not "wrong password"."""

from __future__ import annotations

import pytest

from accessd.lifecycle.sync import run_sync
from tests.support.lifecycle import make_settings
from tests.web.admin.conftest import sign_in

DIRECTORY_PASSWORD = "a directory passphrase 7 sailing boats"


@pytest.fixture
def directory_app(ldap_server, people, loaded_db, make_app):
    ada = people.add("ada", userPassword=DIRECTORY_PASSWORD)
    people.group("it-admins", ada)
    settings = make_settings(ldap_server, people, loaded_db.url)
    ldap = {**settings.ldap.__dict__, "group_roles": {"it-admins": ["admin"]}}
    run_sync(
        loaded_db, make_settings(ldap_server, people, loaded_db.url, ldap=ldap), kind="full", actor="test"
    )
    return make_app(ldap=ldap)


def test_a_directory_administrator_signs_in_with_the_directory_password(directory_app):
    client = directory_app.test_client()
    assert sign_in(client, "ada", "wrong directory password").status_code == 401
    assert sign_in(client, "ADA", DIRECTORY_PASSWORD).status_code == 302
    assert client.get("/admin/me").status_code == 200


def test_a_locked_directory_entry_cannot_sign_in(directory_app, people):
    people.lock(people.dn("ada"))
    assert sign_in(directory_app.test_client(), "ada", DIRECTORY_PASSWORD).status_code == 401


def test_an_unreachable_directory_is_a_503_not_a_wrong_password(directory_app, ldap_server):
    ldap_server.kill()
    try:
        answer = sign_in(directory_app.test_client(), "ada", DIRECTORY_PASSWORD)
    finally:
        ldap_server.resume()
    assert answer.status_code == 503 and "directory" in answer.text and "wrong password" not in answer.text
