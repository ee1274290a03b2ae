"""Who may do what in the admin UI: asked of accessd's own engine, resource type ``admin_ui``.

The rules ship in ``policies/`` (roles ``admin``, ``helpdesk``, ``auditor``) and are ordinary
policy: a revision can change them, and an account that is disabled, suspended, not yet started or
past its departure is denied by the engine itself, whatever its roles.

No one gives more than they hold (:class:`Reach`): an administrator may grant a role, or change
an account, only when every admin_ui action that role or account carries is one they may do
themselves. So helpdesk, who may manage people, can neither make someone (or itself) an admin or
an auditor, nor offboard, suspend or strip an admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from accessd.errors import Forbidden
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


def carried_actions(engine: Engine, roles) -> frozenset[str]:
    """The admin_ui actions that holding ``roles`` gives an active account."""
    return allowed_actions(engine, Subject("reach-probe", frozenset(roles)))


@dataclass(frozen=True)
class Reach:
    """What the acting administrator may hand out or touch: their own admin_ui actions."""

    engine: Engine
    actions: frozenset[str]

    def may_grant(self, role: str) -> bool:
        return carried_actions(self.engine, [role]) <= self.actions

    def may_change(self, roles) -> bool:
        """Whether an account holding ``roles`` carries nothing beyond the actor's own rights."""
        return carried_actions(self.engine, roles) <= self.actions

    def check_grant(self, role: str) -> None:
        if not self.may_grant(role):
            raise Forbidden(f"you may not grant {role!r}: it carries admin rights you do not have")

    def check_change(self, subject_id: str, roles) -> None:
        if not self.may_change(roles):
            raise Forbidden(f"you may not change {subject_id}: the account has admin rights you do not have")
