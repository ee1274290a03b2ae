"""The shipped policy tests pass, and a wrong expectation fails naming its case."""

import shutil
from pathlib import Path

import pytest

from accessd.errors import PolicyError
from accessd.policy.cases import format_results, run_policy_tests

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_shipped_policy_tests_all_pass():
    results = run_policy_tests(POLICIES)
    assert len(results) >= 40
    failed = [f"{r.file}: {r.name}: {r.message}" for r in results if not r.passed]
    assert failed == []


@pytest.fixture
def policy_copy(tmp_path):
    dest = tmp_path / "policies"
    shutil.copytree(POLICIES, dest)
    return dest


def test_a_wrong_expectation_fails_and_names_the_case(policy_copy):
    path = policy_copy / "tests" / "clinical.yaml"
    text = path.read_text()
    marker = "  - name: therapist cannot read the diagnosis of another therapist's client\n"
    start = text.index(marker)
    end = text.index("expect: deny", start)
    path.write_text(text[:end] + "expect: allow" + text[end + len("expect: deny") :])
    results = run_policy_tests(policy_copy)
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["therapist cannot read the diagnosis of another therapist's client"]
    assert failed[0].file == "clinical.yaml"
    assert failed[0].line == text[:start].count("\n") + 1
    assert "expected allow, got deny" in failed[0].message
    report = format_results(results)
    assert "FAIL clinical.yaml" in report and "1 failed" in report


def test_a_wrong_field_list_reports_the_difference(policy_copy):
    path = policy_copy / "tests" / "front_office.yaml"
    path.write_text(
        path.read_text().replace(
            "masked: [iban]\n      denied: [insurer", "masked: []\n      denied: [insurer", 1
        )
    )
    failed = [r for r in run_policy_tests(policy_copy) if not r.passed]
    assert len(failed) == 1 and "masked: unexpected ['iban']" in failed[0].message


def test_unknown_case_key_is_a_policy_error_with_line(policy_copy):
    path = policy_copy / "tests" / "invoices.yaml"
    text = path.read_text().replace("    expect: mask\n", "    expect: mask\n    expcet: allow\n", 1)
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        run_policy_tests(policy_copy)
    assert err.value.file == "invoices.yaml"
    assert err.value.line == text.splitlines().index("    expcet: allow") + 1
