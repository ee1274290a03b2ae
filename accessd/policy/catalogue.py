"""The field catalogue (``catalogue.yaml``): the policy's vocabulary, parsed and checked.

It declares purposes, roles, bases, subject attributes, and resource types with their actions,
properties (policy inputs, typed ``string | bool | date | int``) and fields (sensitivity and mask
style). :func:`parse_catalogue` turns the text into a :class:`Catalogue`; :func:`coerce` turns an
input value into its declared type. Every mistake raises :class:`accessd.errors.PolicyError`
naming ``catalogue.yaml`` and the 1-based line.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from accessd.errors import PolicyError
from accessd.policy.yamlfile import LineDict, check_keys, load_yaml

CATALOGUE_FILE = "catalogue.yaml"

BASIS_PREFIX = "basis:"
PROPERTY_TYPES = ("string", "bool", "date", "int")
SENSITIVITIES = ("internal", "confidential", "restricted", "special_category")
MASK_STYLES = ("last4", "redact", "none")
DEFAULTS = {"string": "", "bool": False, "date": "", "int": 0}

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ROLE = re.compile(r"^[a-z][a-z0-9_.-]*$")
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


def check_name(name: Any, file: str, line: int | None, label: str, pattern: re.Pattern = NAME) -> None:
    """Purposes, bases, types, actions, fields and groups are lower-case identifiers (roles may
    also hold ``.`` and ``-``); otherwise raise ``{label} {name!r}``."""
    if not isinstance(name, str) or not pattern.match(name):
        raise PolicyError(file, line, f"{label} {name!r}")


def _named_texts(d: Any, file: str, what: str, pattern: re.Pattern = NAME) -> dict[str, str]:
    if not isinstance(d, dict) or not d:
        raise PolicyError(
            file, getattr(d, "line", None), f"{what} must be a non-empty mapping of name: description"
        )
    out = {}
    for name, desc in d.items():
        check_name(name, file, d.line_of(name), f"bad {what} name", pattern)
        out[name] = _text(desc, file, d.line_of(name), f"description of {name!r}")
    return out


def parse_catalogue(text: str) -> Catalogue:
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
    types = {
        tname: _parse_type(tname, tdef, raw_types.line_of(tname), purposes)
        for tname, tdef in raw_types.items()
    }
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


def _parse_type(tname: Any, tdef: Any, tline: int, purposes: Mapping[str, str]) -> ResourceType:
    f = CATALOGUE_FILE
    check_name(tname, f, tline, "bad resource type name")
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
        check_name(a, f, tdef.line_of("actions"), f"{tname}: bad action name")
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
    fields = {
        fname: _parse_field(tname, fname, fdef, raw_fields.line_of(fname))
        for fname, fdef in raw_fields.items()
    }
    return ResourceType(
        tname,
        _text(tdef.get("description"), f, tdef.line_of("description"), "description"),
        tuple(actions),
        MappingProxyType(props),
        MappingProxyType(fields),
        default_purpose,
    )


def _parse_field(tname: str, fname: Any, fdef: Any, fline: int) -> FieldSpec:
    f = CATALOGUE_FILE
    check_name(fname, f, fline, f"{tname}: bad field name")
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
    return FieldSpec(
        fname,
        _text(fdef.get("category"), f, fdef.line_of("category"), "category"),
        sens,
        mask,
        _text(fdef.get("description"), f, fdef.line_of("description"), "description"),
    )


def coerce(type_name: str, value: Any) -> Any:
    """Coerce a property value to its declared type; raises ValueError when impossible."""
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
