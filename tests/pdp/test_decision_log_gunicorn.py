"""The decision log as users run it: gunicorn with two sync workers. /readyz adds up the records
queued in both workers (whichever answers), and a graceful stop (SIGTERM) writes every queued
record (the ``worker_exit`` hook and atexit). Records are held in memory for the whole test
(60 s flush, huge batches), so every row counted afterwards was written at shutdown. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from accessd import gunicorn_conf
from tests.support import free_port
from tests.support.api import CUSTOMER
from tests.support.decision_log import count_rows

ROOT = Path(__file__).resolve().parents[2]
RECORDS_PER_CALL = 5


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture
def gunicorn(loaded_db, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        ACCESSD_DATABASE_URL=loaded_db.url,
        ACCESSD_INSTANCE_PATH=str(tmp_path / "instance"),
        ACCESSD_SECRET_KEY="x" * 32,
        ACCESSD_DECISION_LOG_FLUSH_SECONDS="60",
        ACCESSD_DECISION_LOG_BATCH_SIZE="1000000",
        ACCESSD_DECISION_LOG_HEARTBEAT_SECONDS="0.2",
        ACCESSD_DECISION_LOG_READY_MAX_QUEUED="10",
    )
    command = gunicorn_conf.argv(f"127.0.0.1:{port}", 2, 1)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.1)
    yield base, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_readiness_covers_both_workers_and_a_graceful_stop_writes_every_record(gunicorn, loaded_db, token):
    base, proc = gunicorn
    body = json.dumps(
        {
            "subject": {"type": "user", "id": "r.schmidt"},
            "action": {"name": "read"},
            "context": {"purpose": "care"},
            "records": [
                {"type": "customer", "id": f"c{i}", "properties": CUSTOMER} for i in range(RECORDS_PER_CALL)
            ],
        }
    ).encode()

    def call(_):
        request = urllib.request.Request(
            base + "/access/v1/fields",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status

    answered = 0
    ready: dict = {}
    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):  # until both workers hold records (the kernel picks the worker)
            answered += sum(status == 200 for status in pool.map(call, range(16)))
            time.sleep(0.5)  # two heartbeats
            status, ready = get(base + "/readyz")
            if ready["decision_log"]["workers"] == 2:
                break
    print(f"answered {answered} calls; /readyz: {ready}")
    assert ready["decision_log"]["workers"] == 2, ready
    assert status == 503 and ready["decision_log"]["status"] == "degraded"
    assert ready["decision_log"]["queued"] == answered * RECORDS_PER_CALL  # both workers' records
    assert count_rows(loaded_db) == 0  # all still queued in the two workers
    proc.terminate()  # SIGTERM: gunicorn's graceful stop
    assert proc.wait(timeout=60) == 0
    assert count_rows(loaded_db) == answered * RECORDS_PER_CALL
