"""The small exception tree every layer raises; ``web/errors.py`` turns it into HTTP answers and
``cli/base.py`` into a message and an exit code, each in that one place.

Each kind declares its HTTP ``status`` and problem ``code`` in its class line
(``class NotFound(AccessdError, status=404, code="not_found")``); a subclass inherits its parent's.
"""


class AccessdError(Exception):
    """Base class. ``status`` is the HTTP status a web layer answers with, ``code`` the problem
    code it names; ``pointer`` the request member at fault, ``headers`` the HTTP headers the
    answer carries."""

    status = 500
    code = "error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, pointer: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.pointer = pointer  # the request member at fault, e.g. "/subject/id"
        self.headers = headers or {}  # HTTP headers the answer carries (WWW-Authenticate, ...)


class Invalid(AccessdError, status=400, code="invalid"):
    """Bad input or configuration; the message says what is wrong."""


class Unauthorized(AccessdError, status=401, code="unauthorized"):
    """No credentials, or credentials accessd does not know (a missing or revoked token)."""


class Forbidden(AccessdError, status=403, code="forbidden"):
    """Known credentials that do not allow this (a token without the endpoint's scope)."""


class NotFound(AccessdError, status=404, code="not_found"):
    """The named thing (an account, a sync run, a policy revision, an API client) does not exist."""


class Conflict(AccessdError, status=409, code="conflict"):
    """The request contradicts the current state (a run already applied, a name taken)."""


class SyncBusy(Conflict):
    """Another process holds the sync lock (a sync run or an approval); the message names the
    holder: "a sync is already running since 2025-01-01 12:00:00 UTC, run 7"."""


class TooLarge(AccessdError, status=413, code="too_large"):
    """A body, batch or record list over its configured limit."""


class UnsupportedMediaType(AccessdError, status=415, code="unsupported_media_type"):
    """A body that is not declared as JSON."""


class DirectoryUnavailable(AccessdError, status=503, code="directory_unavailable"):
    """The directory could not be read completely (bind, network, paging, limits)."""


class Unavailable(AccessdError, status=503, code="unavailable"):
    """The service cannot take this request now (the decision log is full or the database is
    down) but may in ``retry_after`` seconds; answered 503 with a ``Retry-After`` header."""

    def __init__(self, message: str, *, retry_after: int = 1):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class PolicyError(Invalid, code="invalid_policy"):
    """A policy file is invalid; names the file and line."""

    def __init__(self, file: str, line: int | None, reason: str):
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason
