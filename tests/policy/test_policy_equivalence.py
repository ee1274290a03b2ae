"""The compiled engine decides exactly as casbin does with the same model and rules.

Every request is decided by the engine and by pycasbin (three-way: a ``mask`` query, then a
``full`` query when needed); effects must be identical, casbin's explanation row must be among
the engine's matched rules, and on a sample the engine's matched rules must equal the exact set
of rows casbin's matcher accepts. casbin parses its matcher once per row per request, so the
reference enforcers cache parsing (answers unchanged) and the work is split over two processes.
"""

from datetime import date
from pathlib import Path

import pytest

from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import load_policy_dir
from accessd.policy.reference import casbin as casbin_ref
from accessd.policy.reference.synthetic import generate_policy, generate_requests, generate_subjects

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _demo_subjects():
    """Random role sets (incl. none); half the requests name the subject as the assigned therapist."""
    policy = load_policy_dir(POLICIES)
    extra = Subject("t0", frozenset({"therapist"}), {"region": "north"})
    return policy, [*generate_subjects(policy, 40, seed=11), extra]


@pytest.mark.slow
def test_engine_equals_casbin_on_the_demo_policy():
    policy, subjects = _demo_subjects()
    requests = generate_requests(policy, subjects, 6000, seed=12)
    assert {q.field for q in requests} >= set(policy.catalogue.types["customer"].fields) | {None}
    problems = casbin_ref.compare_parallel(policy, subjects, requests, fast=True, exact_rules_every=25)
    assert problems == []


@pytest.mark.slow
def test_engine_equals_casbin_on_a_random_policy():
    policy = generate_policy(seed=21, n_roles=14, n_fields=14, n_rules=110)
    assert any(r.eft == "deny" and r.cond != "True" for r in policy.rules)
    assert any("g(r.sub.id" in r.cond for r in policy.rules)
    subjects = generate_subjects(policy, 40, seed=22)
    requests = generate_requests(policy, subjects, 5000, seed=23)
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
