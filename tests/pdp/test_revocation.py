"""A revoked token, a disabled account and a new policy revision reach every gunicorn worker
within a second (the promise; the tests allow 5 s on a shared machine and print what they saw).

The service runs as it does for users (gunicorn, two sync workers, on a file SQLite database and
on PostgreSQL). Each probe carries an ``X-Probe`` header that the access log records with the
worker's pid, so the test knows which worker gave which answer and polls until every worker has
switched -- and never switches back.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accessd import accounts
from accessd.lifecycle import offboarding
from accessd.pdp import revisions, tokens
from tests.support.api import evaluation

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
PROMISE_SECONDS = 1.0
BOUND_SECONDS = 5.0  # generous: the machine is shared; the measured time is printed


class Server:
    """The service under gunicorn (the ``serve`` fixture) with an access log that names the
    worker pid of every probe."""

    def __init__(self, serve, database_url: str, log: Path):
        self.backend = database_url.split(":", 1)[0].split("+", 1)[0]
        self.log = log
        self.log.touch()
        # GUNICORN_CMD_ARGS: gunicorn's own way to add settings to a command line
        fmt = "%(p)s %({x-probe}i)s %(s)s"
        # gunicorn: its access log can name the worker pid and a request header (granian's cannot)
        self.base, _ = serve(
            database_url,
            WORKERS,
            server="gunicorn",
            GUNICORN_CMD_ARGS=f"--access-logfile {log} --access-logformat '{fmt}'",
        )
        self.probes = 0
        self._seen: dict[str, str] = {}

    def probe(self, token: str, body: dict) -> tuple[str, bool]:
        """Ask once; return (worker pid, allowed). A 401 counts as not allowed."""
        self.probes += 1
        n = str(self.probes)
        request = urllib.request.Request(
            self.base + "/access/v1/evaluation",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}", "X-Probe": n},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                allowed = json.load(r)["decision"] is True
        except urllib.error.HTTPError as exc:
            assert exc.code == 401, exc.read()
            allowed = False
        return self._worker_of(n), allowed

    def _worker_of(self, n: str) -> str:
        deadline = time.monotonic() + 5  # the worker logs just after it has answered
        while n not in self._seen:
            for line in self.log.read_text().splitlines():
                m = re.fullmatch(r"<(\d+)> (\d+) \d+", line.strip())
                if m:
                    self._seen[m.group(2)] = m.group(1)
            if n not in self._seen:
                assert time.monotonic() < deadline, f"probe {n} is not in the access log"
                time.sleep(0.01)
        return self._seen[n]


@pytest.fixture
def server(serve, database_url, loaded_db, employees, tmp_path):
    return Server(serve, database_url, tmp_path / "access.log")


def warm_up(server: Server, token: str, body: dict) -> set[str]:
    """Ask until every worker has answered "allow" (so each holds the state that will change)."""
    workers: set[str] = set()
    for _ in range(500):
        pid, allowed = server.probe(token, body)
        assert allowed, "expected an allow before the change"
        workers.add(pid)
        if len(workers) == WORKERS:
            return workers
    pytest.fail(f"only workers {workers} answered in 500 requests")


def measure_until_every_worker_denies(
    what: str, server: Server, token: str, body: dict, workers: set[str], t0: float
) -> float:
    """Poll until each worker has denied; no worker may allow again after its first denial."""
    first_deny: dict[str, float] = {}
    last_allow = 0.0
    while len(first_deny) < len(workers):
        elapsed = time.monotonic() - t0
        assert elapsed < BOUND_SECONDS, (
            f"workers {workers - set(first_deny)} still allow after {elapsed:.1f} s"
        )
        pid, allowed = server.probe(token, body)
        now = time.monotonic() - t0
        assert pid in workers, f"an unexpected worker {pid} answered"
        if allowed:
            assert pid not in first_deny, f"worker {pid} allowed again after denying"
            last_allow = now
        else:
            first_deny.setdefault(pid, now)
        time.sleep(0.01)
    every = max(first_deny.values())
    print(
        f"\n{what} ({server.backend}): every worker denies {every:.2f} s after the change "
        f"(last allow at {last_allow:.2f} s; {server.probes} probes; promise {PROMISE_SECONDS:.0f} s)"
    )
    return every


BILLING_READS_IBAN = evaluation("b.huber", field="iban", purpose="billing")


def test_a_revoked_token_is_refused_by_every_worker_within_a_second(server, loaded_db, token):
    workers = warm_up(server, token, BILLING_READS_IBAN)
    with loaded_db.session() as s:
        tokens.revoke(s, "crm")
    t0 = time.monotonic()
    measure_until_every_worker_denies("revoked token", server, token, BILLING_READS_IBAN, workers, t0)


def test_a_disabled_account_is_denied_by_every_worker_within_a_second(server, loaded_db, token):
    workers = warm_up(server, token, BILLING_READS_IBAN)
    with loaded_db.session() as s:
        account = accounts.get_by_subject_id(s, "b.huber")
        offboarding.offboard(s, account, reason="left", source="cli", actor="test")
    t0 = time.monotonic()
    measure_until_every_worker_denies("disabled account", server, token, BILLING_READS_IBAN, workers, t0)


def test_a_new_policy_revision_is_in_force_in_every_worker_within_a_second(
    server, loaded_db, token, tmp_path
):
    changed = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", changed)
    lines = (changed / "policy.csv").read_text().splitlines()
    kept = [line for line in lines if not line.rstrip().endswith(", billing-iban-read")]
    assert len(kept) == len(lines) - 1, "the demo policy has no rule billing-iban-read"
    (changed / "policy.csv").write_text("\n".join(kept) + "\n")

    workers = warm_up(server, token, BILLING_READS_IBAN)
    with loaded_db.session() as s:
        rev, created = revisions.load_dir(s, changed, "test")
    assert created and rev.id == 2
    t0 = time.monotonic()
    measure_until_every_worker_denies("new policy revision", server, token, BILLING_READS_IBAN, workers, t0)
