"""Load and validate a policy directory (casbin model + rules + field catalogue) into a PolicySet.

A policy is three files, kept together as one revision:

- ``model.conf``     the casbin model; it must be exactly :data:`MODEL_CONF` (the engine implements
                     that matcher, so a different model would make the two disagree).
- ``policy.csv``     casbin policy rows: ``p`` rules, ``g`` role inheritance, ``g2`` field groups.
- ``catalogue.yaml`` the vocabulary: purposes, roles, bases, subject attributes, resource types
                     with their actions, properties (policy inputs) and fields.

Every mistake raises :class:`accessd.errors.PolicyError` naming the file and the 1-based line.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from accessd.errors import PolicyError

MODEL_FILE = "model.conf"
RULES_FILE = "policy.csv"
CATALOGUE_FILE = "catalogue.yaml"
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

BASIS_PREFIX = "basis:"
PROPERTY_TYPES = ("string", "bool", "date", "int")
SENSITIVITIES = ("internal", "confidential", "restricted", "special_category")
MASK_STYLES = ("last4", "redact", "none")
DEFAULTS = {"string": "", "bool": False, "date": "", "int": 0}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ROLE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# Property and attribute names are data (an application's ``ownerID``): ASCII identifiers, and
# dotted paths of them naming a member of a nested JSON object (``owner.id``).
_ATTR_SEGMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Segments simpleeval (casbin's evaluator) would resolve to something other than the dict
# entry: dict methods, and the names and prefixes it forbids.
_RESERVED_ATTRS = frozenset(dir(dict)) | {
    "format",
    "format_map",
    "mro",
    "tb_frame",
    "gi_frame",
    "ag_frame",
    "cr_frame",
    "exec",
}
# casbin rewrites ``r.``/``p.`` (optionally with digits) anywhere in a condition, so a segment
# so named followed by a dot would be mangled (``r.obj.p.x`` -> ``r_obj.p_x``).
_ESCAPED_SEGMENT = re.compile(r"^[rp][0-9]*$")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    category: str
    sensitivity: str
    mask: str  # last4 | redact | none
    description: str = ""


@dataclass(frozen=True)
class PropertySpec:
    name: str  # as declared; a dotted name is a path into nested JSON objects
    type: str  # string | bool | date | int
    default: Any
    description: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


@dataclass(frozen=True)
class ResourceType:
    name: str
    description: str
    actions: tuple[str, ...]
    properties: Mapping[str, PropertySpec]
    fields: Mapping[str, FieldSpec]  # in catalogue order; empty for a record-level-only type
    default_purpose: str | None = None  # the purpose of a request that names none


@dataclass(frozen=True)
class Catalogue:
    purposes: Mapping[str, str]
    roles: Mapping[str, str]  # role name -> description
    bases: Mapping[str, str]  # "basis:clinical" -> description
    subject_attributes: Mapping[str, PropertySpec]
    types: Mapping[str, ResourceType]

    def is_principal(self, name: str) -> bool:
        return name in self.roles or name in self.bases

    def mask_style(self, rtype: str, field_name: str) -> str:
        return self.types[rtype].fields[field_name].mask


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

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        return h.hexdigest()

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


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


# --------------------------------------------------------------------------------------------
# YAML with line numbers


class LineDict(dict):
    """A YAML mapping that remembers where it and each of its keys were written."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when built
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping key is not a scalar", key_node.start_mark
            ) from None
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML; mappings become :class:`LineDict`. Syntax errors raise PolicyError with the line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(str(x) for x in (exc.context, exc.problem) if x) or str(exc)
        raise PolicyError(file, line, f"YAML error: {reason}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(file, None, f"YAML error: {exc}") from None


def check_keys(d: Any, allowed: set[str], file: str, what: str, required: set[str] = frozenset()) -> None:
    if not isinstance(d, dict):
        line = getattr(d, "line", None)
        raise PolicyError(file, line, f"{what} must be a mapping")
    for key in d:
        if key not in allowed:
            raise PolicyError(
                file, d.line_of(key), f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})"
            )
    for key in sorted(required):
        if key not in d:
            raise PolicyError(file, d.line, f"{what} is missing {key!r}")


