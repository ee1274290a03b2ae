"""Cookie sessions only where a browser needs them.

API clients authenticate with bearer tokens and never send the session cookie, yet Flask would
build a signing serializer and look for the cookie on every request. Returning no session for
API paths makes Flask use its null session (never saved), which saves that work on every
decision and keeps cookies out of the API entirely.
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

from accessd.web.errors import API_PREFIXES


class BrowserOnlySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith(API_PREFIXES):
            return None  # Flask substitutes its NullSession and never saves it
        return super().open_session(app, request)
