"""The words of the account lifecycle: where a change came from, and the states an account is in.

An account is ``active``, ``suspended`` (leave of absence: denied, grants kept, lifted on return)
or ``disabled`` (left: grants removed, history kept); ``pending`` is kept for accounts created
before they may be used. A departure can be *scheduled* on an active account: ``end_date`` (the
last working day) and ``departure_at`` (the moment access ends, UTC) are set and the decision
engine denies from that moment on, whether or not the job that disables the account has run.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """Who triggered a lifecycle change; stored in ``lifecycle_event.source`` and ``disabled_by``."""

    DIRECTORY = "directory"  # the LDAP sync
    SCIM = "scim"  # an HR system through /scim/v2
    HR = "hr"  # a signed HR event (/hr/v1/events)
    SCHEDULER = "scheduler"  # a due departure, the end-date sweep
    CLI = "cli"  # accessd offboard / account ...
    ADMIN = "admin"  # the admin web UI
    SWEEP = "sweep"  # the stale-account sweep


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DISABLED = "disabled"
    PENDING = "pending"
