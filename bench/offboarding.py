"""Departures end-to-end: from an HR termination's response to (a) a deny on every worker and
(b) the CAEP session-revoked SET at a local push receiver.

    .venv/bin/python -m bench.offboarding [--departures 1000] [--rate 20] [--database postgresql]

Sets up its own database (SQLite in a temp dir, or a throwaway PostgreSQL), the demo policy and
N employees with the billing role, an HR source, a decide token and a push stream (``accessd
stream add``) to a receiver in this process; serves accessd under gunicorn (2 sync workers, the
command line of ``accessd serve``) with an access log that names the worker of every probe.

Then it sends N terminations (signed HR events) at ``--rate`` per second. Two prober threads ask,
in one ``/access/v1/evaluations`` batch, whether each person with a termination in flight may
still read an IBAN for billing; a person counts as denied when *both* workers have denied
(and neither allows again). The receiver records when each person's SETs arrive.

It prints p50/p99/max of both delays against the promise (one second) and a baseline measured
in the same run: the round trip of one evaluation (the resolution of the probes). It FAILS (exit
1) when a person was not denied by every worker, or a receiver did not get exactly one
session-revoked and one account-disabled per person, in that order.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook

from accessd import accounts
from accessd.db import Database
from accessd.demo import CLIENT_RECORD
from accessd.pdp import revisions, tokens
from bench.http import Postgres, stop, wait_http
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
ACCESSD = [sys.executable, "-m", "accessd"]
SECRET = "whsec_" + base64.b64encode(b"bench-offboarding-secret-0123456789").decode()
PROMISE = 1.0
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Receiver(BaseHTTPRequestHandler):
    """RFC 8935 push receiver: records (arrival, subject, event type) of every SET; 202."""

    arrivals: list[tuple[float, str, str]] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        token = self.rfile.read(int(self.headers["Content-Length"])).decode()
        at = time.monotonic()
        payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        subject = payload["sub_id"]["id"]
        with self.lock:
            for event_type in payload["events"]:
                self.arrivals.append((at, subject, event_type))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def setup(db_url: str, people: int, env: dict, receiver_url: str) -> str:
    """Policy, N billing employees, a decide token and the push stream; returns the token."""
    db = Database(db_url)
    db.upgrade()
    with db.session() as s:
        revisions.load_dir(s, ROOT / "policies", "bench")
        for i in range(people):
            acc = accounts.upsert(s, subject_id=f"p{i:05d}", employee_number=f"E{i:05d}", region="north")
            accounts.grant(s, acc, "billing", actor="bench")
        token = tokens.create(s, "bench-crm", "decide")
    db.dispose()
    subprocess.run(
        [
            *ACCESSD,
            "stream",
            "add",
            receiver_url,
            "--events",
            "session-revoked,account-disabled",
            "--format",
            "opaque",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return token


class Probes:
    """Batch probes with an X-Probe header; the access log says which worker answered each."""

    def __init__(self, base: str, token: str, log: Path):
        self.base, self.token, self.log = base, token, log
        self.counter = 0
        self.lock = threading.Lock()
        self.workers: dict[str, str] = {}  # probe id -> worker pid
        self._offset = 0

    def ask(self, subjects: list[str]) -> tuple[str, list[bool], float]:
        with self.lock:
            self.counter += 1
            n = str(self.counter)
        body = {
            "subject": {"type": "user", "id": "-"},
            "action": {"name": "read", "properties": {"field": "iban"}},
            "resource": {"type": "customer", "id": "C-123", "properties": CLIENT_RECORD},
            "context": {"purpose": "billing"},
            "evaluations": [{"subject": {"type": "user", "id": s}} for s in subjects],
        }
        request = urllib.request.Request(
            self.base + "/access/v1/evaluations",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                "X-Probe": n,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            answers = [e["decision"] for e in json.load(r)["evaluations"]]
        return n, answers, time.monotonic()

    def worker_of(self, n: str) -> str:
        deadline = time.monotonic() + 10
        while True:
            with self.lock:
                if n in self.workers:
                    return self.workers[n]
                with self.log.open() as f:
                    f.seek(self._offset)
                    chunk = f.read()
                complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
                self._offset += len(complete.encode())
                for line in complete.splitlines():
                    m = re.fullmatch(r"<(\d+)> (\d+)", line.strip())
                    if m:
                        self.workers[m.group(2)] = m.group(1)
            if n not in self.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"probe {n} is not in the access log")
                time.sleep(0.002)


def terminate(base: str, i: int) -> float:
    """Send the signed termination of employee i; the monotonic time its response arrived."""
    raw = json.dumps({"type": "termination", "employee_number": f"E{i:05d}", "reason": "bench"})
    msg_id = f"bench-{i}"
    signature = Webhook(SECRET).sign(msg_id, dt.datetime.now(dt.UTC), raw)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": signature,
    }
    request = urllib.request.Request(base + "/hr/v1/events/bench", data=raw.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as r:
        status = json.load(r)["status"]
    if status != "applied":
        raise RuntimeError(f"termination {i}: {status}")
    return time.monotonic()


def run(args, db_url: str, workdir: Path) -> int:
    receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{receiver.server_address[1]}/events"
    env = dict(
        os.environ,
        ACCESSD_DATABASE_URL=db_url,
        ACCESSD_INSTANCE_PATH=str(workdir),
        ACCESSD_SECRET_KEY="bench-" + "x" * 32,
        ACCESSD_HR_SOURCES=json.dumps({"bench": SECRET}),
    )
    print(f"setting up {args.departures} employees ...", flush=True)
    token = setup(db_url, args.departures, env, receiver_url)

    log = workdir / "access.log"
    log.touch()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    fmt = "%(p)s %({x-probe}i)s"  # %(p)s is <pid>
    proc = subprocess.Popen(
        [
            *ACCESSD,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env={**env, "GUNICORN_CMD_ARGS": f"--access-logfile {log} --access-logformat '{fmt}'"},
    )
    try:
        wait_http(base + "/healthz", proc, "accessd")
        return measure(args, base, token, log)
    finally:
        stop([proc])
        receiver.shutdown()


def measure(args, base: str, token: str, log: Path) -> int:
    probes = Probes(base, token, log)
    # baseline: the round trip of one probe (what resolves the deny times)
    rtts = []
    for _ in range(200):
        t = time.monotonic()
        probes.ask(["p00000"])
        rtts.append(time.monotonic() - t)
    baseline = statistics.median(rtts)

    responded: dict[str, float] = {}
    first_deny: dict[str, dict[str, float]] = {}
    denied_at: dict[str, float] = {}
    problems: list[str] = []
    state = threading.Lock()
    done = threading.Event()

    def prober():
        while not done.is_set() or len(denied_at) < len(responded):
            with state:
                pending = [s for s in responded if s not in denied_at]
            if not pending:
                time.sleep(0.002)
                continue
            n, answers, at = probes.ask(pending)
            pid = probes.worker_of(n)
            with state:
                for subject, allowed in zip(pending, answers, strict=True):
                    seen = first_deny.setdefault(subject, {})
                    if allowed and pid in seen:
                        problems.append(f"{subject}: worker {pid} allowed again after denying")
                    elif not allowed:
                        seen.setdefault(pid, at)
                        if len(seen) == 2 and subject not in denied_at:
                            denied_at[subject] = max(seen.values())
            if time.monotonic() - last_trigger[0] > 30:
                problems.append(f"{len(responded) - len(denied_at)} people never denied by both workers")
                return

    last_trigger = [time.monotonic()]
    threads = [threading.Thread(target=prober, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    print(f"sending {args.departures} terminations at {args.rate}/s ...", flush=True)
    start = time.monotonic()
    for i in range(args.departures):
        due = start + i / args.rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        at = terminate(base, i)
        with state:
            responded[f"p{i:05d}"] = at
        last_trigger[0] = time.monotonic()
        if (i + 1) % max(1, args.departures // 10) == 0:
            print(f"  {i + 1} sent, {len(denied_at)} denied by every worker", flush=True)
    done.set()
    for t in threads:
        t.join(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(Receiver.arrivals) < 2 * args.departures:
        time.sleep(0.05)

    deny = [max(0.0, denied_at[s] - responded[s]) for s in denied_at]
    sets: dict[str, list[tuple[float, str]]] = {}
    for at, subject, event_type in sorted(Receiver.arrivals):
        sets.setdefault(subject, []).append((at, event_type))
    revoked = [sets[s][0][0] - responded[s] for s in responded if s in sets]
    for s in responded:
        kinds = [k for _, k in sets.get(s, [])]
        if kinds != [SESSION_REVOKED, ACCOUNT_DISABLED]:
            problems.append(f"{s}: the receiver got {kinds}")
    if len(denied_at) < len(responded):
        problems.append(f"{len(responded) - len(denied_at)} of {len(responded)} not denied by every worker")

    print(f"\nbaseline: one evaluation round trip, median {baseline * 1000:.1f} ms")
    for name, values in (("deny on every worker", deny), ("session-revoked received", revoked)):
        if values:
            p50, p99 = percentile(values, 50), percentile(values, 99)
            print(
                f"{name:<26} p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
                f"  max {max(values) * 1000:7.1f} ms"
                f"  ({len(values)} people; p99 = {p99 / PROMISE:.2f}x the 1 s promise,"
                f" {p99 / baseline:.0f}x a round trip)"
            )
    for p in problems[:10]:
        print("FAIL", p)
    print("PASS" if not problems else f"FAIL ({len(problems)} problems)")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--departures", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="terminations per second")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="accessd-bench-") as tmp:
        workdir = Path(tmp)
        if args.database == "postgresql":
            with Postgres() as url:
                return run(args, url, workdir)
        return run(args, f"sqlite:///{workdir / 'accessd.sqlite3'}", workdir)


if __name__ == "__main__":
    sys.exit(main())
