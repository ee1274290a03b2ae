"""What stands in front of every admin page: who is signed in, what they may do, and the headers.

* The user loader re-reads the administrator's account on every request (:func:`signin.load`) and
  drops the session when the account's ``session_epoch`` moved since sign-in (offboarding, a
  suspension or a revoked role bump it, whatever triggered them), when the policy no longer lets
  it ``view`` the UI (a disabled, suspended or departed account is denied by the engine itself),
  or when it was idle longer than ``admin.idle_minutes``.
* :func:`requires` guards each view with an ``admin_ui`` action decided by the engine in force.
* Every POST under /admin must carry the session's CSRF token (form field or ``X-CSRFToken``).
* Responses carry a strict Content-Security-Policy (no inline script or style, no framing) and
  are not cached.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, logout_user
from flask_wtf.csrf import CSRFProtect

from accessd.console import permissions, signin
from accessd.errors import Forbidden
from accessd.web.admin import bp
from accessd.web.admin.nav import NAV
from accessd.web.admin.params import check_query

current_admin = current_user  # the signed-in administrator (a CurrentAdmin) in views

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
EPOCH, SEEN = "admin_epoch", "admin_seen"


class CurrentAdmin(UserMixin):
    """The signed-in administrator for one request, with the admin_ui actions the policy allows."""

    def __init__(self, admin: signin.Admin, actions: frozenset[str]):
        self.admin = admin
        self.actions = actions
        self.username = admin.username
        self.account_id = admin.account_id
        self.subject_id = admin.subject.id
        self.display_name = admin.display_name

    def get_id(self) -> str:
        return str(self.admin.id)


def services():
    """The app's Services (``.db``, ``.settings``, ``.engines``, ``.decisions``)."""
    return current_app.extensions["accessd"]


def actor() -> str:
    """The signed-in administrator as recorded in the audit trail."""
    return f"admin:{current_user.username}"


def reach() -> permissions.Reach:
    """What the signed-in administrator may hand out or touch (no one gives more than they hold)."""
    return permissions.Reach(services().engines.engine, current_user.actions)


def allowed(admin: signin.Admin) -> frozenset[str]:
    return permissions.allowed_actions(services().engines.engine, admin.subject)


def requires(action: str):
    """Guard a view: not signed in -> the sign-in page; signed in without ``action`` -> 403."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
            if action not in current_user.actions:
                raise Forbidden(f"your role may not {action.replace('_', ' ')} in accessd")
            return view(*args, **kwargs)

        return guarded

    return decorate


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a path inside /admin (never another site)."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("admin.dashboard")


def init_app(app) -> None:
    """Flask-Login, CSRF and sign-in throttling for the admin blueprint (per app: tests make many)."""
    login = LoginManager()
    login.init_app(app)
    login.login_view = "admin.login"
    login.session_protection = "strong"  # a session cookie replayed from another client is dropped
    login.user_loader(_load)
    # Flask-Login renews its remember-me cookie after every request of the app, reading the
    # session each time. Sessions live under /admin only, so the hook runs there: the decision
    # API skips it (about 6 us of a 130 us evaluation).
    # (a private name: should a release rename it, the hook simply stays app-wide)
    renew = getattr(login, "_update_remember_cookie", None)
    if renew is not None and renew in app.after_request_funcs.get(None, []):
        app.after_request_funcs[None].remove(renew)
        app.after_request_funcs.setdefault("admin", []).append(renew)
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked for /admin only (below)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    CSRFProtect(app)
    limiter = Limiter(get_remote_address, storage_uri="memory://", headers_enabled=False)
    # Only the sign-in forms are limited, explicitly (sign_in_limit). Listed as registered before
    # init_app, the limiter adds no before/after-request hooks, so that no other request -- the
    # decision API above all -- pays for it (Flask-Limiter skips the hooks of a limiter it knows).
    app.extensions.setdefault("limiter", set()).add(limiter)
    limiter.init_app(app)
    app.extensions["admin_limiter"] = limiter


def sign_in_limit():
    """A context manager counting one sign-in attempt of this client (429 above the rate)."""
    limiter = current_app.extensions["admin_limiter"]
    return limiter.limit(services().settings.admin.sign_in_rate, scope="admin-sign-in")


def start_session(admin: signin.Admin) -> None:
    """A fresh session for ``admin`` (nothing carried over from before sign-in)."""
    session.clear()
    session[EPOCH] = admin.session_epoch
    session[SEEN] = int(time.time())
    session.permanent = False


def _load(user_id: str) -> CurrentAdmin | None:
    try:
        admin = signin.load(services().db, int(user_id))
    except ValueError:
        return None
    if admin is None or session.get(EPOCH) != admin.session_epoch:
        return None
    actions = allowed(admin)
    if "view" not in actions:
        return None
    return CurrentAdmin(admin, actions)


@bp.before_request
def _before():
    check_query()  # before the CSRF check reads the form
    if request.method == "POST":
        current_app.extensions["csrf"].protect()
    if request.endpoint in ("admin.static", "admin.login", "admin.login_code"):
        return None
    if current_user.is_authenticated:
        idle = services().settings.admin.idle_minutes * 60
        now = int(time.time())
        if now - int(session.get(SEEN, 0)) > idle:
            logout_user()
            session.clear()
            flash(f"You were signed out after {idle // 60} minutes without activity.", "info")
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        session[SEEN] = now
    elif session.get(EPOCH) is not None:
        # signed in before, refused now: the account was disabled, offboarded or lost its role
        session.clear()
        flash("Your session has ended. Sign in again.", "info")
    return None


@bp.after_request
def _headers(response):
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint != "admin.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _template_helpers():
    def may(action: str) -> bool:
        return current_user.is_authenticated and action in current_user.actions

    def nav_items():
        return [(endpoint, label) for endpoint, label, action in NAV if may(action)]

    return {"may": may, "nav_items": nav_items}
