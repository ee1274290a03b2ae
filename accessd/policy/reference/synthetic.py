"""Seeded random policies, subjects and requests (equivalence tests and benchmarks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from accessd.policy.engine import Subject
from accessd.policy.policyset import PolicySet

REGIONS = ("north", "south", "east", "")
EMAILS = ("a@example.org", "b@example.org", "")


def _catalogue(n_roles: int, n_fields: int, n_purposes: int) -> str:
    lines = ["version: 1", "purposes:"]
    lines += [f"  p{i}: purpose {i}" for i in range(n_purposes)]
    lines += ["roles:"] + [f"  r{i}: role {i}" for i in range(n_roles)]
    lines += ["bases:", "  b0: basis 0", "  b1: basis 1"]
    lines += [
        "subject_attributes:",
        "  region: {type: string}",
        "  level: {type: int}",
        "  trusted: {type: bool}",
        "  email: {type: string}",
        "  org.unit: {type: string}",
        "resource_types:",
    ]
    props = [
        "      owner: {type: string}",
        "      region: {type: string}",
        "      until: {type: date}",
        "      hold: {type: bool}",
        "      opt: {type: bool}",
        "      score: {type: int}",
        "      state: {type: string, default: open}",
        "      ownerID: {type: string}",
        "      creator.id: {type: string}",
    ]
    # t0: the big type; t1: a default purpose; t2: no fields at all (record-level decisions only)
    for t, acts, nf, default in (
        ("t0", "[read, update, delete]", n_fields, None),
        ("t1", "[read, write]", 10, "p0"),
        ("t2", "[read, update, delete]", 0, "p1"),
    ):
        lines += [f"  {t}:", f"    actions: {acts}"]
        lines += [f"    default_purpose: {default}"] if default else []
        lines += ["    properties:", *props]
        if nf:
            lines += ["    fields:"]
            lines += [f"      f{i}: {{sensitivity: confidential, mask: redact}}" for i in range(nf)]
    return "\n".join(lines) + "\n"


# (condition, may be negated): a comparison that a missing attribute could satisfy is guarded,
# and not negated where the negation would be refused (!(a != "" && b != "" && a == b) holds
# for a missing a).
_ATOMS = (
    ("r.obj.owner == r.sub.id", False),
    ('r.obj.owner != "" && r.obj.owner != r.sub.id', True),
    ('r.obj.region != "" && r.sub.region != "" && r.obj.region == r.sub.region', False),
    ('r.obj.until != "" && r.obj.until < r.env.today', True),
    ('r.obj.until == "" || r.obj.until >= r.env.today', True),
    ('r.obj.until != "" && r.obj.until <= r.env.today', True),
    ("r.obj.opt", True),
    ("r.obj.hold", True),
    ("r.sub.trusted", True),
    ("r.sub.level > 2", True),
    ("r.obj.score >= 3", True),
    ('g(r.sub.id, "basis:b0")', True),
    ('g(r.sub.id, "basis:b1")', True),
    ('r.obj.region in ["north", "south"]', True),
    ('r.obj.state not in ("closed", "void")', True),
    ('r.purpose == "p1"', True),
    ('r.act != "update"', True),
    ('r.field != "f0"', True),
    ('r.obj.ownerID != "" && r.sub.email != "" && r.obj.ownerID == r.sub.email', False),
    ("r.obj.creator.id == r.sub.id", False),
    ('r.obj.creator.id != "" && r.obj.creator.id != r.sub.id', True),
    ('r.sub.org.unit != "" && r.obj.region != "" && r.sub.org.unit == r.obj.region', False),
    ("r.sub.level != 0 && r.obj.score != 0 && r.sub.level >= r.obj.score", False),
)


def _condition(rng: random.Random, n_roles: int) -> str:
    atoms = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        if rng.random() < 0.85:
            a, negatable = rng.choice(_ATOMS)
        else:
            a, negatable = f'g(r.sub.id, "r{rng.randrange(n_roles)}")', True
        if rng.random() < 0.25 and negatable:
            a = f"!({a})"
        atoms.append(a)
    out = atoms[0]
    for a in atoms[1:]:
        out = f"({out}) {rng.choice(('&&', '||'))} ({a})" if rng.random() < 0.5 else f"{out} && {a}"
    return out


def generate_policy(
    seed: int,
    n_roles: int = 12,
    n_fields: int = 12,
    n_rules: int = 150,
    cond_share: float = 0.3,
    deny_share: float = 0.12,
    n_purposes: int = 4,
    star_actions: bool = False,
) -> PolicySet:
    """A random but valid policy: role DAG (bases included), nested field groups, wildcard,
    group and field rules, conditional allow and deny rules (with g() conditions), camelCase and
    dotted property names, default purposes, and a type without fields (``t2``)."""
    rng = random.Random(seed)
    rows = ["# generated"]
    depth = {}
    for i in range(n_roles):
        depth[i] = 0
        for j in rng.sample(range(i), min(i, rng.choice((0, 0, 1, 1, 2)))):
            if depth[j] + 1 <= 7:
                rows.append(f"g, r{i}, r{j}")
                depth[i] = max(depth[i], depth[j] + 1)
        if rng.random() < 0.2:
            rows.append(f"g, r{i}, basis:b{rng.randrange(2)}")
    groups = {}
    for t, nf in (("t0", n_fields), ("t1", 10)):  # t2 has no fields, so no groups
        names = [f"{t}g{k}" for k in range(max(2, nf // 4))]
        used = set()
        for i in range(nf):
            for gname in rng.sample(names, rng.choice((0, 1, 1, 2))):
                rows.append(f"g2, f{i}, {gname}, {t}")
                used.add(gname)
        for k in range(1, len(names)):
            if rng.random() < 0.4:
                rows.append(f"g2, {names[k - 1]}, {names[k]}, {t}")
                used.add(names[k])
        groups[t] = [g for g in names if g in used] or [f"f{i}" for i in range(nf)]  # only declared groups
    acts = {"t0": ("read", "update", "delete"), "t1": ("read", "write"), "t2": ("read", "update", "delete")}
    nfields = {"t0": n_fields, "t1": 10, "t2": 0}
    for n in range(n_rules):
        x = rng.random()
        t = "t0" if x < 0.75 else ("t1" if x < 0.93 else "t2")
        x = rng.random()
        sub = (
            "*" if x < 0.05 else (f"basis:b{rng.randrange(2)}" if x < 0.08 else f"r{rng.randrange(n_roles)}")
        )
        act = "*" if star_actions and rng.random() < 0.15 else rng.choice(acts[t])
        x = rng.random()
        if not nfields[t] or x < 0.08:
            fld = "*"
        else:
            fld = rng.choice(groups[t]) if x < 0.35 else f"f{rng.randrange(nfields[t])}"
        purpose = "*" if rng.random() < 0.2 else f"p{rng.randrange(n_purposes)}"
        deny = rng.random() < deny_share
        if rng.random() < cond_share or (deny and rng.random() < 0.7):
            cond = _condition(rng, n_roles)
        else:
            cond = "False" if rng.random() < 0.01 else "True"
        if deny:
            eft, level = "deny", "-"
        else:
            eft, level = "allow", ("full" if rng.random() < 0.7 else "mask")
        rows.append(f"p, {sub}, {t}, {act}, {fld}, {purpose}, {cond}, {eft}, {level}, rule{n}")
    return PolicySet.from_files(
        {"policy.csv": "\n".join(rows) + "\n", "catalogue.yaml": _catalogue(n_roles, n_fields, n_purposes)}
    )


@dataclass(frozen=True)
class Request:
    subject: Subject
    rtype: str
    action: str
    field: str | None
    purpose: str | None
    properties: dict
    today: date


def generate_subjects(policy: PolicySet, n: int, seed: int, max_roles: int = 3) -> list[Subject]:
    rng = random.Random(seed)
    roles = sorted(policy.catalogue.roles)
    subjects = []
    for i in range(n):
        k = rng.choice([0] + [j for j in range(1, max_roles + 1) for _ in range(2)])
        attrs: dict = {}
        for name, spec in policy.catalogue.subject_attributes.items():
            _put(attrs, name, _value(rng, spec.type, [], date(2025, 6, 1), name))
        subjects.append(Subject(f"u{i}", frozenset(rng.sample(roles, k)), attrs))
    return subjects


def _put(d: dict, name: str, value) -> None:
    """Set a dotted name as a nested member: ``a.b`` -> ``d["a"]["b"]``."""
    *outer, last = name.split(".")
    for seg in outer:
        d = d.setdefault(seg, {})
    d[last] = value


def _value(rng: random.Random, typ: str, ids: list[str], today: date, name: str = ""):
    if typ == "bool":
        return rng.random() < 0.5
    if typ == "int":
        return rng.randrange(6)
    if typ == "date":
        return rng.choice(
            (
                "",
                "",
                today.isoformat(),
                (today - timedelta(days=1)).isoformat(),
                (today + timedelta(days=1)).isoformat(),
                "2001-01-01",
                "2099-12-31",
            )
        )
    if "region" in name or name == "org.unit":
        return rng.choice(REGIONS)
    if name in ("email", "ownerID"):
        return rng.choice(EMAILS)
    if name in ("status", "state"):
        return rng.choice(("draft", "issued", "void", "open", "closed", ""))
    return rng.choice(ids) if ids and rng.random() < 0.85 else rng.choice(("", "nobody", "north"))


def generate_requests(policy: PolicySet, subjects: list[Subject], n: int, seed: int) -> list[Request]:
    """Requests over every type, action, purpose and field (and the record, field None), with
    property values at the edges: dates equal to today, a day either side, empty; owner ids equal
    to the subject's; consent and hold flags in every combination."""
    rng = random.Random(seed)
    cat = policy.catalogue
    types = sorted(cat.types)
    purposes = sorted(cat.purposes)
    days = [date(2025, 6, 1), date(2025, 1, 15), date(2030, 12, 31)]
    # Where each role has rules, so that most requests are ones a rule speaks to.
    parents: dict[str, set[str]] = {}
    for child, parent in policy.role_links:
        parents.setdefault(child, set()).add(parent)
    cells: dict[str, list[tuple[str, str, str]]] = {}
    for r in policy.rules:
        acts = cat.types[r.rtype].actions if r.act == "*" else (r.act,)
        ps = purposes if r.purpose == "*" else (r.purpose,)
        cells.setdefault(r.sub, []).extend((r.rtype, a, p) for a in acts for p in ps)
    out = []
    for _ in range(n):
        s = rng.choice(subjects)
        reach, todo = set(s.roles), list(s.roles)
        while todo:
            for p in parents.get(todo.pop(), ()):
                if p not in reach:
                    reach.add(p)
                    todo.append(p)
        options = [c for role in sorted(reach) for c in cells.get(role, ())]
        if options and rng.random() < 0.7:
            tname, act, purpose = rng.choice(options)
        else:
            tname = rng.choice(types)
            act, purpose = rng.choice(cat.types[tname].actions), rng.choice(purposes)
        t = cat.types[tname]
        today = rng.choice(days)
        fld = None if rng.random() < 0.1 or not t.fields else rng.choice(list(t.fields))
        ids = [s.id, s.id, "u0", "u1"]
        props: dict = {}
        for name, spec in t.properties.items():
            _put(props, name, _value(rng, spec.type, ids, today, name))
        if purpose == t.default_purpose and rng.random() < 0.3:
            purpose = None  # the engine (and the casbin reference) take the type's default
        out.append(Request(s, tname, act, fld, purpose, props, today))
    return out
