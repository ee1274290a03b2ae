"""An accessd policy as Cedar policies, entities and requests (the third engine of bench/decisions.py).

The translation, so that Cedar (``cedarpy``, the Rust engine's Python binding) decides every
translated question exactly as :class:`accessd.policy.engine.Engine` does:

- Each ``p`` row becomes one policy, ``permit`` for allow and ``forbid`` for deny, annotated
  ``@id("<rule id>")``. Scope: ``principal in Role::"<sub>"`` (``*``: any principal), ``action ==
  Action::"<act>"`` (``*``: ``action in`` the type's actions), ``resource is <rtype>``. ``when``:
  ``context.purpose == "<purpose>"`` unless ``*``; ``context.field in Field::"<rtype>.<field or
  group>"`` unless ``*``; then the condition, unless it is ``True``.
- Roles and bases are ``Role`` entities whose parents are the ``g`` rows; a subject is a ``User``
  whose parents are its grants; fields and groups are ``Field`` entities whose parents are the
  ``g2`` rows. Cedar follows ``in`` transitively; accessd bounds role and group chains to what
  casbin follows, so the two reach the same names.
- The account checks are four ``forbid`` policies on the principal (empty id, status not
  ``active``, before its start date, after its end date).
- A record is an entity of its type with every declared property (defaults filled in, as the
  engine fills them), one per request. Dates are Longs ``YYYYMMDD`` with ``""`` as 0: Cedar orders
  only numbers (its ``datetime`` extension has no empty date), and this encoding keeps the order
  and equalities of ISO text.
- A three-way answer takes one Cedar query: Deny is deny; Allow is allow when an allow/full rule
  is among the determining policies (Cedar lists every satisfied permit), else mask. So a permit
  does not test the level (casbin's ``p.level == r.level`` takes a second query).

What is not translated, and why: ordering text that is not a date (``<`` on strings: Cedar has no
string order), a substring test other than constant-in-attribute (Cedar's ``like`` needs a literal
pattern), a date compared with text that is not a date (the encodings differ), integers outside
Cedar's 64 bits, and a resource type whose name Cedar reserves. Such a rule raises
:class:`Untranslatable` from :func:`cedar_rule`; :func:`translate` leaves it out and reports the
(type, action, purpose) cells it could decide, so the bench compares only requests outside them.
Requests are translated after accessd's own input checks (coercion, default purpose, vocabulary),
as the casbin reference does; a subject with a ``departure_at`` (compared with the wall clock) or
whose id is also a role name is :class:`Untranslatable`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import cedarpy

from accessd.policy.conditions import attr_path, is_constant, parse_condition
from accessd.policy.policyset import RECORD_FIELD, PolicySet
from accessd.policy.rules import Rule

#: @id annotations of the account checks (a rule id cannot start with "#")
ACCOUNT_IDS = ("#account-unknown", "#account-status", "#account-not-started", "#account-ended")
_ACCOUNT_POLICIES = (
    'principal.id == ""',
    'principal._status != "active"',
    "principal._start != 0 && context.today < principal._start",
    "principal._end != 0 && context.today > principal._end",
)
# identifiers Cedar parses as something else after a dot or as a type name
_RESERVED = frozenset(
    {"true", "false", "if", "then", "else", "in", "is", "like", "has", "principal", "action"}
    | {"resource", "context", "permit", "forbid", "when", "unless", "contains", "containsAll"}
    | {"containsAny", "isEmpty", "getTag", "hasTag"}
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LONG = range(-(2**63), 2**63)
_CONTEXT_VARS = {
    "r_purpose": "context.purpose",
    "r_act": "context.act",
    "r_field": "context.field_name",
    "r_rtype": "context.rtype",
}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


class Untranslatable(ValueError):
    """A rule or request whose accessd meaning has no Cedar equivalent here (the reason)."""


# ------------------------------------------------------------------------------------ values


def cedar_string(s: str) -> str:
    """A Cedar string literal."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def date_long(value: str) -> int:
    """An ISO date as the Long YYYYMMDD; "" (no date) as 0. Raises Untranslatable otherwise."""
    if value == "":
        return 0
    if not _ISO_DATE.match(value):
        raise Untranslatable(f"{value!r} is not an ISO date")
    return int(value.replace("-", ""))


