"""Settings layer defaults < TOML < environment, validate, and never leak secrets."""

import pytest

from accessd.config import load_settings
from accessd.errors import Invalid


def test_defaults_give_a_sqlite_file_under_instance():
    s = load_settings(env={})
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("instance/accessd.sqlite3")
    assert s.validate() == []


def test_environment_overrides_toml_and_defaults(tmp_path):
    extra = tmp_path / "prod.toml"
    extra.write_text('database_url = "postgresql://db/accessd"\n[api]\nmax_records = 50\n')
    s = load_settings(env={"ACCESSD_CONFIG": str(extra), "ACCESSD_API_MAX_RECORDS": "70"})
    assert s.database_url == "postgresql://db/accessd"
    assert s.api.max_records == 70


def test_toml_file_layer_applies_when_no_environment(tmp_path):
    extra = tmp_path / "prod.toml"
    extra.write_text("[sync]\napproval_min_accounts = 9\n")
    assert load_settings(env={"ACCESSD_CONFIG": str(extra)}).sync.approval_min_accounts == 9


def test_secret_in_a_toml_file_is_refused(tmp_path):
    extra = tmp_path / "prod.toml"
    extra.write_text('[ldap]\nbind_password = "hunter2"\n')
    with pytest.raises(Invalid, match="must come from the environment"):
        load_settings(env={"ACCESSD_CONFIG": str(extra)})


def test_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = load_settings(env={"ACCESSD_LDAP_BIND_PASSWORD_FILE": str(secret)})
    assert s.ldap.bind_password == "s3cret"
    assert s.describe()["ldap"]["bind_password"] == "***"
    assert "s3cret" not in repr(s.describe())


def test_unknown_setting_and_wrong_type_are_named(tmp_path):
    extra = tmp_path / "prod.toml"
    extra.write_text("[api]\nmax_recordz = 1\n")
    with pytest.raises(Invalid, match="unknown setting api.max_recordz"):
        load_settings(env={"ACCESSD_CONFIG": str(extra)})
    with pytest.raises(Invalid, match="ACCESSD_API_MAX_BATCH: expected int"):
        load_settings(env={"ACCESSD_API_MAX_BATCH": "lots"})


def test_validate_explains_bad_values():
    s = load_settings(env={"ACCESSD_DATABASE_URL": "mysql://x", "ACCESSD_LDAP_URL": "http://dir"})
    problems = "\n".join(s.validate())
    assert "database_url: unsupported scheme" in problems
    assert "ldap.url: must start with ldap://" in problems
