"""ABAC conditions: the syntax casbin sees, and its compilation to Python callables.

A rule's ``cond`` column is evaluated by casbin with simpleeval after two rewrites: first
``escape_assertion`` (``r.`` -> ``r_``, ``p.`` -> ``p_``), then ``&&`` -> ``and``, ``||`` -> ``or``
and ``!`` (not followed by ``=``) -> ``not``. We apply the very same rewrites to the same text
(:func:`casbin_rewrite`), parse the result with :mod:`ast` (:func:`parse_condition`), and generate
Python source for it (:func:`compile_conditions`), so the compiled function computes what
simpleeval computes on the same inputs. Only conditions accepted by
:func:`accessd.policy.condition_check.check_condition` (a small typed subset, checked when the
policy is loaded) are compiled.

Compiled callables take ``(S, O, E, P, A, F, T, G)``: subject dict (with ``id``), object
properties, env, purpose, action, field (``"*"`` for the record), resource type, and the
subject's principal set (its id plus every role and basis it holds, transitively).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence

_P_ESC = re.compile(r"\bp(\d*)\.")
_R_ESC = re.compile(r"\br(\d*)\.")
_BANG = re.compile(r"!(?!=)")


class ConditionError(ValueError):
    """A condition that does not parse, or that the policy may not hold (the reason)."""


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


#: request values a condition may read, and the parameter each is compiled to
VARIABLES = {"r_purpose": "P", "r_act": "A", "r_field": "F", "r_rtype": "T"}
#: request objects a condition reads attributes of, and their parameters
OBJECTS = {"r_sub": "S", "r_obj": "O", "r_env": "E"}
#: comparison operators accepted, as written
OPERATORS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


def parse_condition(text: str) -> ast.expr:
    """The expression casbin would evaluate for ``text``; raises ConditionError when it does not parse."""
    if not text.strip():
        raise ConditionError("empty condition (write True for an unconditional rule)")
    try:
        tree = ast.parse(casbin_rewrite(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"does not parse: {exc.msg}") from None
    return tree.body


def attr_path(node: ast.Attribute) -> tuple[str | None, str]:
    """``r_obj.owner.id`` -> ("r_obj", "owner.id"); (None, ...) when not read from r.sub/obj/env."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id in OBJECTS):
        return None, ""
    return node.id, ".".join(reversed(parts))


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
            parts += [OPERATORS[type(op)], _py(comp)]
        return "(" + " ".join(parts) + ")"
    if isinstance(node, ast.Attribute):
        base, name = attr_path(node)
        return OBJECTS[base] + "".join(f"[{seg!r}]" for seg in name.split("."))
    if isinstance(node, ast.Name):
        return VARIABLES[node.id]
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
