"""Decisions per second: the compiled engine against pycasbin and Cedar on identical request streams.

    .venv/bin/python -m bench.decisions            # full run (~1-2 minutes)
    .venv/bin/python -m bench.decisions --quick    # a short smoke run

For the demo policy and a generated large one (1,000 users, 50 roles, 40 fields, 15% of rules
conditional) it times, in this process:

- the engine (``Engine.decide``) over the whole stream;
- casbin ``Enforcer`` and ``FastEnforcer`` (with the FastModel fix, indexed on rtype+act) over a
  prefix of the same stream (casbin is slow), each giving the three-way answer with as few
  queries as possible (a mask query, then a full query only if something is visible);
- Cedar (``cedarpy``, the Rust engine's Python binding) on the policy translated by
  :mod:`bench.cedar_policy`, over a prefix of the stream: with the policy set sliced by resource
  type and action (as an application slices a large Cedar policy set; each batch adds its
  records to the entities), and with the whole set on a shorter prefix. Besides the rate through
  cedarpy it prints the rate Cedar's own authorization time gives (cedarpy's
  ``authz_duration_micros``, whole microseconds per request: no JSON, no Python);

asserts that all engines give identical answers (for Cedar also the same matched rules, and no
evaluation error) on the shared prefix, and prints ratios measured in the same run. Requests or
rules that have no Cedar equivalent (none in these two policies) are left out of the Cedar
comparison and counted. It also times a record mask: 50 records x the 40 fields of the large
type. Exit status 1 if an answer differs or a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import cedarpy

from accessd.policy.engine import Engine
from accessd.policy.policyset import load_policy_dir
from accessd.policy.reference import casbin as casbin_ref
from accessd.policy.reference.synthetic import generate_policy, generate_requests, generate_subjects
from bench import cedar_policy

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


def time_cedar(cp, base, work) -> tuple[float, float, dict]:
    """Decisions per second through cedarpy, and by Cedar's own authorization time alone."""
    t0 = time.perf_counter()
    out = cedar_policy.run(cp, base, work)
    elapsed = time.perf_counter() - t0
    own = sum(res.metrics.get("authz_duration_micros", 0) for _, res in out.values()) / 1e6
    return len(out) / elapsed, len(out) / max(own, 1e-6), out


def cedar_mismatches(engine, cp, requests, answers, out) -> list[str]:
    """Where Cedar differs from the engine: the effect, the matched rules, or an evaluation error
    (Cedar skips a policy that errors, which for a forbid would fail open)."""
    problems = []
    for i, (effect, res) in out.items():
        q = requests[i]
        if res.diagnostics.errors:
            problems.append(f"request {i}: Cedar errors {res.diagnostics.errors}")
        elif effect != answers[i]:
            problems.append(f"request {i}: engine {answers[i]}, Cedar {effect}")
        else:
            d = engine.decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
            cedar_rules = cedar_policy.matched_rules(cp, res, effect)
            if sorted(d.matched_rules) != cedar_rules:
                problems.append(f"request {i}: engine matched {sorted(d.matched_rules)}, Cedar {cedar_rules}")
    return problems


def bench_policy(name, policy, subjects, n_engine, n_enforcer, n_fast, n_cedar, n_cedar_all, seed):
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

    cp = cedar_policy.translate(policy)
    base = cedarpy.Entities.from_json_str(json.dumps(cedar_policy.base_entities(policy, engine, subjects)))
    sliced, left_out = cedar_policy.batches(cp, engine, requests[:n_cedar], sliced=True)
    whole, _ = cedar_policy.batches(cp, engine, requests[:n_cedar_all], sliced=False)
    cedar_rate, cedar_own, cedar_out = time_cedar(cp, base, sliced)
    cedar_all_rate, cedar_all_own, cedar_all_out = time_cedar(cp, base, whole)
    cedar_problems = cedar_mismatches(engine, cp, requests, eng_answers, cedar_out)
    cedar_problems += cedar_mismatches(engine, cp, requests, eng_answers, cedar_all_out)
    return {
        "name": name,
        "rules": len(policy.rules),
        "engine": eng_rate,
        "enforcer": enf_rate,
        "fast": fast_rate,
        "n": (len(requests), n_enforcer, n_fast),
        "mismatches": mismatches,
        "effects": effects,
        "cedar": cedar_rate,
        "cedar_own": cedar_own,
        "cedar_all": cedar_all_rate,
        "cedar_all_own": cedar_all_own,
        "cedar_n": (len(cedar_out), len(cedar_all_out), left_out),
        "cedar_policies": (len(cp.policies), max(len(ps) for ps in cp.slices.values())),
        "cedar_skipped": cp.skipped,
        "cedar_problems": cedar_problems,
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
            "demo",
            demo,
            demo_subjects,
            *((20_000, 100, 200, 4_000, 500) if q else (100_000, 600, 1500, 20_000, 2_000)),
            seed=3,
        ),
        bench_policy(
            "large",
            large,
            large_subjects,
            *((10_000, 15, 40, 2_000, 300) if q else (50_000, 60, 200, 10_000, 1_000)),
            seed=4,
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
    print(
        f"{'policy':<7}{'engine/s':>10}{'Cedar/s':>10}{'own/s':>9}{'all/s':>8}{'all own/s':>11}"
        f"{'eng/Cedar':>11}{'eng/own':>9}{'eng/all':>9}  same answers"
    )
    for r in results:
        e = r["engine"]
        same = "yes" if not r["cedar_problems"] else f"NO ({len(r['cedar_problems'])} differ)"
        print(
            f"{r['name']:<7}{e:>10,.0f}{r['cedar']:>10,.0f}{r['cedar_own']:>9,.0f}{r['cedar_all']:>8,.0f}"
            f"{r['cedar_all_own']:>11,.0f}{e / r['cedar']:>10,.1f}x{e / r['cedar_own']:>8,.1f}x"
            f"{e / r['cedar_all']:>8,.0f}x  {same}"
        )
    print(
        "  Cedar/s: policies sliced by (type, action), through cedarpy (requests, records and results "
        "as JSON); own/s: Cedar's own authorization time alone; all: the whole policy set"
    )
    for r in results:
        n_sliced, n_all, left = r["cedar_n"]
        whole, biggest = r["cedar_policies"]
        skipped = r["cedar_skipped"]
        kept = "every rule translated" if not skipped else f"{len(skipped)} rules not translatable: {skipped}"
        print(
            f"  {r['name']}: {whole} Cedar policies (largest slice {biggest}), {kept}; sliced first "
            f"{n_sliced:,} requests, whole set first {n_all:,}; {left} left out (no Cedar equivalent)"
        )
        for problem in r["cedar_problems"][:5]:
            print(f"    {problem}")
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
        (
            "identical answers and matched rules engine / Cedar, no Cedar errors",
            all(not r["cedar_problems"] for r in results),
        ),
    ]
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {label}")
        ok &= passed
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