def _member(base: str, path: str) -> str:
    out = base
    for seg in path.split("."):
        out += f".{seg}" if _IDENT.match(seg) and seg not in _RESERVED else f"[{cedar_string(seg)}]"
    return out


def _encode(values: dict, specs: Iterable) -> dict:
    """Declared values in Cedar's encoding, in place: dates as Longs, integers checked."""
    for spec in specs:
        *outer, last = spec.path
        d = values
        for seg in outer:
            d = d[seg]
        if spec.type == "date":
            d[last] = date_long(d[last])
        elif spec.type == "int" and d[last] not in _LONG:
            raise Untranslatable(f"{spec.name} = {d[last]} does not fit a Cedar Long")
    return values


# ------------------------------------------------------------------------------------ conditions


@dataclass(frozen=True)
class _Operand:
    text: str  # Cedar expression
    type: str  # string | date | int | bool
    const: object = None  # the Python constant, for a constant
    is_const: bool = False


class _Conditions:
    """Condition text (casbin syntax, already checked by accessd) -> Cedar expression."""

    def __init__(self, policy: PolicySet, rtype: str):
        self.cat = policy.catalogue
        self.props = self.cat.types[rtype].properties

    def expr(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node, ast.BoolOp):
            op = " && " if isinstance(node.op, ast.And) else " || "
            return "(" + op.join(self.expr(v) for v in node.values) + ")"
        if isinstance(node, ast.UnaryOp):
            return f"!({self.expr(node.operand)})"
        if isinstance(node, ast.Call):  # g(r.sub.id, "role"): checked by accessd
            return f"(principal in Role::{cedar_string(node.args[1].value)})"
        if isinstance(node, ast.Attribute):  # a flag
            return self.operand(node).text
        if isinstance(node, ast.Compare):
            lefts = [node.left, *node.comparators[:-1]]
            parts = [
                self.compare(a, op, b) for a, op, b in zip(lefts, node.ops, node.comparators, strict=True)
            ]
            return parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"
        raise Untranslatable(f"{ast.unparse(node)}: not a condition accessd accepts")

    def operand(self, node: ast.AST) -> _Operand:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return _Operand("true" if v else "false", "bool", v, True)
            if isinstance(v, int):
                if v not in _LONG:
                    raise Untranslatable(f"{v} does not fit a Cedar Long")
                return _Operand(str(v), "int", v, True)
            return _Operand(cedar_string(v), "string", v, True)
        if isinstance(node, ast.Name):
            return _Operand(_CONTEXT_VARS[node.id], "string")
        if isinstance(node, ast.Attribute):
            base, name = attr_path(node)
            if base == "r_env":
                return _Operand("context.today", "date")
            if base == "r_sub" and name == "id":
                return _Operand("principal.id", "string")
            spec = (self.cat.subject_attributes if base == "r_sub" else self.props)[name]
            return _Operand(_member("principal" if base == "r_sub" else "resource", name), spec.type)
        raise Untranslatable(f"{ast.unparse(node)}: not a value accessd accepts")

    def _as_date(self, o: _Operand) -> str:
        if o.type == "date":
            return o.text
        if o.is_const and isinstance(o.const, str):
            return str(date_long(o.const))
        raise Untranslatable(f"a date compared with {o.text} (text that is not a date)")

    def compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> str:
        a = self.operand(left)
        if isinstance(op, ast.In | ast.NotIn):
            neg = "!" if isinstance(op, ast.NotIn) else ""
            if isinstance(right, ast.List | ast.Tuple):
                items = [self.operand(e) for e in right.elts]
                texts = [self._as_date(i) if a.type == "date" else i.text for i in items]
                return f"{neg}([{', '.join(texts)}].contains({a.text}))"
            b = self.operand(right)
            if a.is_const and b.type == "string" and not b.is_const:
                pattern = cedar_string(a.const)[1:-1].replace("*", "\\*")
                return f'{neg}({b.text} like "*{pattern}*")'
            raise Untranslatable(f"{ast.unparse(left)} in {ast.unparse(right)}: Cedar's like needs a literal")
        b = self.operand(right)
        sym = _CMP[type(op)]
        if "date" in (a.type, b.type):
            return f"({self._as_date(a)} {sym} {self._as_date(b)})"
        if sym not in ("==", "!=") and a.type != "int":
            raise Untranslatable(f"{ast.unparse(left)} {sym} {ast.unparse(right)}: Cedar has no text order")
        return f"({a.text} {sym} {b.text})"


