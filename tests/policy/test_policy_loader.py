"""Loading and validating a policy: every mistake names its file and line."""

from pathlib import Path

import pytest

from accessd.errors import PolicyError
from accessd.policy.policyset import MODEL_CONF, PolicySet, load_policy_dir

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def demo_files():
    return dict(load_policy_dir(POLICIES).files)


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not found")


def test_demo_policy_loads_with_its_resource_types(demo_files):
    policy = PolicySet.from_files(demo_files)
    assert set(policy.catalogue.types) == {"customer", "invoice", "admin_ui"}
    assert policy.catalogue.types["admin_ui"].fields == {} and "administration" in policy.catalogue.purposes
    assert len(policy.rules) >= 40
    assert "clinical" in policy.groups["customer"]
    assert policy.catalogue.mask_style("customer", "iban") == "last4"
    assert PolicySet.from_files(policy.files).files == policy.files


def test_missing_model_conf_defaults_to_the_accessd_model(demo_files):
    files = {k: v for k, v in demo_files.items() if k != "model.conf"}
    assert PolicySet.from_files(files).files["model.conf"] == MODEL_CONF


RULE = "p, therapist, customer, read, diagnosis, care, True, allow, full, new-rule"

# (replacement rule line, expected words in the reason)
BAD_RULES = [
    (RULE.replace("therapist", "astrologer"), "unknown role 'astrologer'"),
    (RULE.replace("diagnosis", "horoscope"), "unknown field or group 'horoscope'"),
    (RULE.replace(" care", " gossip"), "unknown purpose 'gossip'"),
    (RULE.replace(" read", " delete"), "unknown action 'delete'"),
    (RULE.replace(" customer", " horse"), "unknown resource type 'horse'"),
    (RULE.replace("allow", "permit"), "eft must be allow or deny"),
    (RULE.replace("full", "partial"), "level of an allow rule"),
    (RULE.replace("allow, full", "deny, full"), "level of a deny rule must be '-'"),
    (RULE.replace("new-rule", "therapist-clinical-own"), "duplicate rule id 'therapist-clinical-own'"),
    (RULE.replace("True", 'r.obj.clinic_region in ("north", "south")').replace(")", ""), "cannot split"),
    (RULE.replace("True", "r.obj.clinic_region == 'a', 'b'"), "columns, expected 9"),
    (RULE.replace("True", "r.obj.clinic_region =="), "does not parse"),
    (RULE.replace("True", "r.obj.nope == r.sub.id"), "r.obj.nope is not a declared property"),
    (RULE.replace("True", "r.sub.shoe_size == 3"), "r.sub.shoe_size is not a declared subject attribute"),
    (RULE.replace("True", "r.obj.clinic_region"), "not a true/false test"),
    (RULE.replace("True", "r.obj.legal_hold == 1"), "compares bool with int"),
    (RULE.replace("True", "r.obj.retention_until < 5"), "cannot order"),
    (RULE.replace("True", 'g(r.sub.id, "wizard")'), "unknown role or basis"),
    (RULE.replace("True", '__import__("os")'), "the only function is g"),
    (RULE.replace("True", "r.obj.__class__ == 1"), "not a declared property"),
    (RULE.replace("True", "p.sub == r.sub.id"), "unknown name"),
    (RULE.replace("True", ""), "empty column"),
    (RULE + " # look", "bad rule id"),
    (
        RULE.replace("diagnosis, care, True, allow, full", "client_id, care, True, allow, mask"),
        "mask is none",
    ),
    ("p, therapist, customer, read, diagnosis, care, True, allow, full", "columns, expected 9"),
    ("g3, therapist, reception", "unknown row type 'g3'"),
    ("g, astrologer, therapist", "unknown role 'astrologer'"),
    ("g2, diagnosis, horoscope_fields, invoice", "unknown field or group 'diagnosis' of invoice"),
    ("g2, first_name, last_name, customer", "is a field of customer"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_RULES, ids=[r for _, r in BAD_RULES])
def test_rule_mistakes_name_policy_csv_and_the_line(demo_files, line, reason):
    text = demo_files["policy.csv"]
    files = {**demo_files, "policy.csv": text + line + "\n"}
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files(files)
    assert err.value.file == "policy.csv"
    assert err.value.line == len(text.splitlines()) + 1
    assert reason in err.value.reason
    assert str(err.value).startswith(f"policy.csv:{err.value.line}: ")


def test_role_inheritance_cycle_is_rejected_with_its_line(demo_files):
    text = demo_files["policy.csv"] + "g, therapist, reception\ng, reception, senior_therapist\n"
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "policy.csv": text})
    assert "cycle" in err.value.reason
    n = len(text.splitlines())
    assert err.value.line in (line_of(text, "g, senior_therapist, therapist"), n - 1, n)


