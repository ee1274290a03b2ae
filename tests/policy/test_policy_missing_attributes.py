"""A missing attribute never satisfies a comparison: the demo policy, and policy loading.

An account without a region reading a record without ``clinic_region`` used to match the region
rules ("" == ""). The demo policy now requires both regions, and loading refuses any rule whose
condition a missing attribute could satisfy unguarded, naming file, line and the guard to add.
"""

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from accessd.errors import PolicyError
from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import PolicySet, load_policy_dir

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
TODAY = date(2025, 6, 1)

# no region on the account, none on the record
NO_REGION_RECEPTION = Subject("rx", frozenset({"reception"}))
NO_REGION_SENIOR = Subject("sx", frozenset({"senior_therapist"}))
NO_REGION_CLIENT = {"assigned_therapist_id": "tom"}


@pytest.fixture(scope="module")
def engine():
    return Engine(load_policy_dir(POLICIES))


@pytest.mark.parametrize("field", ["first_name", "date_of_birth", "email", "iban", "marketing_opt_in"])
def test_reception_without_a_region_reads_nothing_of_a_client_without_one(engine, field):
    d = engine.decide(NO_REGION_RECEPTION, "customer", "read", field, "care", NO_REGION_CLIENT, TODAY)
    assert (d.effect, d.reason) == ("deny", "no_matching_rule")


def test_reception_without_a_region_cannot_update_personal_fields(engine):
    for field in ("first_name", "email", "street", "marketing_opt_in"):
        d = engine.decide(NO_REGION_RECEPTION, "customer", "update", field, "care", NO_REGION_CLIENT, TODAY)
        assert d.effect == "deny", field


def test_reception_without_a_region_sees_no_field_and_no_invoice(engine):
    m = engine.mask(NO_REGION_RECEPTION, "customer", "read", "care", [NO_REGION_CLIENT], TODAY)[0]
    assert (m.allowed, m.masked) == ((), ()) and m.reason is not None
    m = engine.mask(NO_REGION_RECEPTION, "invoice", "read", "billing", [{"therapist_id": "tom"}], TODAY)[0]
    assert (m.allowed, m.masked) == ((), ())


@pytest.mark.parametrize("field", ["diagnosis", "session_notes", "first_name"])
def test_senior_therapist_without_a_region_reads_no_unassigned_client(engine, field):
    d = engine.decide(NO_REGION_SENIOR, "customer", "read", field, "care", NO_REGION_CLIENT, TODAY)
    assert d.effect == "deny"


def test_region_rules_still_apply_when_both_regions_are_set(engine):
    rita = Subject("rita", frozenset({"reception"}), {"region": "north"})
    d = engine.decide(rita, "customer", "read", "email", "care", {"clinic_region": "north"}, TODAY)
    assert d.matched_rules == ("reception-personal-read",)


def test_an_empty_subject_id_is_denied_before_any_rule(engine):
    """``r.sub.id`` is never empty, so ``r.obj.assigned_therapist_id == r.sub.id`` needs no guard."""
    nobody = Subject("", frozenset({"therapist"}))
    d = engine.decide(nobody, "customer", "read", "diagnosis", "care", {}, TODAY)
    assert (d.effect, d.reason) == ("deny", "unknown_subject")
    assert engine.mask(nobody, "customer", "read", "care", [{}], TODAY)[0].reason == "unknown_subject"


# ---------------------------------------------------------------------------------------------
# loading refuses what could fail open

CAT = """
purposes: {care: c}
roles: {clerk: c}
subject_attributes:
  region: {type: string}
  email: {type: string}
  level: {type: int}
  trusted: {type: bool}
  home: {type: string, default: north}
resource_types:
  doc:
    actions: [read]
    properties:
      region: {type: string}
      ownerID: {type: string}
      owner.id: {type: string}
      until: {type: date}
      level: {type: int}
      hold: {type: bool}
    fields: {a: {sensitivity: internal}}
"""


def _load(cond: str) -> PolicySet:
    rows = f"# a rule\np, clerk, doc, read, *, care, {cond}, allow, full, a1\n"
    return PolicySet.from_files({"catalogue.yaml": CAT, "policy.csv": rows})


