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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://accessd:s3cret@db/accessd", "postgresql://accessd:***@db/accessd"),
        ("postgresql://accessd:p@ss/w0rd@db:5432/accessd", "postgresql://accessd:***@db:5432/accessd"),
        ("postgresql://accessd@db/accessd?sslmode=require&password=s3cret", None),
        (
            "sqlite:////srv/accessd/instance/accessd.sqlite3",
            "sqlite:////srv/accessd/instance/accessd.sqlite3",
        ),
    ],
)
def test_describe_masks_the_password_in_the_database_url(url, shown):
    described = load_settings(env={"ACCESSD_DATABASE_URL": url}).describe()
    assert "s3cret" not in repr(described) and "w0rd" not in repr(described)
    if shown is not None:
        assert described["database_url"] == shown


def test_describe_masks_credentials_in_the_ldap_url():
    s = load_settings(env={"ACCESSD_LDAP_URL": "ldap://cn=reader:hunter2@ldap.example:389"})
    assert s.describe()["ldap"]["url"] == "ldap://cn=reader:***@ldap.example:389"


def test_warnings_name_a_cleartext_ldap_bind_insecure_cookies_and_a_missing_secret_key():
    base = {"ACCESSD_SECRET_KEY": "k" * 32, "ACCESSD_LDAP_URL": "ldap://dir", "ACCESSD_LDAP_USER_BASE": "o=x"}

    def warnings(**env):
        return load_settings(env={**base, **env}).warnings()

    assert warnings() == []  # no bind password: nothing is sent
    clear = warnings(ACCESSD_LDAP_BIND_PASSWORD="hunter2")
    assert len(clear) == 1 and "cleartext" in clear[0] and "hunter2" not in clear[0]
    assert warnings(ACCESSD_LDAP_BIND_PASSWORD="hunter2", ACCESSD_LDAP_START_TLS="true") == []
    assert warnings(ACCESSD_LDAP_BIND_PASSWORD="hunter2", ACCESSD_LDAP_URL="ldaps://dir") == []
    assert ["session_cookie_secure" in w for w in warnings(ACCESSD_SESSION_COOKIE_SECURE="false")] == [True]
    assert ["secret_key" in w for w in warnings(ACCESSD_SECRET_KEY="")] == [True]


def test_admin_settings_are_checked():
    with pytest.raises(Invalid, match="admin.sign_in_rate: 'lots' is not a rate"):
        load_settings(env={"ACCESSD_ADMIN_SIGN_IN_RATE": "lots"})
    bad = load_settings(env={}, overrides={"admin": {"idle_minutes": 0}}).validate()
    assert "admin.idle_minutes: must be positive" in bad
    good = load_settings(env={}, overrides={"admin": {"sign_in_rate": "5/second"}}).validate()
    assert not [p for p in good if p.startswith("admin.")]
