"""Shared fixtures: real databases (SQLite and a throwaway PostgreSQL server), the app.

``database_url`` is parametrised: every test that uses it (directly or through ``db`` or
``app``) runs once on SQLite and once on PostgreSQL. The PostgreSQL server is started once per
session from the installed server binaries in a temporary directory and stopped at the end.
Each test gets a fresh database cloned from a migrated template, so tests never share state.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from accessd import clock as the_clock  # the fixture below is named clock
from accessd.db import Database
from tests.support import free_port
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policies"

# fixtures for the decision API and for the LDAP directory, shared by several test packages
pytest_plugins = ("tests.support.api_fixtures", "tests.support.directory_fixtures")


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer()
    server.start()
    server.execute("CREATE DATABASE accessd_template")
    template = Database(server.url("accessd_template"))
    template.upgrade()
    template.dispose()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


_counter = itertools.count()


def _fresh_database(request, tmp_path, migrated: bool):
    """A new database on the test's backend: a copy of the migrated template, or empty."""
    if request.param == "sqlite":
        path = tmp_path / "accessd.sqlite3"
        if migrated:
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    server.execute(f"CREATE DATABASE {name}" + (" TEMPLATE accessd_template" if migrated else ""))
    yield server.url(name)
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, migrated, empty database; the test runs once per backend."""
    yield from _fresh_database(request, tmp_path, migrated=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """A fresh database with no tables at all (not migrated); once per backend."""
    yield from _fresh_database(request, tmp_path, migrated=False)


@pytest.fixture
def clock():
    """``accessd.clock`` for a test to set (``clock.set(today=...)``, ``clock.advance(2)``,
    ``clock.configure("Pacific/Kiritimati")``); back to the system clock in UTC afterwards."""
    yield the_clock
    the_clock.reset()


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def loaded_db(db):
    """A database with the demo policy loaded as revision 1."""
    from accessd.pdp import revisions

    with db.session() as s:
        revisions.load_dir(s, POLICY_DIR, "test")
    return db


@pytest.fixture
def make_app(loaded_db, tmp_path):
    """``make_app(**overrides)``: the service over the test database with settings overridden
    (e.g. ``decision_log={"buffer_size": 3}``); its log is flushed and closed at teardown."""
    from accessd import create_app

    made = []

    def make(**overrides):
        settings = {
            "database_url": loaded_db.url,
            "instance_path": str(tmp_path / "instance"),
            "secret_key": "test-secret-key-not-for-production",
            **overrides,
        }
        application = create_app(settings)
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["accessd"].close()
        application.extensions["accessd"].db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    """The test client; the decision log is flushed and its thread stopped at teardown."""
    yield app.test_client()
    app.extensions["accessd"].close()


@pytest.fixture
def serve(tmp_path):
    """Start accessd as ``accessd serve`` does (the same command line) on a free port:
    ``serve(database_url, workers=2, server=servers.DEFAULT, **env) -> (base_url, process)``;
    ``server`` is "granian" or "gunicorn". Stopped at teardown (SIGTERM, a graceful stop)."""
    import urllib.request

    from accessd import servers

    started = []

    def start(database_url: str, workers: int = 2, server: str = servers.DEFAULT, **env):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        environ = dict(
            os.environ,
            ACCESSD_DATABASE_URL=database_url,
            ACCESSD_INSTANCE_PATH=str(tmp_path / f"instance-{port}"),
            ACCESSD_SECRET_KEY="s" * 32,
            ACCESSD_PUBLIC_URL=base,
            **env,
        )
        log_path = tmp_path / f"server-{port}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
        environ.update(servers.environment(environ["ACCESSD_INSTANCE_PATH"], port))  # as `accessd serve`
        command = servers.argv(server, "127.0.0.1", port, workers)
        proc = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log, stderr=log)
        started.append((proc, log))
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                return base, proc
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    pytest.fail(f"{server} did not start: " + log_path.read_text()[-2000:])
                time.sleep(0.1)

    yield start
    for proc, log in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)  # longer than the servers' own kill timeouts (30 s)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
