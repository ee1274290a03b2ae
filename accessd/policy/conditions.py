"""ABAC conditions: check them against the catalogue and compile them to Python callables.

A rule's ``cond`` column is evaluated by casbin with simpleeval after two rewrites: first
``escape_assertion`` (``r.`` -> ``r_``, ``p.`` -> ``p_``), then ``&&`` -> ``and``, ``||`` -> ``or``
and ``!`` (not followed by ``=``) -> ``not``. We apply the very same rewrites to the same text,
parse the result with :mod:`ast`, accept only a small typed subset, and generate Python source
for it, so the compiled function computes what simpleeval computes on the same inputs.

Accepted: ``and``/``or``/``not``; comparisons ``== != < <= > >= in not in``; ``r.sub.X``,
``r.obj.X``, ``r.env.today``, ``r.purpose``, ``r.act``, ``r.field``, ``r.rtype``; constants
(text, integers, True/False) and lists/tuples of constants (right of ``in``); and
``g(r.sub.id, "role-or-basis")``. Every leaf of and/or/not and the whole condition must be
boolean (so simpleeval's value-returning ``and``/``or`` cannot leak a non-bool to casbin).

Compiled callables take ``(S, O, E, P, A, F, T, G)``: subject dict (with ``id``), object
properties, env, purpose, action, field (``"*"`` for the record), resource type, and the
subject's principal set (its id plus every role and basis it holds, transitively).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence

from accessd.policy.model import Catalogue

_P_ESC = re.compile(r"\bp(\d*)\.")
_R_ESC = re.compile(r"\br(\d*)\.")
_BANG = re.compile(r"!(?!=)")


class ConditionError(ValueError):
    pass


def casbin_rewrite(text: str) -> str:
    """The exact text transformation casbin applies before simpleeval parses a condition."""
    s = text
    m = _P_ESC.search(s)
    if m is not None:
        s = re.sub(rf"\bp{m.group(1)}\.", f"p{m.group(1)}_", s)
    m = _R_ESC.search(s)
    if m is not None:
        s = re.sub(rf"\br{m.group(1)}\.", f"r{m.group(1)}_", s)
    s = s.replace("&&", "and").replace("||", "or")
    return _BANG.sub("not ", s)


_VARS = {"r_purpose": "P", "r_act": "A", "r_field": "F", "r_rtype": "T"}
_OBJS = {"r_sub": "S", "r_obj": "O", "r_env": "E"}
_CMP = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_ORDERED = {"string": "text", "date": "text", "int": "int"}


def parse_condition(text: str) -> ast.expr:
    if not text.strip():
        raise ConditionError("empty condition (write True for an unconditional rule)")
    try:
        tree = ast.parse(casbin_rewrite(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"does not parse: {exc.msg}") from None
    return tree.body


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
                if type(op) not in _CMP:
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
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in _OBJS):
                raise ConditionError("attributes may only be read from r.sub, r.obj and r.env")
            return self.attr_type(base.id, node.attr)
        if isinstance(node, ast.Name):
            if node.id in _VARS:
                return "string"
            if node.id in _OBJS:
                raise ConditionError(f"{node.id.replace('_', '.', 1)} must be used with an attribute")
            raise ConditionError(f"unknown name {node.id.replace('_', '.', 1)!r}")
        if isinstance(node, ast.Call):
            self.check_g(node)
            return "bool"
        if isinstance(node, ast.List | ast.Tuple):
            raise ConditionError("a list may only appear right of 'in'")
        raise ConditionError(f"{type(node).__name__} is not allowed in a condition")

    def attr_type(self, base: str, attr: str) -> str:
        if base == "r_sub":
            if attr == "id":
                return "string"
            spec = self.cat.subject_attributes.get(attr)
            if spec is None:
                raise ConditionError(f"r.sub.{attr} is not a declared subject attribute")
            return spec.type
        if base == "r_obj":
            spec = self.props.get(attr)
            if spec is None:
                raise ConditionError(f"r.obj.{attr} is not a declared property of this resource type")
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


def check_condition(text: str, cat: Catalogue, rtype: str) -> ast.expr:
    """Parse and type-check a condition for rules on ``rtype``; raises ConditionError."""
    node = parse_condition(text)
    t = _Checker(cat, rtype).type_of(node)
    if t != "bool":
        raise ConditionError(f"the condition is {t}, not a true/false test")
    return node


def is_constant(text: str) -> bool | None:
    """True/False for a constant condition, None for one that depends on the request."""
    node = parse_condition(text)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def reads_field(text: str) -> bool:
    """Whether a condition reads r.field (its answer can differ between fields of one record)."""
    return any(isinstance(n, ast.Name) and n.id == "r_field" for n in ast.walk(parse_condition(text)))


def _py(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.BoolOp):
        op = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + op.join(_py(v) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        return f"(not {_py(node.operand)})"
    if isinstance(node, ast.Compare):
        parts = [_py(node.left)]
        for op, comp in zip(node.ops, node.comparators, strict=True):
            parts += [_CMP[type(op)], _py(comp)]
        return "(" + " ".join(parts) + ")"
    if isinstance(node, ast.Attribute):
        return f"{_OBJS[node.value.id]}[{node.attr!r}]"
    if isinstance(node, ast.Name):
        return _VARS[node.id]
    if isinstance(node, ast.Call):
        return f"({node.args[1].value!r} in G)"
    if isinstance(node, ast.List | ast.Tuple):
        return "(" + "".join(_py(e) + ", " for e in node.elts) + ")"
    raise ConditionError(f"cannot compile {type(node).__name__}")  # unreachable after checking


Condition = Callable[[dict, dict, dict, str, str, str, str, frozenset], bool]


def compile_conditions(texts: Sequence[str]) -> list[Condition]:
    """Compile already-checked condition texts into callables (one module, one compile())."""
    lines = []
    for i, text in enumerate(texts):
        lines.append(f"def _c{i}(S, O, E, P, A, F, T, G):\n    return {_py(parse_condition(text))}\n")
    namespace: dict = {"__builtins__": {}}
    exec(compile("".join(lines), "<accessd-conditions>", "exec"), namespace)  # generated from checked AST
    return [namespace[f"_c{i}"] for i in range(len(texts))]