def _chain_policy(depth: int) -> dict:
    roles = "\n".join(f"  r{i}: role {i}" for i in range(depth + 1))
    cat = f"purposes:\n  care: c\nroles:\n{roles}\nresource_types:\n  t:\n    actions: [read]\n"
    cat += "    fields:\n      f: {sensitivity: internal}\n"
    rows = "".join(f"g, r{i}, r{i + 1}\n" for i in range(depth))
    rows += f"p, r{depth}, t, read, f, care, True, allow, full, top\n"
    return {"catalogue.yaml": cat, "policy.csv": rows}


def test_role_chain_of_eight_links_is_accepted_and_nine_rejected():
    PolicySet.from_files(_chain_policy(8))
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files(_chain_policy(9))
    assert err.value.line == 1 and "too deep" in err.value.reason


def test_field_group_cycle_is_rejected(demo_files):
    text = demo_files["policy.csv"] + "g2, special_category, clinical, customer\n"
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "policy.csv": text})
    assert "cycle" in err.value.reason and err.value.file == "policy.csv"


def test_unknown_catalogue_key_names_its_line(demo_files):
    text = demo_files["catalogue.yaml"].replace(
        "    actions: [read, update]", "    actions: [read, update]\n    colour: red"
    )
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "catalogue.yaml": text})
    assert err.value.file == "catalogue.yaml"
    assert err.value.line == line_of(text, "colour: red")
    assert "unknown key 'colour'" in err.value.reason


def test_bad_field_sensitivity_names_its_line(demo_files):
    text = demo_files["catalogue.yaml"].replace(
        "iban: {category: user.financial.bank_account, sensitivity: restricted, mask: last4}",
        "iban:\n        category: x\n        sensitivity: secret\n        mask: last4",
        1,
    )
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "catalogue.yaml": text})
    assert err.value.line == line_of(text, "sensitivity: secret")


def test_yaml_syntax_error_names_its_line(demo_files):
    text = demo_files["catalogue.yaml"].replace("  billing: Invoicing", "  billing: [Invoicing", 1)
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "catalogue.yaml": text})
    assert err.value.file == "catalogue.yaml"
    assert "YAML error" in err.value.reason
    assert err.value.line is not None and err.value.line >= line_of(text, "billing: [Invoicing")


def test_duplicate_yaml_key_is_an_error(demo_files):
    text = demo_files["catalogue.yaml"].replace(
        "  care: Providing", "  marketing: twice\n  care: Providing", 1
    )
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "catalogue.yaml": text})
    assert "duplicate key 'marketing'" in err.value.reason


def test_property_named_like_a_dict_method_is_refused(demo_files):
    text = demo_files["catalogue.yaml"].replace(
        "      legal_hold: {type: bool,", "      keys: {type: bool,", 1
    )
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "catalogue.yaml": text})
    assert "reserved" in err.value.reason and err.value.line == line_of(text, "keys: {type: bool")


def test_a_different_matcher_in_model_conf_is_refused(demo_files):
    text = demo_files["model.conf"].replace('p.sub == "*" ||', "")
    with pytest.raises(PolicyError) as err:
        PolicySet.from_files({**demo_files, "model.conf": text})
    assert err.value.file == "model.conf" and err.value.line == line_of(text, "m = ")


def test_missing_directory_file_is_named(tmp_path):
    (tmp_path / "catalogue.yaml").write_text("purposes: {}\n")
    with pytest.raises(PolicyError) as err:
        load_policy_dir(tmp_path)
    assert err.value.file in ("model.conf", "policy.csv")