REFUSED = [
    # (condition, the guard the message asks for)
    ("r.obj.region == r.sub.region", 'r.obj.region != "" && r.sub.region != ""'),
    ('r.obj.region != "" && r.obj.region == r.sub.region', 'r.sub.region != ""'),
    ("r.obj.region != r.sub.region", 'r.obj.region != "" && r.sub.region != ""'),
    ("r.obj.region in r.sub.region", 'r.obj.region != "" && r.sub.region != ""'),
    ("r.obj.ownerID == r.sub.email", 'r.obj.ownerID != "" && r.sub.email != ""'),
    ("r.obj.owner.id == r.sub.email", 'r.obj.owner.id != "" && r.sub.email != ""'),
    # a guard in another disjunct, or inside a negation, does not protect
    ('(r.obj.region != "" || r.sub.region != "") && r.obj.region == r.sub.region', "r.obj.region != "),
    ('!(r.obj.region != "" && r.sub.region != "" && r.obj.region == r.sub.region)', "r.obj.region != "),
    ('r.obj.hold || (r.sub.region != "" && r.obj.region == r.sub.region)', 'r.obj.region != ""'),
    # a missing value against one that is never missing
    ("r.obj.owner.id != r.sub.id", 'r.obj.owner.id != ""'),
    ("!(r.obj.owner.id == r.sub.id)", 'r.obj.owner.id != ""'),
    ("r.obj.until < r.env.today", 'r.obj.until != ""'),
    ("r.obj.until <= r.env.today", 'r.obj.until != ""'),
    ("r.env.today > r.obj.until", 'r.obj.until != ""'),
    ("r.obj.region != r.purpose", 'r.obj.region != ""'),
    ('r.sub.home != "" && r.obj.region != "" && r.sub.home == r.obj.region', 'r.sub.home != "north"'),
    # "" sorts before every date; "" is in every text
    ('r.obj.until < "2030-01-01"', 'r.obj.until != ""'),
    ('r.obj.region in "north south"', 'r.obj.region != ""'),
    # two missing numbers or flags are equal too
    ("r.obj.level <= r.sub.level", "r.obj.level != 0 && r.sub.level != 0"),
    ("r.obj.hold == r.sub.trusted", "r.obj.hold && r.sub.trusted"),
]


@pytest.mark.parametrize(("cond", "guard"), REFUSED, ids=[c for c, _ in REFUSED])
def test_a_comparison_a_missing_attribute_satisfies_is_refused(cond, guard):
    with pytest.raises(PolicyError) as err:
        _load(cond)
    assert (err.value.file, err.value.line) == ("policy.csv", 2)
    assert "missing or empty" in err.value.reason and guard in err.value.reason


ACCEPTED = [
    'r.obj.region != "" && r.sub.region != "" && r.obj.region == r.sub.region',
    'r.obj.region != "" && (r.sub.region != "" && (r.obj.region == r.sub.region || r.obj.hold))',
    '!(r.obj.region == "" || r.sub.region == "") && r.obj.region == r.sub.region',
    'r.obj.region != "" && r.sub.region != "" && !(r.obj.region == r.sub.region)',
    'r.obj.region in ["north", "south"] && r.sub.region == "north" && r.obj.region == r.sub.region',
    'r.obj.ownerID != "" && r.sub.email != "" && r.obj.ownerID == r.sub.email',
    # a missing text is never equal to the subject's id, nor after today
    "r.obj.owner.id == r.sub.id",
    'r.obj.owner.id != "" && r.obj.owner.id != r.sub.id',
    "r.obj.until >= r.env.today",
    'r.obj.until == "" || r.obj.until >= r.env.today',
    '!(r.obj.until == "" || r.obj.until >= r.env.today)',
    'r.obj.until != "" && r.obj.until < r.env.today',
    # explicit value tests against constants
    'r.obj.region == ""',
    'r.obj.region != "void"',
    'r.obj.until > "2020-01-01"',
    '"north" in r.obj.region',
    "r.obj.level < 3",
    "r.obj.level != 0 && r.sub.level != 0 && r.obj.level <= r.sub.level",
    "r.obj.hold && r.sub.trusted && r.obj.hold == r.sub.trusted",
]


@pytest.mark.parametrize("cond", ACCEPTED)
def test_guarded_or_harmless_comparisons_are_accepted(cond):
    _load(cond)


def test_the_unguarded_demo_region_rule_is_refused_with_its_line():
    files = dict(load_policy_dir(POLICIES).files)
    text = files["policy.csv"]
    bad = "p, reception, customer, read, personal, care, r.obj.clinic_region == r.sub.region, allow, full, x"
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**files, "policy.csv": text + bad + "\n"})
    assert err.value.line == len(text.splitlines()) + 1
    assert str(err.value).startswith(f"policy.csv:{err.value.line}: x: condition ")
    assert 'r.obj.clinic_region != "" && r.sub.region != ""' in err.value.reason


def test_policy_test_command_refuses_an_unguarded_rule(tmp_path):
    dest = tmp_path / "policies"
    shutil.copytree(POLICIES, dest)
    csv = dest / "policy.csv"
    guarded = 'r.obj.clinic_region != "" && r.sub.region != "" && r.obj.clinic_region == r.sub.region'
    text = csv.read_text().replace(
        f"{guarded}, allow, full, senior-clinical-region",
        "r.obj.clinic_region == r.sub.region, allow, full, senior-clinical-region",
    )
    csv.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "senior-clinical-region" in t)
    out = subprocess.run(
        [sys.executable, "-m", "accessd", "policy", "test", str(dest)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 2
    assert f"policy.csv:{line}: senior-clinical-region: condition" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
