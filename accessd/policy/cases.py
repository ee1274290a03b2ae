"""Policy tests: YAML cases run against the engine (``accessd policy test [DIR]``).

A test file (``policies/tests/*.yaml``)::

    today: 2025-06-01              # decision date for the file (optional; default: the clock's)
    subjects:                      # named subjects cases can refer to (optional)
      anna: {id: anna, roles: [therapist], attributes: {region: north}}
    resources:                     # named resources (optional)
      anna_client: {type: customer, properties: {assigned_therapist_id: anna}}
    cases:
      - name: therapist reads the diagnosis of her own client
        subject: anna              # a name from subjects:, or a mapping
        resource: anna_client      # a name from resources:, or a mapping
        properties: {legal_hold: true}   # merged over the resource's properties (optional)
        action: read
        purpose: care              # optional: omitted or null = the type's default_purpose
        field: diagnosis           # null or "*" = the record as a whole
        expect: allow              # allow | mask | deny
        reason: allowed            # optional
        rules: [therapist-clinical-own]  # optional: exact matched rule ids
      - name: ...
        expect_fields: {allowed: [...], masked: [...], denied: [...]}   # a whole-record mask

Subjects: ``id``, ``roles``, ``attributes``, ``status`` (default active), ``start_date``,
``end_date``. A case may override ``today``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from accessd import clock
from accessd.errors import Invalid, PolicyError
from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import PolicySet, load_policy_dir
from accessd.policy.yamlfile import LineDict, check_keys, load_yaml

_FILE_KEYS = {"today", "subjects", "resources", "cases", "description"}
_CASE_KEYS = {
    "name",
    "subject",
    "resource",
    "properties",
    "action",
    "purpose",
    "field",
    "expect",
    "reason",
    "rules",
    "expect_fields",
    "today",
}
_SUBJECT_KEYS = {"id", "roles", "attributes", "status", "start_date", "end_date"}
_RESOURCE_KEYS = {"type", "properties"}


@dataclass(frozen=True)
class CaseResult:
    name: str
    file: str
    passed: bool
    message: str = ""
    line: int | None = None


def run_policy_tests(
    policy_dir: str | Path | PolicySet, tests_dir: str | Path | None = None
) -> list[CaseResult]:
    """Run every case in ``tests_dir`` (default ``<policy_dir>/tests``) against the policy.

    Raises PolicyError when the policy or a test file is malformed (file and line named)."""
    if isinstance(policy_dir, PolicySet):
        policy = policy_dir
        if tests_dir is None:
            raise ValueError("tests_dir is required when a PolicySet is given")
    else:
        policy = load_policy_dir(policy_dir)
        if tests_dir is None:
            tests_dir = Path(policy_dir) / "tests"
    engine = Engine(policy)
    tests_path = Path(tests_dir)
    files = sorted(tests_path.glob("*.yaml")) + sorted(tests_path.glob("*.yml"))
    if not files:
        raise PolicyError(str(tests_path), None, "no policy test files (*.yaml)")
    results: list[CaseResult] = []
    for path in files:
        results.extend(run_test_file(engine, path.read_text(encoding="utf-8"), path.name))
    return results


def _date(value: Any, file: str, line: int, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(file, line, f"{what} must be a date YYYY-MM-DD, not {value!r}") from None


def _subject(spec: Any, presets: Mapping, file: str, line: int) -> Subject:
    if isinstance(spec, str):
        if spec not in presets:
            raise PolicyError(file, line, f"unknown subject {spec!r} (not in subjects:)")
        return presets[spec]
    check_keys(spec, _SUBJECT_KEYS, file, "subject", {"id"})
    roles = spec.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise PolicyError(file, spec.line_of("roles"), "roles must be a list of role names")
    attrs = spec.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise PolicyError(file, spec.line_of("attributes"), "attributes must be a mapping")
    return Subject(
        id=str(spec["id"]),
        roles=frozenset(roles),
        attributes=dict(attrs),
        status=str(spec.get("status", "active")),
        start_date=_date(spec.get("start_date"), file, spec.line_of("start_date"), "start_date"),
        end_date=_date(spec.get("end_date"), file, spec.line_of("end_date"), "end_date"),
    )


def _resource(spec: Any, presets: Mapping, file: str, line: int) -> tuple[str, dict]:
    if isinstance(spec, str):
        if spec not in presets:
            raise PolicyError(file, line, f"unknown resource {spec!r} (not in resources:)")
        return presets[spec]
    check_keys(spec, _RESOURCE_KEYS, file, "resource", {"type"})
    props = spec.get("properties") or {}
    if not isinstance(props, dict):
        raise PolicyError(file, spec.line_of("properties"), "properties must be a mapping")
    return str(spec["type"]), dict(props)


def run_test_file(engine: Engine, text: str, file: str) -> list[CaseResult]:
    data = load_yaml(text, file)
    check_keys(data, _FILE_KEYS, file, "test file", {"cases"})
    file_today = _date(data.get("today"), file, data.line_of("today"), "today") or clock.today()
    subjects = {}
    for name, spec in (data.get("subjects") or LineDict()).items():
        subjects[name] = _subject(spec, {}, file, data["subjects"].line_of(name))
    resources = {}
    for name, spec in (data.get("resources") or LineDict()).items():
        resources[name] = _resource(spec, {}, file, data["resources"].line_of(name))
    cases = data["cases"]
    if not isinstance(cases, list):
        raise PolicyError(file, data.line_of("cases"), "cases must be a list")
    results = []
    names: set[str] = set()
    for case in cases:
        check_keys(case, _CASE_KEYS, file, "case", {"name", "subject", "resource", "action"})
        name = str(case["name"])
        if name in names:
            raise PolicyError(file, case.line, f"duplicate case name {name!r}")
        names.add(name)
        results.append(_run_case(engine, case, name, file, file_today, subjects, resources))
    return results


def _run_case(engine, case, name, file, file_today, subjects, resources) -> CaseResult:
    line = case.line
    subject = _subject(case["subject"], subjects, file, case.line_of("subject"))
    rtype, props = _resource(case["resource"], resources, file, case.line_of("resource"))
    extra = case.get("properties") or {}
    if not isinstance(extra, dict):
        raise PolicyError(file, case.line_of("properties"), "properties must be a mapping")
    props = {**props, **extra}
    today = _date(case.get("today"), file, case.line_of("today"), "today") or file_today
    action = str(case["action"])
    purpose = None if case.get("purpose") is None else str(case["purpose"])
    has_field = "field" in case or "expect" in case
    if has_field == ("expect_fields" in case):
        raise PolicyError(file, line, f"case {name!r}: give either field + expect or expect_fields")

    def result(passed: bool, message: str = "") -> CaseResult:
        return CaseResult(name, file, passed, message, line)

    try:
        if has_field:
            if case.get("expect") not in ("allow", "mask", "deny"):
                raise PolicyError(
                    file, case.line_of("expect"), f"case {name!r}: expect must be allow, mask or deny"
                )
            fld = case.get("field")
            fld = None if fld in (None, "*") else str(fld)
            d = engine.decide(subject, rtype, action, fld, purpose, props, today)
            problems = []
            if d.effect != case["expect"]:
                problems.append(f"expected {case['expect']}, got {d.effect}")
            if "reason" in case and d.reason != case["reason"]:
                problems.append(f"expected reason {case['reason']}, got {d.reason}")
            if "rules" in case and sorted(d.matched_rules) != sorted(case["rules"] or []):
                problems.append(
                    f"expected rules {sorted(case['rules'] or [])}, got {sorted(d.matched_rules)}"
                )
            if problems:
                got = f"(decision: {d.effect}, reason {d.reason}, rules {list(d.matched_rules)})"
                return result(False, "; ".join(problems) + " " + got)
            return result(True)
        want = case["expect_fields"]
        check_keys(want, {"allowed", "masked", "denied"}, file, "expect_fields")
        m = engine.mask(subject, rtype, action, purpose, [props], today)[0]
        problems = []
        for key in ("allowed", "masked", "denied"):
            if key in want:
                exp = set(want[key] or [])
                got = set(getattr(m, key))
                if exp != got:
                    diff = []
                    if exp - got:
                        diff.append(f"missing {sorted(exp - got)}")
                    if got - exp:
                        diff.append(f"unexpected {sorted(got - exp)}")
                    problems.append(f"{key}: {', '.join(diff)}")
        if problems:
            return result(False, "; ".join(problems))
        return result(True)
    except Invalid as exc:
        if isinstance(exc, PolicyError):
            raise
        return result(False, f"bad input: {exc.message}")


def format_results(results: list[CaseResult]) -> str:
    """Text for the CLI: one line per failure and a summary."""
    lines = [f"FAIL {r.file}:{r.line or '?'} {r.name}: {r.message}" for r in results if not r.passed]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)
