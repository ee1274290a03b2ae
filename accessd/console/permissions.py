"""Who may do what in the admin UI: asked of accessd's own engine, resource type ``admin_ui``.

The rules ship in ``policies/`` (roles ``admin``, ``helpdesk``, ``auditor``) and are ordinary
policy: a revision can change them, and an account that is disabled, suspended, not yet started or
past its departure is denied by the engine itself, whatever its roles.
"""

from __future__ import annotations

from accessd.policy.engine import Engine, Subject

RESOURCE_TYPE = "admin_ui"
PURPOSE = "administration"
ACTIONS = (
    "view",
    "view_logs",
    "export",
    "manage_people",
    "edit_policy",
    "approve_sync",
    "manage_integrations",
)


def may(engine: Engine, subject: Subject, action: str) -> bool:
    """Whether ``subject`` may do ``action`` in the admin UI (unknown actions are denied)."""
    return engine.decide(subject, RESOURCE_TYPE, action, None, PURPOSE, {}).allowed


def allowed_actions(engine: Engine, subject: Subject) -> frozenset[str]:
    """Every admin_ui action of the policy in force that ``subject`` may do."""
    declared = engine.catalogue.types.get(RESOURCE_TYPE)
    actions = declared.actions if declared is not None else ()
    return frozenset(a for a in actions if may(engine, subject, a))
