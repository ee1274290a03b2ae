"""The admin console's front page (/admin/, ``view``): what needs attention now.

One call to :func:`accessd.console.dashboard.summary`; the page links to the people, to the
held sync runs (``admin.sync_runs``, when that page is installed) and to each departing person.
"""

from __future__ import annotations

from flask import render_template, url_for
from werkzeug.routing import BuildError

from accessd import clock
from accessd.console import dashboard as board
from accessd.web.admin import bp
from accessd.web.admin.guard import requires, services


def url_or_none(endpoint: str, **values) -> str | None:
    """The URL of ``endpoint``, or None when no page has that endpoint (a page not installed is
    left out of the page rather than failing it)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


@bp.get("/")
@requires("view")
def dashboard():
    return render_template(
        "admin/dashboard.html",
        d=board.summary(services().db),
        sync_url=url_or_none("admin.sync_runs"),
        held_url=url_or_none("admin.sync_runs", status="pending_approval"),
        zone=str(clock.zone()),
    )
