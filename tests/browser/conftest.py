"""Browser tests of the admin UI: Playwright (sync API) driving Debian's Chromium, headless.

* The browser is ``/usr/bin/chromium`` (Debian package ``chromium``, installed by scripts/setup);
  Playwright never downloads one (``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1``, no ``playwright
  install``). Without it the tests are skipped with the reason.
* One server per session: accessd under gunicorn (the command line of ``accessd serve``: two
  gthread workers, so a change made through one worker must reach the other) on 127.0.0.1 and a
  free port, over a temporary **SQLite** database holding the demo data (what ``accessd demo``
  loads: the policy, the demo employees) plus the administrators in :data:`USERS` and an API
  client of scope ``decide``. SQLite only: the database behaviour of each page's services is
  tested on SQLite and PostgreSQL in tests/console and tests/web; here the subject is the browser.
  Plain http on loopback, so ``ACCESSD_SESSION_COOKIE_SECURE=false``.
* One browser per session, a new context (cookies, storage) per test: tests do not share a
  sign-in. Tests that change shared state (offboarding, lockout, TOTP, policy edits) use their
  own administrator or restore what they changed, so that the order of tests does not matter.
* ``page`` records console errors, failed requests and uncaught exceptions (a Content-Security-
  Policy violation is a console error) and fails the test when there were any.
* Helpers (tests/browser/helpers.py): ``login``, ``login_as``, ``axe_check`` (axe-core,
  tests/browser/vendor), ``shot`` (screenshots into ``test-artifacts/screenshots/``, git-ignored),
  ``csrf_token``, ``forget_problems``. A failed test leaves each of its open pages in
  ``test-artifacts/failures/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.helpers import (
    CONTEXT_OPTIONS,
    FAILURES,
    PASSWORD,
    ROOT,
    TIMEOUT_MS,
    USERS,
    Server,
    problems,
    watch,
)
from tests.support import free_port

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = Path(os.environ.get("ACCESSD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _load_data(database_url: str) -> str:
    """The demo data, the test administrators and a decide-scope API client; returns its token."""
    from accessd import demo, passwords
    from accessd.console import admins
    from accessd.db import Database
    from accessd.pdp import tokens

    db = Database(database_url)
    db.upgrade()
    # every administrator here has the same password: hash it once (argon2id takes ~0.3 s a hash)
    hashed, real = passwords.hash_password(PASSWORD), passwords.hash_password
    with pytest.MonkeyPatch.context() as mp, db.session() as s:
        mp.setattr(passwords, "hash_password", lambda p: hashed if p == PASSWORD else real(p))
        demo.load(s, ROOT / "policies", "cli:demo", admin_password=PASSWORD)
        for user in USERS.values():
            admins.create(
                s,
                username=user.username,
                role=user.role,
                actor="cli:demo",
                password=user.password,
                display_name=user.display_name,
            )
        token = tokens.create(s, "browser-tests", "decide")
        _held_sync_run(s)
    db.dispose()
    return token


def _held_sync_run(s) -> None:
    """A directory sync held for approval (three leavers), so that the sync pages have a run."""
    from sqlalchemy import select

    from accessd.lifecycle.sync_actions import Leave, SyncPlan
    from accessd.models import Account, SyncRun

    ids = {sid: i for sid, i in s.execute(select(Account.subject_id, Account.id))}
    leavers = ("m.rossi", "p.garcia", "r.schmidt")
    plan = SyncPlan("full", [Leave(ids[x], x, "not in the directory any more") for x in leavers])
    s.add(
        SyncRun(
            kind="full",
            status="pending_approval",
            source="scheduler",
            reason="3 of 11 accounts would be disabled (more than 10%): held for approval",
            seen=8,
            counts={"leave": 3},
            plan=plan.to_json(),
            actor="scheduler",
        )
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """accessd under gunicorn with the demo data, for the whole session (see the module docstring)."""
    from accessd import gunicorn_conf

    tmp = tmp_path_factory.mktemp("browser-server")
    database_url = f"sqlite:///{tmp / 'accessd.sqlite3'}"
    token = _load_data(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    env.update(
        ACCESSD_DATABASE_URL=database_url,
        ACCESSD_INSTANCE_PATH=str(tmp / "instance"),
        ACCESSD_SECRET_KEY="browser-tests-" + "s" * 32,
        ACCESSD_PUBLIC_URL=base,
        ACCESSD_SESSION_COOKIE_SECURE="false",  # plain http on loopback
        # every test signs in from 127.0.0.1: the per-address throttle would refuse the suite
        ACCESSD_ADMIN_SIGN_IN_RATE="10000 per minute",
    )
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            gunicorn_conf.argv(f"127.0.0.1:{port}", 2, 4), cwd=tmp, env=env, stdout=log, stderr=log
        )
    srv = Server(base, database_url, token, log_path=log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("gunicorn did not start:\n" + srv.log_tail())
                time.sleep(0.1)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: scripts/setup installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)  # read by new_context's teardown
    return report


@pytest.fixture
def new_context(browser, server, request):
    """``new_context()``: a fresh browser context (own cookies) on the server; closed at teardown.
    Its pages record errors like ``page`` does (``problems(page)`` lists them). When the test
    failed, each open page is saved to ``test-artifacts/failures/<test>-<n>.png``."""
    made = []

    def make(**options):
        context = browser.new_context(base_url=server.base_url, **{**CONTEXT_OPTIONS, **options})
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", watch)
        made.append(context)
        return context

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for n, pg in enumerate(p for c in made for p in c.pages):
            with contextlib.suppress(Exception):  # a closed or crashed page: nothing to save
                pg.screenshot(path=str(FAILURES / f"{name}-{n}.png"), full_page=True, timeout=5000)
    for context in made:
        context.close()


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context, server):
    """A page in a fresh context; the test fails when the page logged a console error, a request
    of it failed, or a script threw (CSP violations, missing static files, broken htmx)."""
    page = context.new_page()
    watch(page)  # (the context's "page" event does it too; this is sure to run first)
    yield page
    found = problems(page)
    if found:
        pytest.fail("the browser reported problems:\n  " + "\n  ".join(found) + "\n" + server.log_tail(1500))
