"""The accessd command line against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from accessd.models import Account, AdminUser, ApiClient, PolicyRevision

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


def test_demo_loads_employees_token_and_admin_once(database_url, db):
    out = run(database_url, "demo", ACCESSD_DEMO_ADMIN_PASSWORD="correct-horse-battery").stdout
    assert "API token (scope decide" in out and "admin login: admin / correct-horse-battery" in out
    again = run(database_url, "demo").stdout
    assert "correct-horse-battery" not in again and "acd_" not in again
    with db.session() as s:
        assert s.scalar(select(Account).where(Account.subject_id == "t.meyer")).roles == {"therapist"}
        admin = s.scalar(select(AdminUser).where(AdminUser.username == "admin"))
        assert "correct-horse-battery" not in admin.password_hash


def test_config_check_explains_problems():
    proc = subprocess.run(
        [*ACCESSD, "config", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ACCESSD_DATABASE_URL": "mysql://x"},
    )
    assert proc.returncode == 2 and "database_url: unsupported scheme" in proc.stderr
