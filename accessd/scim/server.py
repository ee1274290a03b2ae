"""The SCIM 2.0 server (RFC 7643/7644): ``scim2_server``'s protocol over :class:`AccountStorage`.

:class:`ScimServer` takes a framework-free :class:`~scim2_server.requests.ScimRequest` (the web
layer, ``accessd/web/scim.py``, builds it) and returns a
:class:`~scim2_server.responses.ScimResponse`. Each request runs in one database transaction:
committed when the operation succeeds, rolled back when it fails, so a refused request leaves
nothing half-written; each operation of a Bulk request has its own savepoint.

Clients authenticate with an accessd API token of scope ``hr`` (``Authorization: Bearer ...``);
``/ServiceProviderConfig`` needs none (RFC 7644 §4). Writes are made by ``scim:<client name>``
and recorded with the request's ``X-Request-ID`` (or a generated id) as their ``event_ref``.
Errors are SCIM errors (``urn:ietf:params:scim:api:messages:2.0:Error``) with no stack trace; a
database that cannot be reached answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from scim2_models import (
    Error,
    ForbiddenException,
    PayloadTooLargeException,
    UnauthorizedException,
)
from scim2_server.applications.base import BaseApplication
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from accessd.config import Settings
from accessd.db import Database
from accessd.pdp.tokens import Caller, TokenCache
from accessd.scim import provider
from accessd.scim.roles import GroupRoles
from accessd.scim.storage import AccountStorage

SCOPE = "hr"
RETRY_AFTER = 5  # seconds, as the rest of the API answers a database outage

log = logging.getLogger("accessd.scim")


class ScimServer(BaseApplication):
    """The SCIM service of one process: the published description, the group-role mapping and
    the database; stateless between requests."""

    def __init__(self, db: Database, tokens: TokenCache, settings: Settings):
        scim = settings.scim
        described = provider.build(scim.max_results, scim.bulk_max_operations, settings.api.max_body_bytes)
        super().__init__(described, ScimService(described))
        self.db = db
        self.tokens = tokens
        self.mapping = GroupRoles(scim.group_roles)
        self.max_body_bytes = settings.api.max_body_bytes

    def serve(self, request: ScimRequest, request_id: str | None = None) -> ScimResponse:
        """Answer ``request``; ``request_id`` (the client's X-Request-ID) names the writes."""
        try:
            if self.needs_auth(request):
                request.subject = self.authenticate(request)
            response = self._handle(request, request_id or f"scim-{uuid.uuid4().hex[:16]}")
        except Exception as exception:
            response = self.handle_exception(request, exception)
        return self.finalize_response(request, response)

    def _handle(self, request: ScimRequest, event_ref: str) -> ScimResponse:
        caller: Caller | None = request.subject
        actor = f"scim:{caller.name}" if caller else "scim"
        with self.db.session() as session:  # committed on success, rolled back on any error
            if request.method != "GET" and self.db.dialect == "sqlite":
                # take the write lock first (waiting for it, up to the busy timeout): a transaction
                # that read first -- the savepoint of each operation starts one -- would fail at its
                # first write if another connection (a decision-log writer) committed meanwhile
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            storage = AccountStorage(session, self.provider, self.mapping, actor=actor, event_ref=event_ref)
            return ScimHandler(self.service, storage).handle(request)

    def authenticate(self, request: ScimRequest) -> Caller:
        """The API client of the request's bearer token; 401 or 403 (as SCIM errors) otherwise."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedException(detail="send 'Authorization: Bearer <token>' (a token with scope hr)")
        caller = self.tokens.lookup(token) if token.isascii() and token.isprintable() else None
        if caller is None:
            raise UnauthorizedException(detail="unknown or revoked token")
        if caller.scope != SCOPE:
            raise ForbiddenException(
                detail=f"a token with scope {caller.scope!r} may not call SCIM; it needs scope {SCOPE!r}"
            )
        return caller

    def too_large(self) -> ScimResponse:
        """The answer to a body over ``api.max_body_bytes`` (the web layer does not read it)."""
        exception = PayloadTooLargeException(
            detail=f"the request body is larger than {self.max_body_bytes} bytes"
        )
        return self.service.error_response(exception)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if isinstance(exception, DBAPIError | PoolTimeout):
            # the driver's class and first line only: SQLAlchemy's text carries the parameters
            orig = getattr(exception, "orig", None) or exception
            first = (str(orig).strip().splitlines() or [""])[0][:200]
            log.error(
                "database error on SCIM %s %s: %s: %s",
                request.method,
                request.path,
                type(orig).__name__,
                first,
            )
            error = Error(status=503, detail="the database is unavailable; retry later")
            body: dict[str, Any] = error.model_dump()
            return ScimResponse(HTTPStatus.SERVICE_UNAVAILABLE, body, {"Retry-After": str(RETRY_AFTER)})
        return super().handle_exception(request, exception)
