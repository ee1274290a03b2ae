"""Condition checking: which conditions a policy may hold, decided when it is loaded.

Accepted: ``and``/``or``/``not``; comparisons ``== != < <= > >= in not in``; ``r.sub.X``,
``r.obj.X`` (X a declared name, dotted for a nested member: ``r.obj.owner.id``), ``r.env.today``,
``r.purpose``, ``r.act``, ``r.field``, ``r.rtype``; constants (text, integers, True/False) and
lists/tuples of constants (right of ``in``); and ``g(r.sub.id, "role-or-basis")``. Every leaf of
and/or/not and the whole condition must be boolean (so simpleeval's value-returning ``and``/``or``
cannot leak a non-bool to casbin). A comparison that a missing attribute could satisfy must be
guarded (see "Missing attributes never satisfy a comparison" below). :func:`check_condition`
raises :class:`accessd.policy.conditions.ConditionError` with the reason.
"""

from __future__ import annotations

import ast

from accessd.policy.catalogue import Catalogue, PropertySpec
from accessd.policy.conditions import (
    OBJECTS,
    OPERATORS,
    VARIABLES,
    ConditionError,
    attr_path,
    parse_condition,
)

__all__ = ["ConditionError", "check_condition"]

_ORDERED = {"string": "text", "date": "text", "int": "int"}


