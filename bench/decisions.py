"""Decisions per second: the compiled engine against pycasbin on identical request streams.

    .venv/bin/python -m bench.decisions            # full run (~1-2 minutes)
    .venv/bin/python -m bench.decisions --quick    # a short smoke run

For the demo policy and a generated large one (1,000 users, 50 roles, 40 fields, 15% of rules
conditional) it times, in this process:

- the engine (``Engine.decide``) over the whole stream;
- casbin ``Enforcer`` and ``FastEnforcer`` (with the FastModel fix, indexed on rtype+act) over a
  prefix of the same stream (casbin is slow), each giving the three-way answer with as few
  queries as possible (a mask query, then a full query only if something is visible);

asserts that all three give identical answers on the shared prefix, and prints ratios measured
in the same run. It also times a record mask: 50 records x the 40 fields of the large type.
Exit status 1 if an answer differs or a target is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from accessd.policy.engine import Engine
from accessd.policy.policyset import load_policy_dir
from accessd.policy.reference import casbin as casbin_ref
from accessd.policy.reference.synthetic import generate_policy, generate_requests, generate_subjects

TARGET_ENFORCER = 100.0
TARGET_FAST = 10.0
TARGET_MASK_MS = 2.0


def time_engine(engine, requests, repeat: int = 3) -> tuple[float, list[str]]:
    decide = engine.decide
    best = float("inf")
    answers: list[str] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        answers = [
            decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today).effect
            for q in requests
        ]
        best = min(best, time.perf_counter() - t0)
    return len(requests) / best, answers


def time_casbin(enforcer, reqs) -> tuple[float, list[str]]:
    three_way = casbin_ref.three_way
    t0 = time.perf_counter()
    answers = [three_way(enforcer, r) for r in reqs]
    return len(reqs) / (time.perf_counter() - t0), answers


def bench_policy(name, policy, subjects, n_engine, n_enforcer, n_fast, seed):
    engine = Engine(policy, revision=1)
    requests = generate_requests(policy, subjects, n_engine, seed=seed)
    n_casbin = max(n_enforcer, n_fast)
    creqs = [
        casbin_ref.request(engine, q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
        for q in requests[:n_casbin]
    ]
    for q in requests[:2000]:  # warm the per-role-set tables (compiled once per role set)
        engine.decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
    eng_rate, eng_answers = time_engine(engine, requests)
    enf_rate, enf_answers = time_casbin(casbin_ref.build_enforcer(policy, subjects), creqs[:n_enforcer])
    fast_rate, fast_answers = time_casbin(
        casbin_ref.build_enforcer(policy, subjects, fast=True), creqs[:n_fast]
    )
    mismatches = sum(a != b for a, b in zip(eng_answers, enf_answers, strict=False)) + sum(
        a != b for a, b in zip(eng_answers, fast_answers, strict=False)
    )
    effects = {e: eng_answers.count(e) for e in ("allow", "mask", "deny")}
    return {
        "name": name,
        "rules": len(policy.rules),
        "engine": eng_rate,
        "enforcer": enf_rate,
        "fast": fast_rate,
        "n": (len(requests), n_enforcer, n_fast),
        "mismatches": mismatches,
        "effects": effects,
    }


def bench_mask(policy, subjects, repeats: int, seed: int) -> tuple[float, float, str]:
    """Median time of Engine.mask over 50 records of the 40-field type, for the busiest cell."""
    engine = Engine(policy)
    rng = random.Random(seed)
    requests = [q for q in generate_requests(policy, subjects, 4000, seed=seed) if q.rtype == "t0"]
    # the subject/action/purpose whose mask needs the most condition evaluation
    best, best_q = -1, None
    for q in requests[:400]:
        plan = engine._plan(engine.table_for(q.subject), q.rtype, q.action, q.purpose)
        work = len(plan.probes)
        if work > best:
            best, best_q = work, q
    q = best_q
    records = [r.properties for r in rng.sample(requests, 50)]
    cold_t0 = time.perf_counter()
    Engine(policy).mask(q.subject, q.rtype, q.action, q.purpose, records, q.today)
    cold = (time.perf_counter() - cold_t0) * 1000
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.mask(q.subject, q.rtype, q.action, q.purpose, records, q.today)
        times.append(time.perf_counter() - t0)
    desc = f"{len(q.subject.roles)} roles, {best} condition probes per record"
    return statistics.median(times) * 1000, cold, desc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (fewer requests, fewer casbin calls)")
    args = ap.parse_args(argv)
    q = args.quick
    root = Path(__file__).resolve().parents[1]

    t0 = time.perf_counter()
    demo = load_policy_dir(root / "policies")
    demo_subjects = generate_subjects(demo, 200, seed=1)
    print("generating the large policy (1,000 users, 50 roles, 40 fields, 15% conditional) ...", flush=True)
    large = generate_policy(seed=7, n_roles=50, n_fields=40, n_rules=1000, cond_share=0.15, deny_share=0.08)
    large_subjects = generate_subjects(large, 1000, seed=8, max_roles=4)
    t_compile = time.perf_counter()
    Engine(large)
    compile_ms = (time.perf_counter() - t_compile) * 1000

    results = [
        bench_policy(
            "demo", demo, demo_subjects, 20_000 if q else 100_000, 100 if q else 600, 200 if q else 1500, 3
        ),
        bench_policy(
            "large", large, large_subjects, 10_000 if q else 50_000, 15 if q else 60, 40 if q else 200, 4
        ),
    ]
    mask_ms, mask_cold, mask_desc = bench_mask(large, large_subjects, 30 if q else 200, seed=9)

    ok = True
    print()
    print(
        f"{'policy':<7}{'rules':>6}{'engine/s':>12}{'Enforcer/s':>12}{'Fast/s':>10}{'eng/Enf':>10}{'eng/Fast':>10}"
        f"  {'same answers'}"
    )
    for r in results:
        ratio_e, ratio_f = r["engine"] / r["enforcer"], r["engine"] / r["fast"]
        same = "yes" if r["mismatches"] == 0 else f"NO ({r['mismatches']} differ)"
        ok &= r["mismatches"] == 0
        print(
            f"{r['name']:<7}{r['rules']:>6}{r['engine']:>12,.0f}{r['enforcer']:>12,.1f}{r['fast']:>10,.1f}"
            f"{ratio_e:>9,.0f}x{ratio_f:>9,.0f}x  {same}"
        )
    for r in results:
        n_e, n_enf, n_fast = r["n"]
        print(
            f"  {r['name']}: engine {n_e:,} requests, Enforcer first {n_enf}, FastEnforcer first {n_fast}; "
            f"engine effects {r['effects']}"
        )
    print(f"  large policy compile: {compile_ms:.0f} ms (tables per role set are built lazily and cached)")
    print()
    large_r = results[1]
    checks = [
        (
            f"engine >= {TARGET_ENFORCER:.0f}x Enforcer (large)",
            large_r["engine"] / large_r["enforcer"] >= TARGET_ENFORCER,
        ),
        (
            f"engine >= {TARGET_FAST:.0f}x FastEnforcer (large)",
            large_r["engine"] / large_r["fast"] >= TARGET_FAST,
        ),
        (
            f"50-record x 40-field mask < {TARGET_MASK_MS} ms (median {mask_ms:.3f} ms;"
            f" first call {mask_cold:.1f} ms; {mask_desc})",
            mask_ms < TARGET_MASK_MS,
        ),
        ("identical answers engine / Enforcer / FastEnforcer", all(r["mismatches"] == 0 for r in results)),
    ]
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {label}")
        ok &= passed
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
