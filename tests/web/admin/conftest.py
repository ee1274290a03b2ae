"""Fixtures for the admin UI's view tests: a signed-in test client per console role.

``admin_client(role="admin")`` makes an administrator holding ``role`` on the demo policy and the
demo employees (``demo_db``) and signs in through the real sign-in form. ``client.csrf()`` is the
session's CSRF token for form posts: ``client.post(url, data={"csrf_token": client.csrf(), ...})``.
"""

from __future__ import annotations

import re

import pytest

from accessd import demo
from accessd.console import admins

PASSWORD = "correct horse battery staple 42"
_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1) or found.group(2)


@pytest.fixture
def demo_db(loaded_db):
    """The demo policy (revision 1) and the demo employees."""
    with loaded_db.session() as s:
        demo.load_employees(s, "test")
    return loaded_db


def make_admin(db, username: str, role: str, password: str = PASSWORD, **kw) -> None:
    with db.session() as s:
        admins.create(s, username=username, role=role, password=password, actor="test", **kw)


def sign_in(client, username: str, password: str = PASSWORD):
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page.text), "username": username, "password": password},
    )


@pytest.fixture
def admin_client(demo_db, make_app):
    """``admin_client(role="admin", username=None)`` -> a test client signed in as that role."""
    app = make_app()

    def make(role: str = "admin", username: str | None = None):
        username = username or f"{role}.user"
        make_admin(demo_db, username, role)
        client = app.test_client()
        answer = sign_in(client, username)
        assert answer.status_code == 302, answer.text
        client.csrf = lambda: csrf_from(client.get("/admin/me").text)
        client.app = app
        return client

    return make