class _Checker:
    def __init__(self, cat: Catalogue, rtype: str):
        self.cat = cat
        self.props = cat.types[rtype].properties

    def type_of(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, int):
                return "int"
            if isinstance(v, str):
                return "string"
            raise ConditionError(f"unsupported constant {v!r}")
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.need_bool(v)
            return "bool"
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.Not):
                raise ConditionError("only 'not'/'!' is allowed as a unary operator")
            self.need_bool(node.operand)
            return "bool"
        if isinstance(node, ast.Compare):
            left = self.type_of(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                if type(op) not in OPERATORS:
                    raise ConditionError(f"operator {type(op).__name__} is not allowed")
                if isinstance(op, ast.In | ast.NotIn):
                    self.check_in(left, comp)
                    right = "list"
                else:
                    right = self.type_of(comp)
                    self.check_cmp(left, op, right)
                left = right
            return "bool"
        if isinstance(node, ast.Attribute):
            base, name = attr_path(node)
            if base is None:
                raise ConditionError("attributes may only be read from r.sub, r.obj and r.env")
            return self.attr_type(base, name)
        if isinstance(node, ast.Name):
            if node.id in VARIABLES:
                return "string"
            if node.id in OBJECTS:
                raise ConditionError(f"{node.id.replace('_', '.', 1)} must be used with an attribute")
            raise ConditionError(f"unknown name {node.id.replace('_', '.', 1)!r}")
        if isinstance(node, ast.Call):
            self.check_g(node)
            return "bool"
        if isinstance(node, ast.List | ast.Tuple):
            raise ConditionError("a list may only appear right of 'in'")
        raise ConditionError(f"{type(node).__name__} is not allowed in a condition")

    def spec(self, base: str, attr: str) -> PropertySpec | None:
        """The declaration behind ``r.sub.<attr>`` / ``r.obj.<attr>`` (None for id and today)."""
        if base == "r_sub":
            return None if attr == "id" else self.cat.subject_attributes.get(attr)
        return self.props.get(attr) if base == "r_obj" else None

    def attr_type(self, base: str, attr: str) -> str:
        if base == "r_sub":
            if attr == "id":
                return "string"
            spec = self.cat.subject_attributes.get(attr)
            if spec is None:
                hint = _inside(self.cat.subject_attributes, attr)
                raise ConditionError(f"r.sub.{attr} is not a declared subject attribute{hint}")
            return spec.type
        if base == "r_obj":
            spec = self.props.get(attr)
            if spec is None:
                hint = _inside(self.props, attr)
                raise ConditionError(f"r.obj.{attr} is not a declared property of this resource type{hint}")
            return spec.type
        if attr != "today":
            raise ConditionError(f"r.env.{attr} does not exist (only r.env.today)")
        return "date"

    def need_bool(self, node: ast.AST) -> None:
        t = self.type_of(node)
        if t != "bool":
            raise ConditionError(f"{ast.unparse(node)!r} is {t}, not a true/false test")

    def check_cmp(self, left: str, op: ast.cmpop, right: str) -> None:
        if isinstance(op, ast.Eq | ast.NotEq):
            if _ORDERED.get(left, left) != _ORDERED.get(right, right):
                raise ConditionError(f"compares {left} with {right}")
            return
        if left not in _ORDERED or right not in _ORDERED or _ORDERED[left] != _ORDERED[right]:
            raise ConditionError(f"cannot order {left} against {right}")

    def check_in(self, left: str, comp: ast.AST) -> None:
        if isinstance(comp, ast.List | ast.Tuple):
            for elt in comp.elts:
                if not isinstance(elt, ast.Constant):
                    raise ConditionError("lists may contain only constants")
                et = self.type_of(elt)
                if _ORDERED.get(et, et) != _ORDERED.get(left, left):
                    raise ConditionError(f"list element {elt.value!r} is {et}, compared with {left}")
            return
        right = self.type_of(comp)
        if right != "string" or _ORDERED.get(left) != "text":
            raise ConditionError("'in' needs a list of constants, or text on both sides (substring)")

    def check_g(self, node: ast.Call) -> None:
        if not (isinstance(node.func, ast.Name) and node.func.id == "g"):
            raise ConditionError('the only function is g(r.sub.id, "role")')
        if node.keywords or len(node.args) != 2:
            raise ConditionError('g takes exactly two arguments: g(r.sub.id, "role")')
        a, b = node.args
        if not (isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "r_sub"):
            raise ConditionError("g's first argument must be r.sub.id")
        if a.attr != "id":
            raise ConditionError("g's first argument must be r.sub.id")
        if not (isinstance(b, ast.Constant) and isinstance(b.value, str)):
            raise ConditionError("g's second argument must be a quoted role or basis name")
        if not self.cat.is_principal(b.value):
            raise ConditionError(f"g(..., {b.value!r}): unknown role or basis")


def _inside(specs, attr: str) -> str:
    members = sorted(n for n in specs if n.startswith(attr + "."))
    return f" (it holds {', '.join(members)})" if members else ""


def check_condition(text: str, cat: Catalogue, rtype: str) -> ast.expr:
    """Parse and type-check a condition for rules on ``rtype``, and refuse comparisons that an
    absent or empty attribute can satisfy unguarded (see :func:`_check_missing`); raises
    ConditionError."""
    node = parse_condition(text)
    checker = _Checker(cat, rtype)
    t = checker.type_of(node)
    if t != "bool":
        raise ConditionError(f"the condition is {t}, not a true/false test")
    _check_missing(node, checker)
    return node


# --------------------------------------------------------------------------------------------
# Missing attributes never satisfy a comparison
#
# A missing subject attribute or record property arrives as its declared default: "" for text
# and dates unless declared otherwise, 0, False. Compared with another attribute, two missing
# values are equal ("" == "": a person without a region sees every client without a region), and
# "" sorts before every date ("" < "2026-01-01": a record without a retention date has expired).
# Can be missing: r.sub.<attribute> and r.obj.<property>. Never missing: r.sub.id (the engine
# denies an empty id), r.env.today, r.purpose, r.act, r.field, r.rtype, constants. Refused
# unless each attribute that can be missing is guarded:
#   1. two attributes compared, by any operator;
#   2. a text/date attribute against a never-missing value, when a missing one satisfies it
#      (!=, a < x, a <= x, x > a, x >= a, a in x, x not in a; any operator if its default is
#      not empty);
#   3. a text/date attribute ordered against, or substring-tested with, a text constant that
#      its missing value satisfies (r.obj.until < "2030-01-01").
# ==, != and in [...] against constants say what they mean (a == "" is how to test for empty);
# numbers and flags against constants compare their default like any other value.
# A guard is a comparison of the attribute with constants that its missing value fails
# (a != "", a == "north", a in ["x"], for a flag the flag itself), in the same conjunction: the
# check looks at each comparison in the polarity it acts in (after pushing ! inwards: !(a == b)
# is a != b) and at the guards conjoined with it at that level or above, never across || nor
# through a ! that flips them. Evaluation is unchanged, so the engine still decides exactly as
# casbin does; only policies that could fail open are refused.

_NEGATED = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.LtE: ast.Gt,
    ast.Gt: ast.LtE,
    ast.GtE: ast.Lt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_APPLY = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
# A stand-in for any value of an operand that is never empty (r.sub.id, r.env.today, r.purpose,
# ...): "" compares with every non-empty text the same way.
_PRESENT = "x"


class _Operand:
    """One side of a comparison: an attribute that can be missing, a never-empty value, or constants."""

    __slots__ = ("kind", "key", "text", "type", "missing", "value")

    def __init__(self, node: ast.AST, checker: _Checker):
        self.kind, self.key, self.type, self.missing, self.value = "never", None, "string", (), None
        self.text = _show(node)
        if isinstance(node, ast.Constant):
            self.kind, self.value = "const", node.value
        elif isinstance(node, ast.List | ast.Tuple):
            self.kind, self.value = "list", tuple(e.value for e in node.elts)
        elif isinstance(node, ast.Attribute):
            base, name = attr_path(node)
            spec = checker.spec(base, name)
            if spec is not None:
                self.kind, self.key, self.type = "attr", (base, name), spec.type
                # Text may also arrive empty whatever its default; a number or flag is its default.
                values = ("", spec.default) if spec.type in ("string", "date") else (spec.default,)
                self.missing = tuple(dict.fromkeys(values))


def _nnf_leaves(node: ast.AST, pol: bool):
    """(node, polarity) for each conjunct of the maximal conjunction at ``node`` in negation
    normal form: ``!`` flips the polarity, ``&&`` (or a negated ``||``) is flattened, and a chained
    comparison a < b < c is the conjunction of a < b and b < c."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield from _nnf_leaves(node.operand, not pol)
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) == pol:
        for v in node.values:
            yield from _nnf_leaves(v, pol)
    elif isinstance(node, ast.Compare) and len(node.ops) > 1 and pol:
        for pair in _pairs(node):
            yield pair, pol
    else:
        yield node, pol


def _pairs(node: ast.Compare) -> list[ast.Compare]:
    lefts = [node.left, *node.comparators[:-1]]
    return [ast.Compare(a, [op], [b]) for a, op, b in zip(lefts, node.ops, node.comparators, strict=True)]


def _check_missing(node: ast.expr, checker: _Checker) -> None:
    _walk(node, True, (), checker)


def _walk(node: ast.AST, pol: bool, scope: tuple, checker: _Checker) -> None:
    leaves = list(_nnf_leaves(node, pol))
    guards = scope + tuple(leaves)
    for leaf, lpol in leaves:
        if isinstance(leaf, ast.BoolOp):  # a disjunction at this polarity: each side on its own
            for v in leaf.values:
                _walk(v, lpol, guards, checker)
        elif isinstance(leaf, ast.Compare) and len(leaf.ops) > 1:  # a negated chain: a disjunction
            for pair in _pairs(leaf):
                _walk(pair, lpol, guards, checker)
        elif isinstance(leaf, ast.Compare):
            _check_comparison(leaf, lpol, guards, checker)


def _check_comparison(cmp: ast.Compare, pol: bool, guards: tuple, checker: _Checker) -> None:
    op = type(cmp.ops[0]) if pol else _NEGATED[type(cmp.ops[0])]
    left, right = _Operand(cmp.left, checker), _Operand(cmp.comparators[0], checker)
    need: list[tuple[_Operand, list]] = []
    if left.kind == "attr" and right.kind == "attr":
        # two attributes: two missing values compare equal, one missing one unequal or ordered
        need = [(left, list(left.missing)), (right, list(right.missing))]
    else:
        attr, other, attr_left = (left, right, True) if left.kind == "attr" else (right, left, False)
        if attr.kind != "attr" or attr.type not in ("string", "date"):
            return  # numbers and flags against constants: the default is a value like any other
        if other.kind == "never":
            probe = _PRESENT
        elif other.kind == "const" and (
            op in _ORDERING or (op in (ast.In, ast.NotIn) and isinstance(other.value, str))
        ):
            probe = other.value  # ordering or a substring test against text: evaluate it
        else:
            return  # == / != / in [...] against constants state what they mean ("" included)
        bad = [
            v for v in attr.missing if (v != "" and other.kind == "never") or _holds(op, v, probe, attr_left)
        ]
        if bad:
            need = [(attr, bad)]
    missing = []
    for operand, values in need:
        left_over = [
            v for v in values if not any(_excludes(g, gpol, operand, v, checker) for g, gpol in guards)
        ]
        if left_over:
            missing.append((operand, left_over))
    if missing:
        names = " and ".join(o.text for o, _ in missing)
        add = " && ".join(_guard(o, v) for o, vs in missing for v in vs)
        where = "" if pol else " (negated)"
        one = len(missing) == 1
        raise ConditionError(
            f"{_show(cmp)}{where} also holds when {names} {'is' if one else 'are'} missing or empty "
            f"(a missing attribute reads as its declared default); require {'it' if one else 'them'} "
            f"in the same conjunction: {add} && ..."
        )


def _holds(op: type, attr_value, other, attr_left: bool) -> bool:
    try:
        return bool(_APPLY[op](attr_value, other) if attr_left else _APPLY[op](other, attr_value))
    except TypeError:
        return False


def _excludes(guard: ast.AST, pol: bool, operand: _Operand, value, checker: _Checker) -> bool:
    """Whether ``guard`` (a conjunct in polarity ``pol``) is false whenever ``operand`` is ``value``."""
    if isinstance(guard, ast.Attribute):  # a flag tested on its own: r.obj.hold / !r.obj.hold
        return attr_path(guard) == operand.key and bool(value) != pol
    if not (isinstance(guard, ast.Compare) and len(guard.ops) == 1):
        return False
    op = type(guard.ops[0]) if pol else _NEGATED[type(guard.ops[0])]
    a, b = _Operand(guard.left, checker), _Operand(guard.comparators[0], checker)
    if a.key == operand.key and b.kind in ("const", "list"):
        return not _holds(op, value, b.value, True)
    if b.key == operand.key and a.kind == "const":
        return not _holds(op, value, a.value, False)
    return False


def _literal(value) -> str:
    return '"' + value + '"' if isinstance(value, str) else repr(value)


def _guard(operand: _Operand, value) -> str:
    if isinstance(value, bool):
        return operand.text if value is False else "!" + operand.text
    return f"{operand.text} != {_literal(value)}"


_SHOW_OPS = {**OPERATORS, ast.And: " && ", ast.Or: " || "}


def _show(node: ast.AST) -> str:
    """A condition fragment as written in policy.csv (``r.obj.x``, ``&&``, double quotes)."""
    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.Attribute):
        base, name = attr_path(node)
        return f"r.{base[2:]}.{name}" if base else ast.unparse(node)
    if isinstance(node, ast.Name):
        return "r." + node.id[2:] if node.id.startswith("r_") else node.id
    if isinstance(node, ast.Compare):
        parts = [_show(node.left)]
        for op, comp in zip(node.ops, node.comparators, strict=True):
            parts += [OPERATORS[type(op)], _show(comp)]
        return " ".join(parts)
    if isinstance(node, ast.BoolOp):
        return "(" + _SHOW_OPS[type(node.op)].join(_show(v) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        return "!" + _show(node.operand)
    if isinstance(node, ast.List | ast.Tuple):
        return "[" + ", ".join(_show(e) for e in node.elts) + "]"
    return ast.unparse(node)