# ------------------------------------------------------------------------------------ policies


def cedar_rule(policy: PolicySet, r: Rule) -> str:
    """One p row as a Cedar policy; raises Untranslatable."""
    cat = policy.catalogue
    t = cat.types[r.rtype]
    if not _IDENT.match(r.rtype) or r.rtype in _RESERVED or r.rtype in ("User", "Role", "Field", "Action"):
        raise Untranslatable(f"resource type {r.rtype!r} is not a usable Cedar type name")
    principal = "principal" if r.sub == "*" else f"principal in Role::{cedar_string(r.sub)}"
    if r.act == "*":
        action = "action in [" + ", ".join(f"Action::{cedar_string(a)}" for a in t.actions) + "]"
    else:
        action = f"action == Action::{cedar_string(r.act)}"
    when = []
    if r.purpose != "*":
        when.append(f"context.purpose == {cedar_string(r.purpose)}")
    if r.field != "*":
        when.append(f"context.field in Field::{cedar_string(f'{r.rtype}.{r.field}')}")
    const = is_constant(r.cond)
    if const is None:
        when.append(_Conditions(policy, r.rtype).expr(parse_condition(r.cond)))
    elif const is False:
        when.append("false")
    effect = "forbid" if r.eft == "deny" else "permit"
    body = f" when {{ {' && '.join(when)} }}" if when else ""
    return f"@id({cedar_string(r.id)})\n{effect} ({principal}, {action}, resource is {r.rtype}){body};\n"


@dataclass
class CedarPolicy:
    """A translated policy: Cedar text, parsed policy sets, and what was left out.

    ``policies`` holds every policy; ``slices[(rtype, action)]`` only those whose scope can
    match that type and action (the account checks included), as an application slices a large
    Cedar policy set (casbin's FastEnforcer indexes on the same two columns)."""

    text: str
    policies: cedarpy.PolicySet
    slices: dict[tuple[str, str], cedarpy.PolicySet]
    full_rules: frozenset[str]  # ids of the allow/full rules
    skipped: dict[str, str] = field(default_factory=dict)  # rule id -> why not translated
    skipped_cells: frozenset[tuple[str, str, str]] = frozenset()  # (rtype, act, purpose)

    def covers(self, rtype: str, action: str, purpose: str) -> bool:
        """Whether no rule was left out of this cell (so Cedar decides it as accessd does)."""
        return (rtype, action, purpose) not in self.skipped_cells


