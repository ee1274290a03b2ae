"""Plain pycasbin as the reference implementation of a PolicySet (tests and benchmarks).

The engine must decide exactly as casbin does with ``model.conf`` + ``policy.csv`` plus one
``g, <subject id>, <role>`` row per subject grant. A three-way answer takes two casbin queries:
``level="full"`` (allow?) and ``level="mask"`` (at least a masked view?).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Mapping
from datetime import date

import casbin
from casbin import util
from casbin.model import FastModel, Model
from casbin.model.policy_fast import FastPolicy
from casbin.persist.adapter import Adapter, load_policy_line

from accessd.policy.engine import Engine
from accessd.policy.policyset import MODEL_FILE, RECORD_FIELD, PolicySet
from accessd.policy.rules import RULES_FILE


class TextAdapter(Adapter):
    """Loads policy lines from text, exactly as casbin's FileAdapter reads a file."""

    def __init__(self, *texts: str):
        self.lines = [line for text in texts for line in text.splitlines()]

    def load_policy(self, model):
        for line in self.lines:
            load_policy_line(line.strip(), model)


class FixedFastModel(FastModel):
    """pycasbin's FastModel.add_def returns None, so Model.load_model stops after the first
    assertion of each section (g2 is silently lost). Return Model.add_def's result instead."""

    def add_def(self, sec, key, value):
        ok = Model.add_def(self, sec, key, value)
        if ok and sec == "p" and key == "p":
            self.model[sec][key].policy = FastPolicy(self._cache_key_order)
        return ok


def subject_rows(subjects: Iterable) -> str:
    """``g`` rows granting each subject its roles (subjects have ``id`` and ``roles``).

    casbin keys grants by id alone, so two subjects with one id would merge their roles."""
    subjects = list(subjects)
    ids = [s.id for s in subjects]
    if len(set(ids)) != len(ids):
        raise ValueError("subject ids must be unique")
    return "\n".join(f"g, {s.id}, {role}" for s in subjects for role in sorted(s.roles))


def build_enforcer(policy: PolicySet, subjects: Iterable = (), fast: bool = False) -> casbin.Enforcer:
    """A casbin Enforcer (or FastEnforcer indexed on rtype, act) for the policy plus subject grants."""
    model_text = policy.files[MODEL_FILE]
    adapter = TextAdapter(policy.files[RULES_FILE], subject_rows(subjects))
    if fast:
        m = FixedFastModel([1, 2])
        m.load_model_from_text(model_text)
        return casbin.FastEnforcer(m, adapter, cache_key_order=[1, 2])
    m = Model()
    m.load_model_from_text(model_text)
    return casbin.Enforcer(m, adapter)


def request(
    engine,
    subject,
    rtype: str,
    action: str,
    field: str | None,
    purpose: str | None,
    properties: Mapping,
    today: date,
) -> tuple:
    """casbin request values (minus level) for an engine request, inputs coerced the same way
    and a missing purpose replaced by the type's default, as the engine does."""
    purpose = engine.resolve_purpose(rtype, purpose)
    sub = engine.subject_dict(subject)
    obj = engine.object_dict(rtype, properties)
    env = {"today": today.isoformat()}
    return (sub, rtype, action, RECORD_FIELD if field is None else field, purpose, obj, env)


def three_way(enforcer: casbin.Enforcer, req: tuple) -> str:
    """allow / mask / deny from casbin with as few queries as possible.

    The mask query accepts allow/full rows too, so it answers "anything visible?"; only when it
    does is the full query needed to tell allow from mask."""
    sub, rtype, act, field, purpose, obj, env = req
    if not enforcer.enforce(sub, rtype, act, field, purpose, "mask", obj, env):
        return "deny"
    if enforcer.enforce(sub, rtype, act, field, purpose, "full", obj, env):
        return "allow"
    return "mask"


def three_way_ex(enforcer: casbin.Enforcer, req: tuple) -> tuple[str, list[str]]:
    """Like :func:`three_way`, plus casbin's explanation (the deny row that decided, if any)."""
    sub, rtype, act, field, purpose, obj, env = req
    ok, explain = enforcer.enforce_ex(sub, rtype, act, field, purpose, "mask", obj, env)
    if not ok:
        return "deny", list(explain)
    ok, explain = enforcer.enforce_ex(sub, rtype, act, field, purpose, "full", obj, env)
    return ("allow" if ok else "mask"), list(explain)


