"""What a person may read or change, worked out statically from their role set over the policy
in force -- as ``accessd policy diff`` does (:mod:`accessd.policy.diff`), for one role set instead
of one role at a time.

Per resource type, action and purpose: the fields granted in full or masked, the conditional
rules that grant them (``when``) and the conditional denies that can take them away (``unless``).
Conditions about the record or the person are not evaluated, so a conditional grant names the
rules it depends on. No Flask, no database writes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from accessd.pdp import revisions
from accessd.policy.compile import CompiledPolicy
from accessd.policy.diff import entry_access, settler


@dataclass(frozen=True)
class AccessRow:
    """Fields of one (type, action, purpose) with the same access (``*``: the whole record)."""

    rtype: str
    action: str
    purpose: str
    level: str  # allow (in full) | mask
    fields: tuple[str, ...]
    when: tuple[str, ...] = ()  # granted only if one of these rules' conditions holds
    unless: tuple[str, ...] = ()  # conditional deny rules that can take it away

    @property
    def rules(self) -> str:
        """``if therapist-identity-own unless retention-expired-read``; "" when unconditional."""
        parts = []
        if self.when:
            parts.append(f"if {' / '.join(self.when)}")
        if self.unless:
            parts.append(f"unless {' / '.join(self.unless)}")
        return " ".join(parts)


#: compiled policies by (revision, digest): revisions never change, so a compiled one stays true;
#: only the newest few are kept
_compiled_cache: dict[tuple[int, str], CompiledPolicy] = {}
_compiled_lock = threading.Lock()


def compiled_in_force(session: Session) -> tuple[int | None, CompiledPolicy | None]:
    """(revision number, its compiled policy) of the revision in force; (None, None) when no
    policy is loaded. Compiled once per revision and process."""
    rev = revisions.current(session)
    if rev is None:
        return None, None
    key = (rev.id, rev.digest)
    with _compiled_lock:
        hit = _compiled_cache.get(key)
    if hit is None:
        hit = CompiledPolicy(revisions.policy_of(rev))
        with _compiled_lock:
            if len(_compiled_cache) >= 4:
                _compiled_cache.clear()
            _compiled_cache[key] = hit
    return rev.id, hit


def effective_access(compiled: CompiledPolicy, roles) -> list[AccessRow]:
    """What ``roles`` (with everything they inherit) grant under ``compiled``, statically: per
    (type, action, purpose) in catalogue order, the fields with the same access together (the
    record first, as ``*``). Fields no rule grants, or an unconditional deny removes, are left
    out. Conditions on the record, the person or the date are not evaluated: a conditional grant
    shows the rules it depends on (conditions on the roles held and the purpose are settled)."""
    cat = compiled.policy.catalogue
    principals = compiled.principals(None, roles)
    table = compiled.merge(principals)
    out = []
    for rtype, t in cat.types.items():
        names: tuple = (None, *t.fields)
        for action in t.actions:
            for purpose in cat.purposes:
                row = table.get((rtype, action, purpose))
                if not row:
                    continue
                groups: dict = {}
                for f in names:
                    a = entry_access(row.get(f), settler(compiled, principals, rtype, action, purpose, f))
                    if a.level != "none":
                        groups.setdefault(a, []).append("*" if f is None else f)
                for a, fields in groups.items():
                    out.append(AccessRow(rtype, action, purpose, a.level, tuple(fields), a.when, a.unless))
    return out
