"""What every SCIM write shares: the :class:`Writer` (the session, who writes, the request's id,
the group-to-role mapping) and :func:`as_scim_errors`, accessd's errors as SCIM errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from scim2_models import InvalidValueException, UniquenessException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accessd.errors import Conflict, Invalid
from accessd.lifecycle.states import Source
from accessd.models import Account
from accessd.scim import roles as group_roles


@dataclass(frozen=True)
class Writer:
    """Writes in ``session`` made by ``actor`` (``scim:<client>``), recorded with ``event_ref``
    (the request's id), applying ``mapping`` to the members of the groups they touch."""

    session: Session
    mapping: group_roles.GroupRoles
    actor: str
    event_ref: str | None = None

    def lifecycle(self) -> dict:
        """The keywords :mod:`accessd.lifecycle.offboarding` takes for a SCIM change."""
        return {"source": Source.SCIM, "actor": self.actor, "event_ref": self.event_ref}

    def ref(self) -> dict:
        """The request's id for an audit record's details (nothing without one)."""
        return {"event_ref": self.event_ref} if self.event_ref else {}

    def reconcile(self, accounts_or_ids: Iterable[Account | int]) -> None:
        """Bring these accounts' ``scim`` grants in line with their groups and the mapping."""
        ids = [a if isinstance(a, int) else a.id for a in accounts_or_ids]
        if ids:
            rows = list(self.session.scalars(select(Account).where(Account.id.in_(ids))))
            group_roles.reconcile(self.session, rows, self.mapping, actor=self.actor)


@contextmanager
def as_scim_errors() -> Iterator[None]:
    """accessd's errors (and a unique key taken by a concurrent write) as SCIM errors."""
    try:
        yield
    except Invalid as exc:
        raise InvalidValueException(detail=exc.message) from None
    except Conflict as exc:
        raise UniquenessException(detail=exc.message) from None
    except IntegrityError:
        raise UniquenessException(
            detail="a unique value (userName, employeeNumber, displayName) is taken"
        ) from None
