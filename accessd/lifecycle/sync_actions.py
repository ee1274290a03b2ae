"""The planned actions of a directory sync, one dataclass per kind, and the plan that holds them.

Kinds, in the order a plan lists and applies them: :class:`Leave` (disable now, or schedule a
departure), :class:`Update` (a mover: profile, DN or attribute changes), :class:`Join` (a new
account, disabled when the person already departed), :class:`Reenable` (a returning employee
the directory itself had disabled), :class:`Grant` and :class:`Revoke` (directory roles).

A :class:`SyncPlan` is stored as JSON on its ``SyncRun`` (``sync show --json`` prints it, approval
reads it back): ``{"kind", "actions", "warnings", "high_water_mark"}``, each action an object with
``"action"`` (its kind) followed by the fields of its dataclass. ``to_json`` / ``from_json`` keep
that shape; dates are ISO strings and role lists ``[role, granting group DN]`` pairs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from accessd import clock


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists (the JSON the plan is stored as)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Action:
    """What every kind shares: its JSON form and its one line for humans."""

    action: ClassVar[str]
    subject_id: str
    reason: str | None

    def to_json(self) -> dict:
        return {"action": self.action, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_json(cls, data: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def describe(self) -> str:
        raise NotImplementedError

    def reduction(self) -> tuple | None:
        """What this does to whom, for a disable, a scheduled departure or a role removal."""
        return None


def _role_pairs(roles) -> list[tuple[str, str]]:
    return [tuple(r) for r in roles]


def _role_names(roles: list[tuple[str, str]]) -> str:
    return ", ".join(r for r, _ in roles) or "no roles"


@dataclass
class _OnAccount(_Action):
    """An action on an existing account (every kind but :class:`Join`)."""

    account_id: int
    subject_id: str


@dataclass
class _RoleChange(_OnAccount):
    role: str


@dataclass
class Leave(_OnAccount):
    """Disable an account now (``effective`` None or past) or schedule its departure."""

    action: ClassVar[str] = "leave"
    reason: str | None
    effective: str | None = None  # ISO date of the last working day

    def describe(self) -> str:
        ahead = self.effective and self.effective >= clock.today().isoformat()
        when = f" on {self.effective}" if ahead else ""
        verb = "schedule departure of" if when else "disable"
        return f"{verb} {self.subject_id}{when}: {self.reason}"

    def reduction(self) -> tuple:
        return ("leave", self.account_id, self.effective)


@dataclass
class Update(_OnAccount):
    """A mover: synced fields that changed, each as ``[old, new]``."""

    action: ClassVar[str] = "update"
    changes: dict[str, list]
    reason: str

    def describe(self) -> str:
        parts = [p for f, (old, new) in sorted(self.changes.items()) for p in _change_texts(f, old, new)]
        return f"update {self.subject_id}: " + "; ".join(parts)


def _change_texts(name: str, old, new) -> list[str]:
    if name != "attributes":
        return [f"{name}: {old!r} -> {new!r}"]
    old, new = old or {}, new or {}
    return [
        f"attributes.{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


@dataclass
class Join(_Action):
    """A new account for directory ``key`` (``fields`` as JSON values), with its roles."""

    action: ClassVar[str] = "join"
    key: str
    subject_id: str
    fields: dict[str, Any]
    status: str  # active, or disabled when the person already departed
    reason: str
    end_date: str | None = None
    roles: list[tuple[str, str]] = field(default_factory=list)
    take_employee_number_from: int | None = None  # a departed account whose number this one takes

    def __post_init__(self) -> None:
        self.roles = _role_pairs(self.roles)

    def describe(self) -> str:
        state = "" if self.status == "active" else f" (disabled: {self.reason})"
        return f"join {self.subject_id} ({self.fields['directory_dn']}) with {_role_names(self.roles)}{state}"


@dataclass
class Reenable(_OnAccount):
    """A returning employee the directory had disabled: re-enable with these roles."""

    action: ClassVar[str] = "reenable"
    reason: str
    roles: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roles = _role_pairs(self.roles)

    def describe(self) -> str:
        return f"re-enable {self.subject_id} with {_role_names(self.roles)}: {self.reason}"


@dataclass
class Grant(_RoleChange):
    """A directory role granted through membership of group ``source_ref``."""

    action: ClassVar[str] = "grant"
    source_ref: str
    reason: str

    def describe(self) -> str:
        return f"grant {self.role} to {self.subject_id} ({self.reason})"


@dataclass
class Revoke(_RoleChange):
    """A directory grant (``grant_id``) removed: no group grants the role any more."""

    action: ClassVar[str] = "revoke"
    grant_id: int
    source_ref: str | None
    reason: str

    def describe(self) -> str:
        return f"revoke {self.role} from {self.subject_id} ({self.reason})"

    def reduction(self) -> tuple:
        return ("revoke", self.account_id, self.role)


Action = Leave | Update | Join | Reenable | Grant | Revoke
KINDS: tuple[type[_Action], ...] = (Leave, Update, Join, Reenable, Grant, Revoke)  # plan order
_BY_NAME = {k.action: k for k in KINDS}


def action_from_json(data: dict) -> Action:
    return _BY_NAME[data["action"]].from_json(data)


def in_plan_order(actions: list[Action]) -> list[Action]:
    """``actions`` grouped by kind in plan order, keeping their order within a kind."""
    return sorted(actions, key=lambda a: KINDS.index(type(a)))


@dataclass
class SyncPlan:
    """Ordered actions plus warnings. Deterministic for the same inputs."""

    kind: str
    actions: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    high_water_mark: str | None = None

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "actions": [a.to_json() for a in self.actions],
            "warnings": self.warnings,
            "high_water_mark": self.high_water_mark,
        }

    @classmethod
    def from_json(cls, data: dict) -> SyncPlan:
        return cls(
            kind=data["kind"],
            actions=[action_from_json(a) for a in data["actions"]],
            warnings=list(data.get("warnings", [])),
            high_water_mark=data.get("high_water_mark"),
        )

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for a in self.actions:
            c[a.action] += 1
        return dict(sorted(c.items()))

    def of_kind(self, kind: type[_Action]) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def reductions(self) -> dict[tuple, Action]:
        """Disables, scheduled departures and role removals, keyed by what they do to whom."""
        return {key: a for a in self.actions if (key := a.reduction()) is not None}

    def reduced_accounts(self) -> set[int]:
        """Existing accounts this plan would disable (or schedule to leave) or strip of a role."""
        return {a.account_id for a in self.reductions().values()}


def describe_action(action: Action) -> str:
    """One line for humans: what happens to whom."""
    return action.describe()