# --------------------------------------------------------------------------------------------
# model.conf


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
                "accessd.policy.model.MODEL_CONF",
            )
    extra = sorted(set(got) - set(want))
    if extra:
        raise PolicyError(MODEL_FILE, _find_line(text, extra[0].split(".", 1)[1]), f"unexpected {extra[0]}")


def _find_line(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle) or needle in line:
            return i
    return None


# --------------------------------------------------------------------------------------------
# catalogue.yaml


def _text(value: Any, file: str, line: int, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyError(file, line, f"{what} must be text")
    return value


def _parse_property(name: str, spec: Any, file: str, line: int, what: str) -> PropertySpec:
    if isinstance(spec, str):
        spec_type, default, desc = spec, None, ""
    else:
        check_keys(spec, {"type", "default", "description"}, file, f"{what} {name!r}", {"type"})
        spec_type, default = spec["type"], spec.get("default")
        desc = _text(spec.get("description"), file, spec.line_of("description"), "description")
        line = spec.line_of("type")
    if spec_type not in PROPERTY_TYPES:
        raise PolicyError(file, line, f"{what} {name!r}: type must be one of {', '.join(PROPERTY_TYPES)}")
    _check_attr_name(name, file, line, what)
    if default is None:
        default = DEFAULTS[spec_type]
    else:
        try:
            default = coerce(spec_type, default)
        except ValueError as exc:
            raise PolicyError(file, line, f"{what} {name!r}: bad default: {exc}") from None
    return PropertySpec(name, spec_type, default, desc)


def _check_attr_name(name: Any, file: str, line: int, what: str) -> None:
    """Names are ASCII identifiers, or dotted paths of them, usable as ``r.obj.<name>`` in casbin."""
    if not isinstance(name, str) or not all(_ATTR_SEGMENT.match(seg) for seg in name.split(".")):
        raise PolicyError(
            file,
            line,
            f"{what} name {name!r} must be letters, digits and _ starting with a letter, "
            "or a dotted path of such names (owner.id)",
        )
    for seg in name.split("."):
        if seg in _RESERVED_ATTRS or seg.startswith("func_"):
            raise PolicyError(
                file, line, f"{what} name {name!r}: {seg!r} is reserved by the condition evaluator"
            )
        if keyword.iskeyword(seg):
            raise PolicyError(file, line, f"{what} name {name!r}: {seg!r} is a Python keyword")
        if _ESCAPED_SEGMENT.match(seg):
            raise PolicyError(file, line, f"{what} name {name!r}: casbin would rewrite the segment {seg!r}")


def _check_paths(specs: Mapping[str, PropertySpec], raw: LineDict, file: str, what: str) -> None:
    """A name cannot be both a value and the object holding another (``owner`` and ``owner.id``)."""
    names = set(specs)
    for name in specs:
        path = name.split(".")
        for i in range(1, len(path)):
            prefix = ".".join(path[:i])
            if prefix in names:
                raise PolicyError(
                    file,
                    raw.line_of(name),
                    f"{what} {name!r} is inside {prefix!r}, which is declared as a value",
                )


def _named_texts(d: Any, file: str, what: str, pattern: re.Pattern = _NAME) -> dict[str, str]:
    if not isinstance(d, dict) or not d:
        raise PolicyError(
            file, getattr(d, "line", None), f"{what} must be a non-empty mapping of name: description"
        )
    out = {}
    for name, desc in d.items():
        if not isinstance(name, str) or not pattern.match(name):
            raise PolicyError(file, d.line_of(name), f"bad {what} name {name!r}")
        out[name] = _text(desc, file, d.line_of(name), f"description of {name!r}")
    return out


def _parse_catalogue(text: str) -> Catalogue:
    f = CATALOGUE_FILE
    data = load_yaml(text, f)
    if data is None:
        raise PolicyError(f, None, "empty catalogue")
    check_keys(
        data,
        {"version", "purposes", "roles", "bases", "subject_attributes", "resource_types"},
        f,
        "catalogue",
        {"purposes", "roles", "resource_types"},
    )
    if data.get("version", 1) != 1:
        raise PolicyError(f, data.line_of("version"), "only catalogue version 1 is supported")
    purposes = _named_texts(data["purposes"], f, "purpose")
    roles = _named_texts(data["roles"], f, "role", _ROLE)
    bases_raw = data.get("bases") or LineDict()
    bases = {BASIS_PREFIX + k: v for k, v in _named_texts(bases_raw, f, "basis").items()} if bases_raw else {}
    attrs: dict[str, PropertySpec] = {}
    raw_attrs = data.get("subject_attributes") or LineDict()
    if not isinstance(raw_attrs, dict):
        raise PolicyError(f, data.line_of("subject_attributes"), "subject_attributes must be a mapping")
    for name, spec in raw_attrs.items():
        if name == "id" or (isinstance(name, str) and name.startswith("id.")):
            raise PolicyError(f, raw_attrs.line_of(name), "'id' is the subject's id, not an attribute")
        attrs[name] = _parse_property(name, spec, f, raw_attrs.line_of(name), "subject attribute")
    _check_paths(attrs, raw_attrs, f, "subject attribute")

    raw_types = data["resource_types"]
    if not isinstance(raw_types, dict) or not raw_types:
        raise PolicyError(f, data.line_of("resource_types"), "resource_types must be a non-empty mapping")
    types: dict[str, ResourceType] = {}
    for tname, tdef in raw_types.items():
        tline = raw_types.line_of(tname)
        if not isinstance(tname, str) or not _NAME.match(tname):
            raise PolicyError(f, tline, f"bad resource type name {tname!r}")
        check_keys(
            tdef,
            {"description", "actions", "properties", "fields", "default_purpose"},
            f,
            f"resource type {tname!r}",
            {"actions"},
        )
        default_purpose = tdef.get("default_purpose")
        if default_purpose is not None and default_purpose not in purposes:
            raise PolicyError(
                f,
                tdef.line_of("default_purpose"),
                f"{tname}: default_purpose {default_purpose!r} is not a declared purpose",
            )
        actions = tdef["actions"]
        if isinstance(actions, dict):
            actions = list(actions)
        if not isinstance(actions, list) or not actions:
            raise PolicyError(f, tdef.line_of("actions"), f"{tname}: actions must be a non-empty list")
        for a in actions:
            if not isinstance(a, str) or not _NAME.match(a):
                raise PolicyError(f, tdef.line_of("actions"), f"{tname}: bad action name {a!r}")
        if len(set(actions)) != len(actions):
            raise PolicyError(f, tdef.line_of("actions"), f"{tname}: duplicate action")
        props: dict[str, PropertySpec] = {}
        raw_props = tdef.get("properties") or LineDict()
        if not isinstance(raw_props, dict):
            raise PolicyError(f, tdef.line_of("properties"), f"{tname}: properties must be a mapping")
        for pname, spec in raw_props.items():
            props[pname] = _parse_property(pname, spec, f, raw_props.line_of(pname), f"{tname} property")
        _check_paths(props, raw_props, f, f"{tname} property")
        # A type without fields is decided as a whole (rules with field *), e.g. a todo item.
        raw_fields = tdef.get("fields")
        if raw_fields is None:
            raw_fields = LineDict()
        if not isinstance(raw_fields, dict):
            raise PolicyError(f, tdef.line_of("fields"), f"{tname}: fields must be a mapping")
        fields: dict[str, FieldSpec] = {}
        for fname, fdef in raw_fields.items():
            fline = raw_fields.line_of(fname)
            if not isinstance(fname, str) or not _NAME.match(fname):
                raise PolicyError(f, fline, f"{tname}: bad field name {fname!r}")
            check_keys(
                fdef,
                {"category", "sensitivity", "mask", "description"},
                f,
                f"field {tname}.{fname}",
                {"sensitivity"},
            )
            sens = fdef["sensitivity"]
            if sens not in SENSITIVITIES:
                raise PolicyError(
                    f,
                    fdef.line_of("sensitivity"),
                    f"{tname}.{fname}: sensitivity must be one of {', '.join(SENSITIVITIES)}",
                )
            mask = fdef.get("mask", "redact")
            if mask not in MASK_STYLES:
                raise PolicyError(
                    f, fdef.line_of("mask"), f"{tname}.{fname}: mask must be one of {', '.join(MASK_STYLES)}"
                )
            fields[fname] = FieldSpec(
                fname,
                _text(fdef.get("category"), f, fdef.line_of("category"), "category"),
                sens,
                mask,
                _text(fdef.get("description"), f, fdef.line_of("description"), "description"),
            )
        types[tname] = ResourceType(
            tname,
            _text(tdef.get("description"), f, tdef.line_of("description"), "description"),
            tuple(actions),
            MappingProxyType(props),
            MappingProxyType(fields),
            default_purpose,
        )
    for b in bases:
        if b in roles:
            raise PolicyError(f, data.line_of("bases"), f"{b} is both a role and a basis")
    return Catalogue(
        MappingProxyType(purposes),
        MappingProxyType(roles),
        MappingProxyType(bases),
        MappingProxyType(attrs),
        MappingProxyType(types),
    )


def coerce(type_name: str, value: Any) -> Any:
    """Coerce a property value to its declared type; raises ValueError when impossible."""
    from datetime import date, datetime

    if type_name == "string":
        if value is None:
            return ""
        if isinstance(value, bool | int | float | str):
            return str(value) if not isinstance(value, bool) else ("true" if value else "false")
        raise ValueError(f"expected text, got {type(value).__name__}")
    if type_name == "bool":
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
            return value.strip().lower() in ("true", "1", "yes")
        raise ValueError(f"expected true/false, got {value!r}")
    if type_name == "date":
        if value is None or value == "":
            return ""
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            s = value.strip()
            try:
                return (
                    date.fromisoformat(s) if len(s) == 10 else datetime.fromisoformat(s).date()
                ).isoformat()
            except ValueError:
                raise ValueError(f"expected an ISO date YYYY-MM-DD, got {value!r}") from None
        raise ValueError(f"expected a date, got {type(value).__name__}")
    if type_name == "int":
        if value is None or value == "":
            return 0
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str | float):
            try:
                return int(value)
            except (ValueError, OverflowError):  # OverflowError: int(float("inf"))
                raise ValueError(f"expected an integer, got {str(value)[:40]!r}") from None
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    raise ValueError(f"unknown type {type_name}")


