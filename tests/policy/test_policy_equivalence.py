"""The compiled engine decides exactly as casbin does with the same model and rules.

Two kinds of proof, both in the default run:

- a fixed table (``equivalence_cases.yaml``): every field and the record of the demo types for
  every role, each purpose, missing and empty attributes, every conditional rule; the effect is
  written down, and the engine and pycasbin must each give it;
- seeded random requests on the demo policy and on random policies, in chunks of
  :data:`CHUNK` requests that run as separate tests. ``ACCESSD_EQUIVALENCE_REQUESTS`` sets how
  many per policy kind (default :data:`DEFAULT_REQUESTS`; 6000 runs about the size the suite
  used to run in two long tests). Each chunk draws its own requests, and on the random side its
  own random policy. Random demo requests seldom meet a masked answer (9 in 6,000) or a given
  rule; the table is what makes sure each is asked.

In the random chunks every request is decided by the engine and by pycasbin (three-way: a
``mask`` query, then a ``full`` query when needed); effects must be identical, casbin's
explanation row must be among the engine's matched rules, and on a sample the engine's matched
rules must equal the exact set of rows casbin's matcher accepts. casbin parses its matcher once
per row per request, so the reference enforcers cache parsing (answers unchanged) and the work
of a chunk is split over two processes.
"""

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import PolicySet, load_policy_dir
from accessd.policy.reference import casbin as casbin_ref
from accessd.policy.reference.synthetic import (
    Request,
    generate_policy,
    generate_requests,
    generate_subjects,
)
from accessd.policy.yamlfile import check_keys, load_yaml

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CASES_FILE = Path(__file__).with_name("equivalence_cases.yaml")

