"""accessd: an AuthZEN policy decision point with an employee lifecycle.

``create_app(settings=None)`` wires extensions, blueprints and error handlers; it starts no
threads (the change feed and the decision-log writer start lazily in the worker that uses
them; jobs run in ``accessd scheduler``).
"""

from __future__ import annotations

import secrets

from flask import Flask

from accessd import clock, metrics
from accessd.config import Settings, load_settings
from accessd.db import Database
from accessd.pdp.decision_log import DecisionLogWriter
from accessd.pdp.feed import ChangeFeed
from accessd.pdp.revisions import EngineHolder
from accessd.pdp.service import DecisionService
from accessd.pdp.subjects import SubjectCache
from accessd.pdp.tokens import TokenCache
from accessd.ssf.delivery import Deliverer
from accessd.web import authzen, decisions_api, errors, health, hr, openapi

# not `scim` and `ssf`: in this namespace those names are the accessd.scim and accessd.ssf packages
from accessd.web import scim as scim_api
from accessd.web import ssf as ssf_api
from accessd.web.admin import bp as admin_bp
from accessd.web.admin import guard as admin_guard
from accessd.web.assets import templates_dir
from accessd.web.sessions import BrowserOnlySessionInterface


class Services:
    """What views need, attached to the app as ``app.extensions["accessd"]``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.effective_database_url)
        # per-process caches: no database round trip on the decision path; the change feed
        # loads them at the first read and keeps them current from a thread of its own
        self.engines = EngineHolder(self.db)
        self.subjects = SubjectCache()
        self.tokens = TokenCache(self.db, ttl_seconds=settings.api.token_cache_seconds)
        self.feed = ChangeFeed(self.db, settings.cache, self.subjects, self.tokens, self.engines)
        self.feed.reporter = metrics.caught_up
        # the writer thread starts lazily on the first decision, never here
        self.decision_log = DecisionLogWriter(self.db, settings.decision_log)
        self.decisions = DecisionService(self.engines, self.subjects, self.decision_log, settings)
        # Shared Signals push delivery: starts with the first request or event, never here
        self.ssf = Deliverer(self.db, settings.ssf)

    def close(self) -> None:
        """Flush the decision log and stop the background threads (tests and shutdown hooks)."""
        self.feed.close()
        self.decision_log.close()
        self.ssf.close()


def create_app(settings: Settings | dict | None = None) -> Flask:
    """Build the Flask app. ``settings`` may be a Settings object, or a dict of overrides
    applied on top of the normal layering (tests use this)."""
    if not isinstance(settings, Settings):
        settings = load_settings(overrides=settings)
    clock.configure(settings.timezone)
    app = Flask(__name__, template_folder=str(templates_dir()), instance_path=settings.instance_path)
    # without a configured key (tests, one-off tools) sessions last as long as the process;
    # `accessd serve` refuses to start without one
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config["MAX_CONTENT_LENGTH"] = settings.api.max_body_bytes
    # Lax, not Strict: a link into the admin UI (from a ticket or an e-mail) keeps the login;
    # cross-site form posts are refused either way (SameSite and CSRF tokens)
    for prefix in ("SESSION", "REMEMBER"):  # Flask's session and Flask-Login's remember-me
        app.config[f"{prefix}_COOKIE_SECURE"] = settings.session_cookie_secure
        app.config[f"{prefix}_COOKIE_HTTPONLY"] = True
        app.config[f"{prefix}_COOKIE_SAMESITE"] = "Lax"
    app.extensions["accessd"] = Services(settings)

    app.session_interface = BrowserOnlySessionInterface()
    errors.init_app(app)
    for module in (health, authzen, openapi, decisions_api, hr, scim_api, ssf_api):
        app.register_blueprint(module.bp)
    admin_guard.init_app(app)
    app.register_blueprint(admin_bp)
    return app
