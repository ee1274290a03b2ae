"""The rules file (``policy.csv``): casbin policy rows, split exactly as casbin splits them.

``p`` rows are rules (:class:`Rule`), ``g`` rows role inheritance, ``g2`` rows field groups.
:func:`parse_rules` checks each row's shape (row type, column count, no empty column) and raises
:class:`accessd.errors.PolicyError` naming ``policy.csv`` and the 1-based line; what the names in
a row refer to is checked against the catalogue by :mod:`accessd.policy.policyset`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from accessd.errors import PolicyError

RULES_FILE = "policy.csv"

#: a rule id: letters, digits and ``_ . : -`` (no spaces, so no inline comments)
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Rule:
    sub: str
    rtype: str
    act: str
    field: str
    purpose: str
    cond: str
    eft: str  # allow | deny
    level: str  # full | mask | -
    id: str
    line: int
    order: int  # position among p rows, 0-based

    def row(self) -> list[str]:
        return [
            self.sub,
            self.rtype,
            self.act,
            self.field,
            self.purpose,
            self.cond,
            self.eft,
            self.level,
            self.id,
        ]


def split_policy_line(line: str) -> list[str]:
    """Tokenise one policy line exactly as casbin's ``load_policy_line`` does.

    Commas split tokens except inside ( ) or [ ]; quotes are NOT special. Raises ValueError on
    unbalanced brackets (casbin would crash on them).
    """
    stack: list[str] = []
    tokens: list[str] = []
    for c in line:
        if c in "[(":
            stack.append(c)
            if not tokens:
                raise ValueError("line starts with a bracket")
            tokens[-1] += c
        elif c in "])":
            if not stack:
                raise ValueError(f"unbalanced {c!r}")
            stack.pop()
            tokens[-1] += c
        elif c == "," and not stack:
            tokens.append("")
        elif not tokens:
            tokens.append(c)
        else:
            tokens[-1] += c
    if stack:
        raise ValueError("unclosed bracket")
    return [t.strip() for t in tokens]


@dataclass
class RawRules:
    """The rows of a rules file, each with its line: rules, g (role, inherited, line) and
    g2 (member, group, rtype, line)."""

    rules: list[Rule]
    g: list[tuple[str, str, int]]
    g2: list[tuple[str, str, str, int]]


def parse_rules(text: str) -> RawRules:
    """Split ``policy.csv`` into rows of the right shape; names are not checked here."""
    f = RULES_FILE
    out = RawRules([], [], [])
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = split_policy_line(line)
        except ValueError as exc:
            raise PolicyError(f, n, f"cannot split line: {exc}") from None
        key = tokens[0]
        args = tokens[1:]
        want = {"p": 9, "g": 2, "g2": 3}.get(key)
        if want is None:
            raise PolicyError(f, n, f"unknown row type {key!r} (expected p, g or g2)")
        if len(args) != want:
            cols = {
                "p": "sub, rtype, act, field, purpose, cond, eft, level, id",
                "g": "role, inherited_role",
                "g2": "field_or_group, group, rtype",
            }[key]
            hint = " (conditions may not contain top-level commas)" if key == "p" and len(args) > want else ""
            raise PolicyError(f, n, f"{key} row has {len(args)} columns, expected {want}: {cols}{hint}")
        if any(a == "" for a in args):
            raise PolicyError(f, n, f"{key} row has an empty column")
        if key == "p":
            out.rules.append(Rule(*args, line=n, order=len(out.rules)))
        elif key == "g":
            out.g.append((args[0], args[1], n))
        else:
            out.g2.append((args[0], args[1], args[2], n))
    return out
