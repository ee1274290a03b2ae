"""A SCIM write and another writer at the same time (the decision-log writer thread, another
worker): the SCIM request waits for the database and succeeds, on SQLite too."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from accessd.db import Database
from accessd.models import ApiClient
from accessd.scim import groups, users
from tests.scim.conftest import group, user


@pytest.mark.parametrize(
    ("module", "step", "endpoint", "body"),
    [
        (groups, "check_group_name", "/Groups", group("Billing")),
        (users, "check_unique", "/Users", user("w.wolf")),
    ],
)
def test_a_write_committed_by_another_connection_during_a_request_does_not_fail_it(
    scim, loaded_db, monkeypatch, module, step, endpoint, body
):
    """The request has read (a uniqueness check) when another connection writes: on SQLite a
    transaction that began by reading could not write any more (database is locked, 503)."""
    other = Database(loaded_db.url)
    done = threading.Event()

    def write_elsewhere():
        with other.session() as s:
            s.execute(update(ApiClient).where(ApiClient.name == "hr-system").values(default_purpose="other"))
        done.set()

    real = getattr(module, step)

    def check_then_let_another_connection_write(*args):
        found = real(*args)
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        thread.join(timeout=1)  # it commits now, or waits for this request's write lock
        return found

    monkeypatch.setattr(module, step, check_then_let_another_connection_write)
    response = scim.post(endpoint, body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert done.wait(15)  # the other writer got its turn too
    other.dispose()