def translate(policy: PolicySet) -> CedarPolicy:
    """The whole policy in Cedar; rules that cannot be translated are left out and listed."""
    cat = policy.catalogue
    account = [
        f"@id({cedar_string(i)})\nforbid (principal, action, resource) when {{ {c} }};\n"
        for i, c in zip(ACCOUNT_IDS, _ACCOUNT_POLICIES, strict=True)
    ]
    parts = list(account)
    by_cell: dict[tuple[str, str], list[str]] = {
        (t, a): [] for t, rt in cat.types.items() for a in rt.actions
    }
    full, skipped, cells = set(), {}, set()
    for r in policy.rules:
        acts = cat.types[r.rtype].actions if r.act == "*" else (r.act,)
        try:
            text = cedar_rule(policy, r)
        except Untranslatable as exc:
            skipped[r.id] = str(exc)
            purposes = tuple(cat.purposes) if r.purpose == "*" else (r.purpose,)
            cells.update((r.rtype, a, p) for a in acts for p in purposes)
            continue
        if r.eft == "allow" and r.level == "full":
            full.add(r.id)
        parts.append(text)
        for a in acts:
            by_cell[(r.rtype, a)].append(text)
    text = "".join(parts)
    slices = {cell: cedarpy.PolicySet.from_str("".join(account + texts)) for cell, texts in by_cell.items()}
    return CedarPolicy(
        text, cedarpy.PolicySet.from_str(text), slices, frozenset(full), skipped, frozenset(cells)
    )


# ------------------------------------------------------------------------------------ entities


def _uid(etype: str, eid: str) -> dict:
    return {"type": etype, "id": eid}


def base_entities(policy: PolicySet, engine, subjects: Iterable) -> list[dict]:
    """Roles and bases, fields and groups, and one User per subject (attributes coerced by the
    engine, dates as Longs). Raises Untranslatable for a subject Cedar cannot hold (see module)."""
    cat = policy.catalogue
    parents: dict[str, list[str]] = {}
    for child, parent in policy.role_links:
        parents.setdefault(child, []).append(parent)
    out = [
        {"uid": _uid("Role", name), "attrs": {}, "parents": [_uid("Role", p) for p in parents.get(name, ())]}
        for name in (*cat.roles, *cat.bases)
    ]
    members: dict[tuple[str, str], list[str]] = {}
    for member, group, rtype in policy.group_links:
        members.setdefault((rtype, member), []).append(group)
    for rtype, t in cat.types.items():
        for name in (*t.fields, *policy.groups.get(rtype, ())):
            ups = members.get((rtype, name), ())
            out.append(
                {
                    "uid": _uid("Field", f"{rtype}.{name}"),
                    "attrs": {},
                    "parents": [_uid("Field", f"{rtype}.{g}") for g in ups],
                }
            )
    for s in subjects:
        out.append(user_entity(policy, engine, s))
    return out


def user_entity(policy: PolicySet, engine, subject) -> dict:
    if subject.departure_at is not None:
        raise Untranslatable(f"subject {subject.id}: departure_at is compared with the wall clock")
    if policy.catalogue.is_principal(subject.id):
        raise Untranslatable(f"subject {subject.id}: its id is also a role or basis name")
    attrs = _encode(engine.subject_dict(subject), policy.catalogue.subject_attributes.values())
    attrs["_status"] = subject.status
    attrs["_start"] = date_long(subject.start_date.isoformat()) if subject.start_date else 0
    attrs["_end"] = date_long(subject.end_date.isoformat()) if subject.end_date else 0
    return {
        "uid": _uid("User", subject.id),
        "attrs": attrs,
        "parents": [_uid("Role", r) for r in subject.roles],
    }


# ------------------------------------------------------------------------------------ requests