def matching_rules(enforcer: casbin.Enforcer, req: tuple, level: str) -> list[str]:
    """Ids of every policy row casbin's matcher accepts for the request (casbin's own evaluator).

    Mirrors ``CoreEnforcer.enforce_ex``'s per-row evaluation without stopping at the first deny."""
    sub, rtype, act, field, purpose, obj, env = req
    rvals = (sub, rtype, act, field, purpose, level, obj, env)
    functions = enforcer.fm.get_functions()
    for key, ast in enforcer.model["g"].items():
        functions[key] = util.generate_g_function(ast.rm)
    r_tokens = enforcer.model["r"]["r"].tokens
    p_tokens = enforcer.model["p"]["p"].tokens
    exp_string = enforcer.model["m"]["m"].value
    r_parameters = dict(zip(r_tokens, rvals, strict=True))
    out = []
    for pvals in enforcer.model["p"]["p"].policy:
        p_parameters = dict(zip(p_tokens, pvals, strict=True))
        rules = [util.escape_assertion(p_parameters[name]) for name in util.get_eval_value(exp_string)]
        expr = enforcer._get_expression(util.replace_eval(exp_string, rules), functions)
        if expr.eval(dict(r_parameters, **p_parameters)) is True:
            out.append(p_parameters["p_id"])
    return out


class _ParseCache:
    def _get_expression(self, expr, functions=None):
        got = self._parsed.get(expr)
        if got is None:
            got = self._parsed[expr] = casbin.Enforcer._get_expression(expr, functions)
        return got


class ParseCachingEnforcer(_ParseCache, casbin.Enforcer):
    """casbin's Enforcer, unchanged except that each matcher text is parsed once.

    ``enforce_ex`` re-parses the matcher for every policy row on every request because of
    ``eval(p.cond)``; parsing is deterministic, so caching the parsed evaluator changes no answer
    and makes a 10,000-request equivalence run affordable. Only valid while the policy (and so
    the role managers the cached ``g`` functions close over) stays unchanged."""

    def __init__(self, *args, **kwargs):
        self._parsed: dict = {}
        super().__init__(*args, **kwargs)


class ParseCachingFastEnforcer(_ParseCache, casbin.FastEnforcer):
    """The same for FastEnforcer (rows indexed on exact rtype and act)."""

    def __init__(self, *args, **kwargs):
        self._parsed: dict = {}
        super().__init__(*args, **kwargs)


def build_caching_enforcer(policy: PolicySet, subjects: Iterable = (), fast: bool = False) -> casbin.Enforcer:
    """Like :func:`build_enforcer`, with each matcher text parsed once."""
    adapter = TextAdapter(policy.files[RULES_FILE], subject_rows(subjects))
    if fast:
        m = FixedFastModel([1, 2])
        m.load_model_from_text(policy.files[MODEL_FILE])
        return ParseCachingFastEnforcer(m, adapter, cache_key_order=[1, 2])
    m = Model()
    m.load_model_from_text(policy.files[MODEL_FILE])
    return ParseCachingEnforcer(m, adapter)


def compare(engine, enforcer, requests, exact_rules_every: int = 0, offset: int = 0) -> list[str]:
    """Decide every request with the engine and with casbin; return a description of each
    disagreement. Checks the effect, that casbin's explanation (a deny row) is among the
    engine's matched rules, and every ``exact_rules_every``-th request the exact set of rows
    casbin's matcher accepts for the deciding effect against ``Decision.matched_rules``."""
    eft = {r.id: (r.eft, r.level) for r in engine.policy.rules}
    problems = []
    for i, q in enumerate(requests):
        d = engine.decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
        req = request(engine, q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
        effect, explain = three_way_ex(enforcer, req)
        where = f"request {offset + i}: {q}"
        if effect != d.effect:
            problems.append(f"{where}: engine {d.effect} ({d.reason} {d.matched_rules}), casbin {effect}")
            continue
        if explain and (d.effect != "deny" or explain[-1] not in d.matched_rules):
            problems.append(f"{where}: casbin explains {explain[-1]}, engine matched {d.matched_rules}")
        if exact_rules_every and i % exact_rules_every == 0:
            level = "full" if d.effect == "allow" else "mask"
            hits = matching_rules(enforcer, req, level)
            want = {"deny": ("deny", "-"), "allow": ("allow", "full"), "mask": ("allow", "mask")}[d.effect]
            expected = sorted(h for h in hits if eft[h] == want)
            if sorted(d.matched_rules) != expected:
                problems.append(f"{where}: casbin rows {expected}, engine matched {sorted(d.matched_rules)}")
    return problems


def _compare_chunk(args) -> list[str]:
    files, revision, subjects, requests, fast, exact_every, offset = args
    policy = PolicySet.from_files(files)
    engine = Engine(policy, revision)
    enforcer = build_caching_enforcer(policy, subjects, fast=fast)
    return compare(engine, enforcer, requests, exact_every, offset)


def compare_parallel(
    policy: PolicySet, subjects, requests, fast: bool = True, exact_rules_every: int = 0, processes: int = 2
) -> list[str]:
    """:func:`compare` split over worker processes (casbin is slow; the machine has cores)."""
    n = max(1, processes)
    size = (len(requests) + n - 1) // n
    chunks = [
        (dict(policy.files), 1, list(subjects), requests[i : i + size], fast, exact_rules_every, i)
        for i in range(0, len(requests), size)
    ]
    if n == 1 or len(chunks) == 1:
        return [p for c in chunks for p in _compare_chunk(c)]
    with multiprocessing.get_context("fork").Pool(n) as pool:
        return [p for part in pool.map(_compare_chunk, chunks) for p in part]