DEFAULT_REQUESTS = 1200
REQUESTS = int(os.environ.get("ACCESSD_EQUIVALENCE_REQUESTS") or DEFAULT_REQUESTS)
CHUNK = 300
CHUNKS = range(max(1, -(-REQUESTS // CHUNK)))


def _chunk_size(chunk: int) -> int:
    return min(CHUNK, REQUESTS - chunk * CHUNK)


# ---------------------------------------------------------------------------------------------
# the fixed table


@dataclass(frozen=True)
class FixedCase:
    where: str  # file:line and name of the table row
    request: Request
    expect: str  # allow | mask | deny


def _args(q: Request) -> tuple:
    """A request as the engine's (and the casbin reference's) positional arguments."""
    return (q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)


_CASE_KEYS = {"name", "subject", "resource", "action", "purpose", "allow", "mask", "deny", "record"}


def _expected_effects(case, fields: list[str]) -> dict:
    """field (None: the record) -> the effect the case writes down for it."""
    check_keys(case, _CASE_KEYS, CASES_FILE.name, "case", _CASE_KEYS - {"allow", "mask", "deny", "record"})
    listed: dict[str, str] = {}
    rest = "deny"
    for effect in ("allow", "mask", "deny"):
        names = case.get(effect, [])
        if names == "rest":
            rest = effect
            continue
        for name in names:
            assert name in fields, f"{CASES_FILE.name}:{case.line}: {name!r} is not a field"
            assert name not in listed, f"{CASES_FILE.name}:{case.line}: {name!r} listed twice"
            listed[name] = effect
    return {None: case.get("record", "deny"), **{f: listed.get(f, rest) for f in fields}}


def _fixed_cases(policy: PolicySet) -> tuple[list[Subject], list[FixedCase]]:
    """The table's subjects, and one case per field (and the record) of every table row."""
    data = load_yaml(CASES_FILE.read_text(encoding="utf-8"), CASES_FILE.name)
    subjects = {
        key: Subject(str(s["id"]), frozenset(s.get("roles") or ()), dict(s.get("attributes") or {}))
        for key, s in data["subjects"].items()
    }
    out = []
    for case in data["cases"]:
        resource = data["resources"][case["resource"]]
        rtype, props = resource["type"], dict(resource.get("properties") or {})
        fields = list(policy.catalogue.types[rtype].fields)
        subject = subjects[case["subject"]]
        for field, effect in _expected_effects(case, fields).items():
            q = Request(subject, rtype, case["action"], field, case["purpose"], props, data["today"])
            out.append(FixedCase(f"{CASES_FILE.name}:{case.line} {case['name']}", q, effect))
    return list(subjects.values()), out


def test_the_fixed_cases_decide_as_written_in_the_engine_and_in_casbin():
    policy = load_policy_dir(POLICIES)
    subjects, cases = _fixed_cases(policy)
    engine = Engine(policy)
    enforcer = casbin_ref.build_caching_enforcer(policy, subjects, fast=True)
    wrong = []
    for c in cases:
        q = c.request
        ours = engine.decide(*_args(q))
        theirs = casbin_ref.three_way(enforcer, casbin_ref.request(engine, *_args(q)))
        if ours.effect != c.expect or theirs != c.expect:
            wrong.append(
                f"{c.where}, {q.field or 'the record'}: expected {c.expect}, "
                f"engine {ours.effect} ({ours.reason} {list(ours.matched_rules)}), casbin {theirs}"
            )
    assert wrong == []


def test_the_fixed_cases_reach_every_role_purpose_action_and_rule():
    policy = load_policy_dir(POLICIES)
    subjects, cases = _fixed_cases(policy)
    cat = policy.catalogue
    assert {role for s in subjects for role in s.roles} == set(cat.roles)
    assert {c.request.purpose for c in cases} == set(cat.purposes)
    assert {(c.request.rtype, c.request.action) for c in cases} == {
        (name, action) for name, t in cat.types.items() for action in t.actions
    }
    assert {c.expect for c in cases} == {"allow", "mask", "deny"}
    engine = Engine(policy)
    matched = {rule for c in cases for rule in engine.decide(*_args(c.request)).matched_rules}
    assert {r.id for r in policy.rules} - matched == set()


# ---------------------------------------------------------------------------------------------
# the random run, in chunks


def _demo_subjects():
    """Random role sets (incl. none); half the requests name the subject as the assigned therapist."""
    policy = load_policy_dir(POLICIES)
    extra = Subject("t0", frozenset({"therapist"}), {"region": "north"})
    return policy, [*generate_subjects(policy, 40, seed=11), extra]


def _demo_requests(policy, subjects, chunk: int) -> list[Request]:
    return generate_requests(policy, subjects, _chunk_size(chunk), seed=12 + 100 * chunk)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", CHUNKS)
def test_engine_equals_casbin_on_the_demo_policy(chunk):
    policy, subjects = _demo_subjects()
    requests = _demo_requests(policy, subjects, chunk)
    problems = casbin_ref.compare_parallel(policy, subjects, requests, fast=True, exact_rules_every=25)
    assert problems == []


def test_the_random_demo_requests_reach_every_field_role_and_purpose():
    """What the demo chunks ask, taken together (the old single run asserted the same)."""
    policy, subjects = _demo_subjects()
    requests = [q for chunk in CHUNKS for q in _demo_requests(policy, subjects, chunk)]
    customer = [q for q in requests if q.rtype == "customer"]
    assert {q.field for q in customer} >= set(policy.catalogue.types["customer"].fields) | {None}
    assert {role for q in requests for role in q.subject.roles} == set(policy.catalogue.roles)
    assert {q.purpose for q in requests} >= set(policy.catalogue.purposes)
    assert any(q.properties["assigned_therapist_id"] == q.subject.id for q in customer)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", CHUNKS)
def test_engine_equals_casbin_on_a_random_policy(chunk):
    policy = generate_policy(seed=21 + 100 * chunk, n_roles=14, n_fields=14, n_rules=110)
    assert any(r.eft == "deny" and r.cond != "True" for r in policy.rules)
    assert any("g(r.sub.id" in r.cond for r in policy.rules)
    subjects = generate_subjects(policy, 40, seed=22 + 100 * chunk)
    requests = generate_requests(policy, subjects, _chunk_size(chunk), seed=23 + 100 * chunk)
    problems = casbin_ref.compare_parallel(policy, subjects, requests, fast=True, exact_rules_every=25)
    assert problems == []


@pytest.mark.slow
def test_engine_equals_plain_enforcer_with_wildcard_actions():
    """FastEnforcer cannot index ``*`` actions; the plain Enforcer is the reference for them."""
    policy = generate_policy(seed=31, n_roles=10, n_fields=10, n_rules=50, star_actions=True)
    assert any(r.act == "*" for r in policy.rules)
    subjects = generate_subjects(policy, 20, seed=32)
    requests = generate_requests(policy, subjects, 500, seed=33)
    problems = casbin_ref.compare_parallel(policy, subjects, requests, fast=False, exact_rules_every=10)
    assert problems == []


def test_unmodified_casbin_enforcers_agree_with_the_engine():
    """No parse cache: the stock Enforcer and FastEnforcer (with the FastModel fix) as shipped."""
    policy, subjects = _demo_subjects()
    engine = Engine(policy)
    requests = generate_requests(policy, subjects, 60, seed=41)
    for fast in (False, True):
        enforcer = casbin_ref.build_enforcer(policy, subjects, fast=fast)
        assert casbin_ref.compare(engine, enforcer, requests) == []


def test_fast_model_fix_keeps_field_groups():
    policy, subjects = _demo_subjects()
    enforcer = casbin_ref.build_enforcer(policy, subjects, fast=True)
    assert "g2" in enforcer.get_model()["g"]


@pytest.mark.parametrize("kind", ["demo", "random"])
def test_record_mask_equals_per_field_decisions(kind):
    if kind == "demo":
        policy, subjects = _demo_subjects()
    else:
        policy = generate_policy(seed=51, n_roles=12, n_fields=16, n_rules=150)
        subjects = generate_subjects(policy, 30, seed=52)
    engine = Engine(policy)
    requests = generate_requests(policy, subjects, 400, seed=53)
    for i in range(0, len(requests), 4):
        q = requests[i]
        group = [r.properties for r in requests[i : i + 4] if r.rtype == q.rtype]
        masks = engine.mask(q.subject, q.rtype, q.action, q.purpose, group, q.today)
        for props, m in zip(group, masks, strict=True):
            for f in policy.catalogue.types[q.rtype].fields:
                d = engine.decide(q.subject, q.rtype, q.action, f, q.purpose, props, q.today)
                assert m.effect(f) == d.effect, (q, f, d)
                assert m.matched_rules[f] == d.matched_rules, (q, f, d)


def test_generated_requests_are_reproducible():
    policy = generate_policy(seed=5)
    assert generate_policy(seed=5).files == policy.files
    subjects = generate_subjects(policy, 5, seed=6)
    assert generate_requests(policy, subjects, 50, seed=7) == generate_requests(policy, subjects, 50, seed=7)
    assert any(q.today == date(2025, 6, 1) for q in generate_requests(policy, subjects, 50, seed=7))
