"""The accessd command line against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from accessd.models import Account, AdminUser, ApiClient, PolicyRevision
from accessd.pdp import tokens

ROOT = Path(__file__).resolve().parents[2]
ACCESSD = [sys.executable, "-m", "accessd"]


def run(database_url: str, *args: str, check: bool = True, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ACCESSD_DATABASE_URL": database_url, **env}
    proc = subprocess.run([*ACCESSD, *args], capture_output=True, text=True, env=environ, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_init_creates_the_schema_and_can_run_again(database_url):
    assert "database ready" in run(database_url, "init").stdout
    assert "database ready" in run(database_url, "init").stdout


def test_init_never_prints_the_database_password(pg_server):
    url = pg_server.url("postgres").replace("postgres@", "postgres:topsecretpw@")
    out = run(url, "init").stdout
    assert "topsecretpw" not in out and "***" in out


def test_token_create_prints_once_and_stores_only_a_hash(database_url, db):
    token = run(database_url, "token", "create", "--name", "crm", "--scope", "decide").stdout.strip()
    assert token.startswith("acd_") and len(token) > 30
    with db.session() as s:
        client = s.scalar(select(ApiClient).where(ApiClient.name == "crm"))
        assert client.scope == "decide" and token not in client.token_hash
    dup = run(database_url, "token", "create", "--name", "crm", "--scope", "decide", check=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    run(database_url, "token", "revoke", "--name", "crm")
    assert "revoked" in run(database_url, "token", "list").stdout
    missing = run(database_url, "token", "revoke", "--name", "nope", check=False)
    assert missing.returncode == 2 and "no client named 'nope'" in missing.stderr


def test_policy_load_stores_numbered_revisions_and_export_round_trips(database_url, db, tmp_path):
    out = run(database_url, "policy", "load", str(ROOT / "policies")).stdout
    assert "policy revision 1 loaded" in out
    assert "unchanged" in run(database_url, "policy", "load", str(ROOT / "policies")).stdout
    exported = tmp_path / "exported"
    run(database_url, "policy", "export", str(exported))
    for f in (ROOT / "policies").rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            rel = f.relative_to(ROOT / "policies")
            assert (exported / rel).read_text() == f.read_text(), rel
    # a changed copy becomes revision 2
    changed = tmp_path / "changed"
    shutil.copytree(ROOT / "policies", changed)
    with open(changed / "policy.csv", "a") as fh:
        fh.write("\n# a comment changes the revision digest\n")
    assert "policy revision 2 loaded" in run(database_url, "policy", "load", str(changed)).stdout


def test_invalid_policy_is_refused_with_file_and_line_and_previous_stays(database_url, db, tmp_path):
    run(database_url, "policy", "load", str(ROOT / "policies"))
    bad = tmp_path / "bad"
    shutil.copytree(ROOT / "policies", bad)
    lines = (bad / "policy.csv").read_text().splitlines()
    lines.append("p, no_such_role, customer, read, iban, care, True, allow, full, bogus-rule")
    (bad / "policy.csv").write_text("\n".join(lines) + "\n")
    proc = run(database_url, "policy", "load", str(bad), check=False)
    assert proc.returncode == 2
    assert f"policy.csv:{len(lines)}" in proc.stderr
    assert "no_such_role" in proc.stderr
    with db.session() as s:
        assert [r.id for r in s.scalars(select(PolicyRevision))] == [1]


def test_policy_test_passes_on_the_shipped_policies_and_names_a_failing_case(database_url, tmp_path):
    ok = run(database_url, "policy", "test", str(ROOT / "policies"))
    assert " 0 failed" in ok.stdout
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "policies", broken)
    (broken / "tests" / "zz_wrong.yaml").write_text(
        "cases:\n"
        "  - name: reception must not read diagnosis (wrong on purpose)\n"
        "    subject: {id: r1, roles: [reception]}\n"
        "    resource: {type: customer, properties: {}}\n"
        "    action: read\n    purpose: care\n    field: diagnosis\n    expect: allow\n"
    )
    proc = run(database_url, "policy", "test", str(broken), check=False)
    assert proc.returncode == 1
    assert "reception must not read diagnosis (wrong on purpose)" in proc.stdout


def _demo_token(out: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith("API token (scope decide"))
    return line.rsplit(" ", 1)[1]


def test_demo_loads_employees_and_admin_once_and_prints_a_usable_token_every_time(database_url, db):
    out = run(database_url, "demo", ACCESSD_DEMO_ADMIN_PASSWORD="correct-horse-battery").stdout
    assert "admin login: admin / correct-horse-battery" in out
    first = _demo_token(out)
    again = run(database_url, "demo").stdout  # a restart of the demo
    assert "correct-horse-battery" not in again
    second = _demo_token(again)
    assert second != first
    with db.session() as s:
        assert _active_client(s, second).name == "demo-crm"  # the new token works ...
        assert _active_client(s, first) is None  # ... and the one printed before is revoked
        assert s.scalar(select(Account).where(Account.subject_id == "t.meyer")).roles == {"therapist"}
        admin = s.scalar(select(AdminUser).where(AdminUser.username == "admin"))
        assert "correct-horse-battery" not in admin.password_hash
    listing = run(database_url, "token", "list").stdout
    assert "demo-crm\tdecide\tactive" in listing and "demo-crm (replaced #" in listing


def test_config_check_explains_problems():
    proc = subprocess.run(
        [*ACCESSD, "config", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ACCESSD_DATABASE_URL": "mysql://x"},
    )
    assert proc.returncode == 2 and "database_url: unsupported scheme" in proc.stderr


def test_config_show_masks_passwords_in_urls():
    env = {
        **os.environ,
        "ACCESSD_DATABASE_URL": "postgresql://accessd:db-pw-417@db.internal/accessd",
        "ACCESSD_LDAP_URL": "ldap://reader:ldap-pw-933@ldap.internal",
        "ACCESSD_SECRET_KEY": "key-never-shown-2718",
    }
    proc = subprocess.run([*ACCESSD, "config", "show"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["database_url"] == "postgresql://accessd:***@db.internal/accessd"
    assert shown["ldap"]["url"] == "ldap://reader:***@ldap.internal"
    for secret in ("db-pw-417", "ldap-pw-933", "key-never-shown-2718"):
        assert secret not in proc.stdout + proc.stderr


def test_config_check_warns_about_a_cleartext_ldap_bind():
    env = {
        **os.environ,
        "ACCESSD_LDAP_URL": "ldap://ldap.internal",
        "ACCESSD_LDAP_USER_BASE": "ou=people,dc=example",
        "ACCESSD_LDAP_BIND_PASSWORD": "pw-in-the-clear",
    }
    check = [*ACCESSD, "config", "check"]
    proc = subprocess.run(check, capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0 and "configuration ok" in proc.stdout  # a warning, not an error
    assert "warning: ldap: the bind password is sent in cleartext" in proc.stderr
    assert "pw-in-the-clear" not in proc.stderr
    for safe in ({"ACCESSD_LDAP_START_TLS": "true"}, {"ACCESSD_LDAP_URL": "ldaps://ldap.internal"}):
        proc = subprocess.run(check, capture_output=True, text=True, cwd=ROOT, env={**env, **safe})
        assert proc.returncode == 0 and "cleartext" not in proc.stderr


def _active_client(session, token: str) -> ApiClient | None:
    client = session.scalar(select(ApiClient).where(ApiClient.token_hash == tokens.hash_token(token)))
    return client if client is not None and client.revoked_at is None else None
