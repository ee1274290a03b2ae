"""What a lifecycle change tells the connected applications.

Every routine in :mod:`accessd.lifecycle.offboarding` (and a change of roles) calls :func:`emit`
inside the transaction that makes the change; the Shared Signals outbox
(:mod:`accessd.ssf.outbox`) turns it into one signed event per interested stream, written in the
same transaction, so an event exists exactly when its change does.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from accessd.models import Account
from accessd.ssf import outbox

#: the changes there are, and the SSF events each becomes (in this order)
CHANGES = {
    "disabled": ("session-revoked", "account-disabled"),
    "suspended": ("session-revoked", "account-disabled"),
    "enabled": ("account-enabled",),
    "roles_changed": ("token-claims-change",),
}


def emit(session: Session, account: Account, change: str, **detail) -> None:
    """Queue the events of ``change`` for ``account`` (see :data:`CHANGES`)."""
    if change not in CHANGES:
        raise ValueError(f"unknown lifecycle change {change!r}")
    outbox.enqueue(session, account, change, detail)