def request(engine, q, uid: str) -> tuple[dict, dict]:
    """A Cedar request (context serialised) and its record entity ``<rtype>::"<uid>"`` for an
    engine request ``q`` (subject, rtype, action, field, purpose, properties, today).

    Raises Untranslatable for a question accessd refuses before its rules (unknown type, action,
    purpose or field): the rules are what is compared."""
    cat = engine.catalogue
    t = cat.types.get(q.rtype)
    purpose = engine.resolve_purpose(q.rtype, q.purpose)
    if t is None or q.action not in t.actions or purpose not in cat.purposes:
        raise Untranslatable("vocabulary: accessd denies before its rules")
    if q.field is not None and q.field not in t.fields:
        raise Untranslatable("vocabulary: unknown field")
    fld = RECORD_FIELD if q.field is None else q.field
    attrs = _encode(engine.object_dict(q.rtype, q.properties), t.properties.values())
    record = {"uid": _uid(q.rtype, uid), "attrs": attrs, "parents": []}
    context = {
        "purpose": purpose,
        "act": q.action,
        "rtype": q.rtype,
        "field": {"__entity": _uid("Field", f"{q.rtype}.{fld}")},
        "field_name": fld,
        "today": date_long(q.today.isoformat()),
    }
    req = {
        "principal": _uid("User", q.subject.id),
        "action": _uid("Action", q.action),
        "resource": _uid(q.rtype, uid),
        "context": json.dumps(context),
    }
    return req, record


@dataclass
class Batch:
    """Requests for one is_authorized_batch call: their positions in the stream, the Cedar
    requests, their records (as the JSON delta added to the base entities) and the policy set."""

    positions: list[int]
    requests: list[dict]
    records_json: str
    policies: cedarpy.PolicySet


def batches(cp: CedarPolicy, engine, stream, sliced: bool, size: int = 2000) -> tuple[list[Batch], int]:
    """The stream's requests that Cedar can be asked (see :func:`request` and
    :meth:`CedarPolicy.covers`) in batches of at most ``size``, one policy set per batch (the
    request's slice when ``sliced``); and how many were left out."""
    groups: dict[tuple[str, str] | None, list[tuple[int, dict, dict]]] = {}
    left_out = 0
    for i, q in enumerate(stream):
        try:
            req, record = request(engine, q, str(i))
        except Untranslatable:
            left_out += 1
            continue
        purpose = json.loads(req["context"])["purpose"]
        if not cp.covers(q.rtype, q.action, purpose):
            left_out += 1
            continue
        groups.setdefault((q.rtype, q.action) if sliced else None, []).append((i, req, record))
    out = []
    for key, items in groups.items():
        ps = cp.policies if key is None else cp.slices[key]
        for k in range(0, len(items), size):
            chunk = items[k : k + size]
            out.append(
                Batch(
                    [i for i, _, _ in chunk],
                    [r for _, r, _ in chunk],
                    json.dumps([e for _, _, e in chunk]),
                    ps,
                )
            )
    return out, left_out


def run(cp: CedarPolicy, base: cedarpy.Entities, work: list[Batch]) -> dict[int, tuple[str, object]]:
    """Decide every batch: stream position -> (allow / mask / deny, Cedar's result).

    One query each: Deny is deny; Allow is allow when an allow/full rule is among the
    determining policies (Cedar lists every satisfied permit), else mask."""
    full = cp.full_rules
    out = {}
    for b in work:
        results = cedarpy.is_authorized_batch(
            b.requests, b.policies, base.with_added_json_str(b.records_json)
        )
        for i, res in zip(b.positions, results, strict=True):
            if not res.allowed:
                out[i] = ("deny", res)
            elif any(v in full for v in res.diagnostics.id_annotations_by_reason.values()):
                out[i] = ("allow", res)
            else:
                out[i] = ("mask", res)
    return out


def matched_rules(cp: CedarPolicy, res, effect: str) -> list[str]:
    """The ids of the rules behind a three-way answer, as :class:`Decision` lists them: the
    satisfied forbids for a deny (none when an account check denied), the full-level permits for
    an allow, the mask-level permits for a mask."""
    ann = res.diagnostics.id_annotations_by_reason
    reasons = res.diagnostics.reasons
    if any(ann.get(p) in ACCOUNT_IDS for p in reasons):
        return []
    ids = sorted(ann[p] for p in reasons)
    return [i for i in ids if i in cp.full_rules] if effect == "allow" else ids