# --------------------------------------------------------------------------------------------
# policy.csv


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
class _RawRules:
    rules: list[Rule]
    g: list[tuple[str, str, int]]
    g2: list[tuple[str, str, str, int]]


def _parse_rules(text: str) -> _RawRules:
    f = RULES_FILE
    out = _RawRules([], [], [])
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
    cat = _parse_catalogue(files[CATALOGUE_FILE])
    raw = _parse_rules(files[RULES_FILE])
    f = RULES_FILE

    # g: role inheritance (and bases)
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

    # g2: field groups per resource type
    groups: dict[str, set[str]] = {t: set() for t in cat.types}
    gparents: dict[str, dict[str, set[str]]] = {t: {} for t in cat.types}
    g2_line: dict[tuple[str, str, str], int] = {}
    for _member, group, rtype, n in raw.g2:
        if rtype not in cat.types:
            raise PolicyError(f, n, f"unknown resource type {rtype!r}")
        if group in cat.types[rtype].fields:
            raise PolicyError(f, n, f"{group!r} is a field of {rtype}; a group needs its own name")
        if not _NAME.match(group):
            raise PolicyError(f, n, f"bad group name {group!r}")
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

    # p: rules
    from accessd.policy.conditions import ConditionError, check_condition

    ids: dict[str, int] = {}
    for r in raw.rules:
        n = r.line
        if not _RULE_ID.match(r.id):
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

    policy = PolicySet(
        files=MappingProxyType(dict(files)),
        catalogue=cat,
        rules=tuple(raw.rules),
        role_links=tuple((c, p) for c, p, _ in raw.g),
        group_links=tuple((m, g, t) for m, g, t, _ in raw.g2),
        groups=MappingProxyType({t: frozenset(v) for t, v in groups.items()}),
    )
    # A mask rule must not reach a field that cannot be masked.
    from accessd.policy.compile import expand_fields

    for r in policy.rules:
        if r.eft == "allow" and r.level == "mask":
            for fname in expand_fields(policy, r.rtype, r.field):
                if fname is not None and cat.types[r.rtype].fields[fname].mask == "none":
                    raise PolicyError(
                        f,
                        r.line,
                        f"{r.id}: grants a masked view of {r.rtype}.{fname}, whose catalogue mask is none",
                    )
    return policy
