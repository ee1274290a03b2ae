"""SCIM load benchmark: an initial load of 10,000 users through /scim/v2, against a baseline.

    .venv/bin/python -m bench.scim_load [--users 10000] [--batch 1000] [--database sqlite|postgresql]

Each phase loads the same users (an HR system's first sync: userName, displayName, a work e-mail,
employeeNumber, department) into its own fresh database, measured in the same run:

  baseline  accounts.upsert in-process, one transaction per user: what the database writes cost
            without HTTP and SCIM (the same joiner event and audit record a SCIM POST writes)
  post      one POST /scim/v2/Users per user, one after the other (a client that does not batch)
  bulk      POST /scim/v2/Bulk with --batch operations per request, one request after the other

accessd runs under gunicorn (2 sync workers, as ``accessd serve``). Prints users/s and the time
for the whole load per phase, and the ratios post/baseline and bulk/post. Figures, not targets:
nothing passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from accessd import accounts, gunicorn_conf
from accessd.db import Database
from accessd.pdp import revisions, tokens
from bench.http import Postgres, stop, wait_http
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "bench" / ".scratch"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def person(i: int) -> dict:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": f"p{i:05d}.person",
        "displayName": f"Person {i}",
        "active": True,
        "emails": [{"value": f"p{i:05d}@practice.example", "type": "work"}],
        ENTERPRISE: {
            "employeeNumber": f"E{i:05d}",
            "department": ["Therapy", "Front desk", "Accounts"][i % 3],
        },
    }


def fresh_database(name: str, workdir: Path, postgres) -> str:
    """A migrated database with the demo policy, for one phase."""
    if postgres is not None:
        postgres.server.execute(f"CREATE DATABASE {name}")
        url = postgres.server.url(name)
    else:
        url = f"sqlite:///{workdir / (name + '.sqlite3')}"
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        revisions.load_dir(s, ROOT / "policies", "bench")
    db.dispose()
    return url


def baseline(url: str, users: int) -> float:
    db = Database(url)
    started = time.perf_counter()
    for i in range(users):
        p = person(i)
        with db.session() as s:
            accounts.upsert(
                s,
                subject_id=p["userName"],
                actor="bench",
                source="scim",
                username=p["userName"],
                display_name=p["displayName"],
                email=p["emails"][0]["value"],
                employee_number=p[ENTERPRISE]["employeeNumber"],
                department=p[ENTERPRISE]["department"],
            )
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed


def serve(url: str, workdir: Path) -> tuple[subprocess.Popen, str, str]:
    db = Database(url)
    with db.session() as s:
        token = tokens.create(s, "bench-hr", "hr")
    db.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        ACCESSD_DATABASE_URL=url,
        ACCESSD_INSTANCE_PATH=str(workdir),
        ACCESSD_SECRET_KEY="bench-" + "x" * 32,
        ACCESSD_PUBLIC_URL=base,
    )
    proc = subprocess.Popen(
        gunicorn_conf.argv(f"127.0.0.1:{port}", 2, 1, "--log-level", "warning"), cwd=ROOT, env=env
    )
    wait_http(base + "/healthz", proc, "gunicorn")
    return proc, base, token


def call(base: str, token: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base + "/scim/v2" + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/scim+json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=300) as r:
        return json.load(r)


def posts(base: str, token: str, users: int) -> float:
    call(base, token, "/Users", person(users))  # warm-up: the worker builds its SCIM models
    started = time.perf_counter()
    for i in range(users):
        call(base, token, "/Users", person(i))
    return time.perf_counter() - started


def bulk(base: str, token: str, users: int, batch: int) -> float:
    call(base, token, "/Users", person(users))  # warm-up, as for posts
    started = time.perf_counter()
    for first in range(0, users, batch):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": person(i)}
            for i in range(first, min(first + batch, users))
        ]
        answer = call(
            base,
            token,
            "/Bulk",
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations},
        )
        failed = [op for op in answer["Operations"] if int(op["status"]) != 201]
        if failed:
            raise SystemExit(f"bulk: {len(failed)} operations failed, e.g. {failed[0]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="operations per Bulk request (at most 1000)")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="scim-", dir=SCRATCH))
    postgres = Postgres() if args.database == "postgresql" else None
    times: dict[str, float] = {}
    try:
        if postgres:
            postgres.__enter__()
        print(
            f"{args.users} users per phase on {args.database}; accessd under gunicorn, 2 sync workers",
            flush=True,
        )
        times["baseline"] = baseline(fresh_database("baseline", workdir, postgres), args.users)
        for phase in ("post", "bulk"):
            proc, base, token = serve(fresh_database(phase, workdir, postgres), workdir)
            try:
                if phase == "post":
                    times[phase] = posts(base, token, args.users)
                else:
                    times[phase] = bulk(base, token, args.users, args.batch)
            finally:
                stop([proc])
    finally:
        if postgres:
            postgres.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)

    labels = {
        "baseline": "accounts.upsert in-process, 1 transaction/user",
        "post": "POST /scim/v2/Users, sequential",
        "bulk": f"POST /scim/v2/Bulk, {args.batch} operations/request",
    }
    print(f"\n{'phase':<9} {'users/s':>9} {'load time':>10}   what")
    for phase, elapsed in times.items():
        print(f"{phase:<9} {args.users / elapsed:>9.0f} {elapsed:>9.1f}s   {labels[phase]}")
    print(
        f"\nratios: post/baseline {times['baseline'] / times['post']:.2f}x the users/s, "
        f"bulk/post {times['post'] / times['bulk']:.2f}x"
    )
    print(f"initial load of {args.users} users: {times['post']:.1f}s by POSTs, {times['bulk']:.1f}s by Bulk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
