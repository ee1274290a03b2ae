"""The admin web UI at /admin: one blueprint, one module per page group.

Every view is guarded by :func:`accessd.web.admin.guard.requires` with an ``admin_ui`` action that
accessd's own engine decides; forms are CSRF-checked; the pages carry a strict
Content-Security-Policy (no inline script or style). Templates and the vendored static files are
in the top-level ``templates/`` (:mod:`accessd.web.assets`).
"""

from __future__ import annotations

from flask import Blueprint

from accessd.web.assets import static_dir

bp = Blueprint(
    "admin", __name__, url_prefix="/admin", static_folder=str(static_dir()), static_url_path="/static"
)

# the page modules add their routes to bp when imported (one line each)
from accessd.web.admin import (  # noqa: E402, F401
    auth,
    dashboard,
    guard,
    integrations,
    logs,
    matrix,
    people,
    revisions,
    roles,
    simulator,
    syncs,
)
