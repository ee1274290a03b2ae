"""The small exception tree every layer raises; web/ maps it once to HTTP responses."""


class AccessdError(Exception):
    """Base class. ``status`` is the HTTP status a web layer should answer with."""

    status = 500
    code = "error"

    def __init__(self, message: str, *, pointer: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.pointer = pointer  # the request member at fault, e.g. "/subject/id"
        self.headers = headers or {}  # HTTP headers the answer carries (WWW-Authenticate, ...)


class Invalid(AccessdError):
    status = 400
    code = "invalid"


class NotFound(AccessdError):
    status = 404
    code = "not_found"


class Conflict(AccessdError):
    status = 409
    code = "conflict"


class Unauthorized(AccessdError):
    status = 401
    code = "unauthorized"


class Forbidden(AccessdError):
    status = 403
    code = "forbidden"


class TooLarge(AccessdError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(AccessdError):
    status = 415
    code = "unsupported_media_type"


class DirectoryUnavailable(AccessdError):
    """The directory could not be read completely (bind, network, paging, limits)."""

    status = 503
    code = "directory_unavailable"


class Unavailable(AccessdError):
    """The service cannot take this request now (the decision log is full or the database is
    down) but may in ``retry_after`` seconds; answered 503 with a ``Retry-After`` header."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 1):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class PolicyError(Invalid):
    """A policy file is invalid; names the file and line."""

    code = "invalid_policy"

    def __init__(self, file: str, line: int | None, reason: str):
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason
