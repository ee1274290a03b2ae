"""A policy revision: the three files, loaded and checked against each other into a PolicySet.

A policy is three files, kept together as one revision:

- ``model.conf``     the casbin model; it must be exactly :data:`MODEL_CONF` (the engine implements
                     that matcher, so a different model would make the two disagree).
- ``policy.csv``     casbin policy rows (:mod:`accessd.policy.rules`): ``p`` rules, ``g`` role
                     inheritance, ``g2`` field groups.
- ``catalogue.yaml`` the vocabulary (:mod:`accessd.policy.catalogue`).

A directory may also hold its own test cases, ``tests/*.yaml``: they travel with the revision and
the engine ignores them. Here each file is parsed by its module and then checked across files:
every name a row uses is declared, role and group chains are acyclic and within casbin's depth,
each condition type-checks (:mod:`accessd.policy.condition_check`), and no mask rule reaches a
field that cannot be masked. Every mistake raises :class:`accessd.errors.PolicyError` naming the
file and the 1-based line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from accessd.errors import PolicyError
from accessd.policy.catalogue import CATALOGUE_FILE, Catalogue, check_name, parse_catalogue
from accessd.policy.condition_check import ConditionError, check_condition
from accessd.policy.rules import RULE_ID, RULES_FILE, RawRules, Rule, parse_rules

MODEL_FILE = "model.conf"
POLICY_FILES = (MODEL_FILE, RULES_FILE, CATALOGUE_FILE)

MODEL_CONF = """\
[request_definition]
r = sub, rtype, act, field, purpose, level, obj, env

[policy_definition]
p = sub, rtype, act, field, purpose, cond, eft, level, id

[role_definition]
g = _, _
g2 = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.rtype == p.rtype && (p.sub == "*" || g(r.sub.id, p.sub)) && (p.act == "*" || r.act == p.act) \
&& (p.field == "*" || g2(r.field, p.field, r.rtype)) && (p.purpose == "*" || r.purpose == p.purpose) \
&& (p.eft == "deny" || p.level == "full" || p.level == r.level) && eval(p.cond)
"""

#: casbin's role manager follows at most this many links from a subject (max_hierarchy_level 10
#: checks the subject itself plus 9 hops). A subject's grant is the first hop, so role
#: inheritance chains may be at most MAX_ROLE_CHAIN links long; field-group chains (which start
#: at the field itself) may be at most MAX_HOPS links long.
MAX_HOPS = 9
MAX_ROLE_CHAIN = MAX_HOPS - 1

#: casbin's request value for ``field`` when a decision is about the whole record.
RECORD_FIELD = "*"


@dataclass(frozen=True)
class PolicySet:
    """A validated policy. Build with :func:`load_policy_dir` or :meth:`PolicySet.from_files`."""

    files: Mapping[str, str]
    catalogue: Catalogue
    rules: tuple[Rule, ...]
    role_links: tuple[tuple[str, str], ...]  # (role, inherited role or basis)
    group_links: tuple[tuple[str, str, str], ...]  # (field or group, group, rtype)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)  # rtype -> group names

    @classmethod
    def from_files(cls, files: Mapping[str, str]) -> PolicySet:
        return _build(dict(files))


def load_policy_dir(path: str | Path) -> PolicySet:
    """Read model.conf, policy.csv and catalogue.yaml from ``path`` and validate them."""
    base = Path(path)
    if not base.is_dir():
        raise PolicyError(str(base), None, "not a directory")
    files: dict[str, str] = {}
    for name in POLICY_FILES:
        p = base / name
        if not p.is_file():
            raise PolicyError(name, None, f"missing (a policy directory needs {', '.join(POLICY_FILES)})")
        try:
            files[name] = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(name, None, f"not UTF-8: {exc}") from None
    # the policy's own test cases travel with it (stored in the revision, exported back);
    # the engine ignores them
    for p in sorted((base / "tests").glob("*.yaml")):
        files[f"tests/{p.name}"] = p.read_text(encoding="utf-8")
    return PolicySet.from_files(files)


def _is_test_file(name: str) -> bool:
    return name.startswith("tests/") and name.endswith(".yaml") and "/" not in name[len("tests/") :]


def _model_sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line = pending + line
        pending = ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        out[f"{section}.{key.strip()}"] = "".join(value.split()) if sep else "?"
    return out


def _check_model(text: str) -> None:
    want = _model_sections(MODEL_CONF)
    got = _model_sections(text)
    for key, value in want.items():
        if got.get(key) != value:
            line = _find_line(text, key.split(".", 1)[1] + " ") or _find_line(text, key.split(".")[0])
            raise PolicyError(
                MODEL_FILE,
                line,
                f"{key} differs from the accessd model; the engine implements exactly the model in "
                "accessd.policy.policyset.MODEL_CONF",
            )
    extra = sorted(set(got) - set(want))
    if extra:
        raise PolicyError(MODEL_FILE, _find_line(text, extra[0].split(".", 1)[1]), f"unexpected {extra[0]}")


def _find_line(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle) or needle in line:
            return i
    return None


def _longest_chain(
    edges: Mapping[str, set[str]], start: str, seen: tuple[str, ...] = ()
) -> tuple[int, list[str]]:
    """Length of the longest path from start; raises _Cycle on a cycle."""
    if start in seen:
        raise _Cycle([*seen[seen.index(start) :], start])
    best, best_path = 0, [start]
    for nxt in sorted(edges.get(start, ())):
        length, path = _longest_chain(edges, nxt, (*seen, start))
        if length + 1 > best:
            best, best_path = length + 1, [start, *path]
    return best, best_path


class _Cycle(Exception):
    def __init__(self, path: list[str]):
        self.path = path


def _build(files: dict[str, str]) -> PolicySet:
    for name in files:
        if name not in POLICY_FILES and not _is_test_file(name):
            raise PolicyError(name, None, f"unexpected file (a policy is {', '.join(POLICY_FILES)})")
    files.setdefault(MODEL_FILE, MODEL_CONF)
    for name in (RULES_FILE, CATALOGUE_FILE):
        if name not in files:
            raise PolicyError(name, None, "missing")
    _check_model(files[MODEL_FILE])
    cat = parse_catalogue(files[CATALOGUE_FILE])
    raw = parse_rules(files[RULES_FILE])
    _check_role_links(raw, cat)
    groups = _check_group_links(raw, cat)
    ids: dict[str, int] = {}
    for r in raw.rules:
        _check_rule(r, cat, groups, ids)
    policy = PolicySet(
        files=MappingProxyType(dict(files)),
        catalogue=cat,
        rules=tuple(raw.rules),
        role_links=tuple((c, p) for c, p, _ in raw.g),
        group_links=tuple((m, g, t) for m, g, t, _ in raw.g2),
        groups=MappingProxyType({t: frozenset(v) for t, v in groups.items()}),
    )
    _check_masks(policy)
    return policy


def _check_role_links(raw: RawRules, cat: Catalogue) -> None:
    """g rows: role inheritance (and bases), acyclic and within casbin's depth."""
    f = RULES_FILE
    parents: dict[str, set[str]] = {}
    g_line: dict[tuple[str, str], int] = {}
    for child, parent, n in raw.g:
        if child not in cat.roles:
            what = "a basis cannot inherit" if child in cat.bases else "unknown role"
            raise PolicyError(f, n, f"{what} {child!r} (roles are declared in {CATALOGUE_FILE})")
        if not cat.is_principal(parent):
            raise PolicyError(f, n, f"unknown role or basis {parent!r}")
        parents.setdefault(child, set()).add(parent)
        g_line.setdefault((child, parent), n)
    for role in sorted(parents):
        try:
            length, path = _longest_chain(parents, role)
        except _Cycle as cyc:
            n = g_line.get((cyc.path[0], cyc.path[1]))
            raise PolicyError(f, n, f"role inheritance cycle: {' -> '.join(cyc.path)}") from None
        if length > MAX_ROLE_CHAIN:
            raise PolicyError(
                f,
                g_line[(path[0], path[1])],
                f"role inheritance too deep ({' -> '.join(path)}: {length} links, at most {MAX_ROLE_CHAIN}; "
                "casbin stops following links after 10 levels)",
            )


def _check_group_links(raw: RawRules, cat: Catalogue) -> dict[str, set[str]]:
    """g2 rows: field groups per resource type, acyclic and within casbin's depth. Returns
    rtype -> group names."""
    f = RULES_FILE
    groups: dict[str, set[str]] = {t: set() for t in cat.types}
    gparents: dict[str, dict[str, set[str]]] = {t: {} for t in cat.types}
    g2_line: dict[tuple[str, str, str], int] = {}
    for _member, group, rtype, n in raw.g2:
        if rtype not in cat.types:
            raise PolicyError(f, n, f"unknown resource type {rtype!r}")
        if group in cat.types[rtype].fields:
            raise PolicyError(f, n, f"{group!r} is a field of {rtype}; a group needs its own name")
        check_name(group, f, n, "bad group name")
        groups[rtype].add(group)
    for member, group, rtype, n in raw.g2:
        if member not in cat.types[rtype].fields and member not in groups[rtype]:
            raise PolicyError(f, n, f"unknown field or group {member!r} of {rtype}")
        gparents[rtype].setdefault(member, set()).add(group)
        g2_line.setdefault((member, group, rtype), n)
    for rtype, edges in gparents.items():
        for member in sorted(edges):
            try:
                length, path = _longest_chain(edges, member)
            except _Cycle as cyc:
                n = g2_line.get((cyc.path[0], cyc.path[1], rtype))
                raise PolicyError(f, n, f"field group cycle in {rtype}: {' -> '.join(cyc.path)}") from None
            if length > MAX_HOPS:
                raise PolicyError(
                    f,
                    g2_line[(path[0], path[1], rtype)],
                    f"field groups nested too deep ({' -> '.join(path)})",
                )
    return groups


def _check_rule(r: Rule, cat: Catalogue, groups: Mapping[str, set[str]], ids: dict[str, int]) -> None:
    """A p row: its id is well formed and new (``ids``: id -> line so far), every name it uses is
    declared, effect and level agree, and its condition type-checks."""
    f, n = RULES_FILE, r.line
    if not RULE_ID.match(r.id):
        raise PolicyError(f, n, f"bad rule id {r.id!r} (letters, digits, _ . : -; no inline comments)")
    if r.id in ids:
        raise PolicyError(f, n, f"duplicate rule id {r.id!r} (first on line {ids[r.id]})")
    ids[r.id] = n
    if r.sub != "*" and not cat.is_principal(r.sub):
        raise PolicyError(f, n, f"{r.id}: unknown role {r.sub!r}")
    if r.rtype not in cat.types:
        raise PolicyError(f, n, f"{r.id}: unknown resource type {r.rtype!r}")
    t = cat.types[r.rtype]
    if r.act != "*" and r.act not in t.actions:
        raise PolicyError(f, n, f"{r.id}: unknown action {r.act!r} for {r.rtype}")
    if r.field != "*" and not t.fields:
        raise PolicyError(f, n, f"{r.id}: {r.rtype} has no fields; its rules take field *")
    if r.field != "*" and r.field not in t.fields and r.field not in groups[r.rtype]:
        raise PolicyError(f, n, f"{r.id}: unknown field or group {r.field!r} of {r.rtype}")
    if r.purpose != "*" and r.purpose not in cat.purposes:
        raise PolicyError(f, n, f"{r.id}: unknown purpose {r.purpose!r}")
    if r.eft not in ("allow", "deny"):
        raise PolicyError(f, n, f"{r.id}: eft must be allow or deny, not {r.eft!r}")
    if r.eft == "allow" and r.level not in ("full", "mask"):
        raise PolicyError(f, n, f"{r.id}: level of an allow rule must be full or mask, not {r.level!r}")
    if r.eft == "deny" and r.level != "-":
        raise PolicyError(f, n, f"{r.id}: level of a deny rule must be '-', not {r.level!r}")
    try:
        check_condition(r.cond, cat, r.rtype)
    except ConditionError as exc:
        raise PolicyError(f, n, f"{r.id}: condition {r.cond!r}: {exc}") from None


def _check_masks(policy: PolicySet) -> None:
    """A mask rule must not reach a field that cannot be masked."""
    types = policy.catalogue.types
    for r in policy.rules:
        if r.eft == "allow" and r.level == "mask":
            for fname in expand_fields(policy, r.rtype, r.field):
                if fname is not None and types[r.rtype].fields[fname].mask == "none":
                    raise PolicyError(
                        RULES_FILE,
                        r.line,
                        f"{r.id}: grants a masked view of {r.rtype}.{fname}, whose catalogue mask is none",
                    )


# --------------------------------------------------------------------------------------------
# field groups, as casbin's g2 follows them


def field_groups(policy: PolicySet, rtype: str) -> dict[str, set[str]]:
    """field -> every group it belongs to (transitively), plus itself."""
    parents: dict[str, set[str]] = {}
    for member, group, t in policy.group_links:
        if t == rtype:
            parents.setdefault(member, set()).add(group)
    out = {}
    for f in policy.catalogue.types[rtype].fields:
        seen = {f}
        todo = [(f, 0)]
        while todo:
            name, dist = todo.pop()
            if dist >= MAX_HOPS:
                continue
            for p in parents.get(name, ()):
                if p not in seen:
                    seen.add(p)
                    todo.append((p, dist + 1))
        out[f] = seen
    return out


def expand_fields(policy: PolicySet, rtype: str, field: str) -> tuple[str | None, ...]:
    """The concrete fields a rule's field column covers; ``*`` also covers the record (None)."""
    fields = policy.catalogue.types[rtype].fields
    if field == "*":
        return (*fields, None)
    groups = field_groups(policy, rtype)
    return tuple(f for f in fields if field in groups[f])
