"""accessd: an AuthZEN policy decision point with an employee lifecycle.

``create_app(settings=None)`` wires extensions, blueprints and error handlers; it starts no
threads (the decision-log writer starts lazily in the worker that uses it; jobs run in
``accessd scheduler``).
"""

from __future__ import annotations

from flask import Flask

from accessd.config import Settings, load_settings
from accessd.db import Database


class Services:
    """What views need, attached to the app as ``app.extensions["accessd"]``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        from accessd.revisions import EngineHolder

        self.db = Database(settings.effective_database_url)
        self.engines = EngineHolder(self.db)

        from accessd.authzen import DecisionService
        from accessd.decision_log import DecisionLogWriter
        from accessd.subjects import SubjectCache
        from accessd.tokens import TokenCache

        # per-process caches: no database round trip on the decision path
        self.subjects = SubjectCache(self.db)
        self.tokens = TokenCache(self.db, ttl_seconds=settings.api.token_cache_seconds)
        # the writer thread starts lazily on the first decision, never here
        self.decision_log = DecisionLogWriter(self.db, settings.decision_log)
        self.decisions = DecisionService(self.engines, self.subjects, self.decision_log, settings)

    def close(self) -> None:
        """Flush the decision log and stop its thread (tests and shutdown hooks)."""
        self.decision_log.close()


def create_app(settings: Settings | dict | None = None) -> Flask:
    """Build the Flask app. ``settings`` may be a Settings object, or a dict of overrides
    applied on top of the normal layering (tests use this)."""
    if not isinstance(settings, Settings):
        settings = load_settings(overrides=settings)
    app = Flask(__name__, template_folder="../templates", instance_path=settings.instance_path)
    app.config["SECRET_KEY"] = settings.secret_key or _ephemeral_secret()
    app.config["MAX_CONTENT_LENGTH"] = settings.api.max_body_bytes
    app.extensions["accessd"] = Services(settings)

    from accessd.web import errors
    from accessd.web.sessions import BrowserOnlySessionInterface

    app.session_interface = BrowserOnlySessionInterface()
    errors.init_app(app)
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    return app


def _blueprints():
    """Blueprints that exist; each web module exposes ``bp``."""
    import importlib

    found = []
    for name in ("health", "authzen", "openapi", "decisions_api", "scim", "hooks", "admin"):
        try:
            module = importlib.import_module(f"accessd.web.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"accessd.web.{name}":
                raise
            continue
        found.append(module.bp)
    return found


def _ephemeral_secret() -> str:
    import secrets

    return secrets.token_hex(32)
