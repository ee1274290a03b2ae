"""Helpers for the browser tests (fixtures are in conftest.py): the test administrators, the
running server, signing in, axe-core, screenshots, and the problems a page reported."""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
FAILURES = ROOT / "test-artifacts" / "failures"
CONTEXT_OPTIONS = {"viewport": {"width": 1280, "height": 900}}
TIMEOUT_MS = 10_000  # one step (a click, a navigation); a failing test fails in seconds, not minutes

PASSWORD = "plum-orbit-canvas-glacier-91"  # every test administrator's (zxcvbn: unguessable)


@dataclass(frozen=True)
class User:
    username: str
    role: str  # the admin_ui role granted
    display_name: str
    password: str = PASSWORD


# who signs in to the UI in these tests; s.ito and d.keller are demo employees (an account exists),
# the others are made by `accessd admin create`'s service
USERS = {
    "admin": User("e.fischer", "admin", "Eva Fischer"),
    "helpdesk": User("s.ito", "helpdesk", "Sam Ito"),
    "auditor": User("d.keller", "auditor", "Dana Keller"),
    "totp": User("o.berg", "admin", "Ole Berg"),  # turns TOTP on (test_sign_in)
    "locked": User("u.vogel", "auditor", "Ute Vogel"),  # gets locked out (test_sign_in)
    "leaver": User("h.brandt", "helpdesk", "Hanna Brandt"),  # is offboarded (test_people)
}


@dataclass
class Server:
    base_url: str
    database_url: str
    decide_token: str  # an API client of scope decide (AuthZEN)
    users: dict[str, User] = field(default_factory=lambda: dict(USERS))
    log_path: Path | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""

    def evaluate(self, body: dict) -> dict:
        """POST an AuthZEN evaluation with the decide token; the decoded answer."""
        req = urllib.request.Request(
            self.url("/access/v1/evaluation"),
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.decide_token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)


def watch(page) -> None:
    """Record the page's console errors, failed requests and uncaught exceptions (see problems)."""
    if hasattr(page, "_accessd_problems"):
        return
    found: list[str] = []
    page._accessd_problems = found  # read by problems(page)
    page.on("console", lambda m: _console(found, m))
    page.on("pageerror", lambda e: found.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: _request_failed(found, r))


def _console(found: list[str], message) -> None:
    location = (message.location or {}).get("url", "?")
    # the browser asks for /favicon.ico by itself; a page without an icon is not an error
    if message.type == "error" and not location.endswith("/favicon.ico"):
        found.append(f"console error: {message.text} ({location})")


def _request_failed(found: list[str], request) -> None:
    failure = request.failure or ""
    if "ERR_ABORTED" in failure:  # a navigation that replaced a pending request: not an error
        return
    found.append(f"request failed: {request.method} {request.url}: {failure}")


def problems(page) -> list[str]:
    """Console errors, failed requests and uncaught exceptions ``page`` has seen so far.

    A page that answered 4xx on purpose (a 403 page, a 400 for a missing CSRF token) logs a
    console error for its status: tests that expect one call :func:`forget_problems`."""
    return list(getattr(page, "_accessd_problems", []))


def forget_problems(page, containing: str = "") -> None:
    """Drop the recorded problems (those containing ``containing``): after an expected 4xx."""
    found = getattr(page, "_accessd_problems", [])
    found[:] = [p for p in found if containing and containing not in p]


# helpers ------------------------------------------------------------------------------------------


def totp_code(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def login(page, username: str, password: str, totp: str | None = None, next_path: str = ""):
    """Sign in through the form (/admin/login, then /admin/login/code when ``totp`` -- the TOTP
    secret, a code is made from it -- is given). Uses the sign-in page the browser is on, if it is
    on one (a guarded page sent it there with ``?next=``), else opens it. Leaves the page where the
    sign-in went (the next page, or the form again with its message)."""
    on_the_form = re.search(r"/admin/login(\?|$)", page.url)
    if next_path or not on_the_form:  # else: the sign-in page a guarded page sent us to (with ?next=)
        page.goto("/admin/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if totp is not None:
        page.wait_for_url("**/admin/login/code**")
        page.get_by_label("Code", exact=False).fill(totp_code(totp))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
    return page


def login_as(page, server: Server, who: str, **kwargs):
    """Sign in as ``server.users[who]`` and check it worked (the sign-in page is left)."""
    user = server.users[who]
    login(page, user.username, user.password, **kwargs)
    assert "/admin/login" not in page.url, f"sign-in as {user.username} failed: {_flashes(page)}"
    return page


def _flashes(page) -> str:
    try:
        return page.locator("main").inner_text(timeout=1000)[:500]
    except Exception:  # noqa: BLE001 - only for a failure message
        return page.content()[:500]


def axe_check(page, *, disable: tuple[str, ...] = ()) -> None:
    """Run axe-core on the page as it is now; fail listing every violation readably.

    The script is evaluated through the DevTools protocol, not added as a <script> element: the
    admin pages' Content-Security-Policy (script-src 'self') refuses inline scripts, rightly."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    options = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    result = page.evaluate("async (options) => await axe.run(document, options)", options)
    violations = result["violations"]
    if violations:
        lines = [f"axe-core found {len(violations)} accessibility violation(s) on {page.url}:"]
        for v in violations:
            lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"][:5]:
                lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html'][:200]}")
                summary = (node.get("failureSummary") or "").replace("\n", " ")
                if summary:
                    lines.append(f"      {summary[:300]}")
            if len(v["nodes"]) > 5:
                lines.append(f"    ... and {len(v['nodes']) - 5} more")
        pytest.fail("\n".join(lines), pytrace=False)


def shot(page, name: str, full_page: bool = True) -> Path:
    """A screenshot at ``test-artifacts/screenshots/<name>.png`` (the full page, or what the
    viewport shows); returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def docs_shot(page, name: str, scroll_to: str | None = None) -> Path:
    """A README-sized screenshot (1440x1000 viewport, not the full page) at
    ``test-artifacts/screenshots/docs-<name>.png``, optionally with the element ``scroll_to``
    (a selector) at the top. The viewport is restored after. Copied by hand to docs/screenshots/."""
    size = page.viewport_size
    page.set_viewport_size({"width": 1440, "height": 1000})
    try:
        if scroll_to:
            page.locator(scroll_to).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        return shot(page, f"docs-{name}", full_page=False)
    finally:
        page.set_viewport_size(size)


def csrf_token(page) -> str:
    """The CSRF token of the page's session, as the page carries it (a form's hidden field, or
    the one htmx sends from <body hx-headers>)."""
    field_value = page.locator("input[name=csrf_token]").first
    if field_value.count():
        return field_value.get_attribute("value")
    headers = page.locator("body").get_attribute("hx-headers") or "{}"
    return json.loads(headers)["X-CSRFToken"]
