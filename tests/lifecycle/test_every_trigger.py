"""Every trigger of a departure ends in the same place (issue 10, point 6).

For each trigger -- the directory, SCIM, a signed HR event, the schedule, the command line -- on
the live service (gunicorn, two workers): the person's next AuthZEN evaluation is denied with the
reason of their state, exactly one CAEP session-revoked and then one RISC account-disabled reach
a push receiver (signature checked against the server's JWKS), and replaying the trigger changes
nothing and sends nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from standardwebhooks import Webhook

from accessd import accounts, jobs
from accessd.cli import main
from accessd.lifecycle import offboarding
from accessd.lifecycle.states import Source
from accessd.lifecycle.sync import run_sync
from accessd.models import AuditEvent, LifecycleEvent, SsfOutbox
from accessd.pdp import tokens
from accessd.ssf import events as ev
from tests.support.api import evaluation
from tests.support.lifecycle import make_settings
from tests.support.set_receiver import SetReceiver, event_of, fetch_json, verify

SECRET = "whsec_" + base64.b64encode(b"every-trigger-test-secret-0123").decode()
SESSION_REVOKED = ev.EVENT_TYPES["session-revoked"]
ACCOUNT_DISABLED = ev.EVENT_TYPES["account-disabled"]


def call(url: str, token: str | None, body=None, method="POST", headers=None) -> tuple[int, dict]:
    """One JSON request to the live server; (status, JSON answer) also for 4xx answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    request.add_header("Content-Type", "application/json" if "scim" not in url else "application/scim+json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class World:
    """The served service, its tokens, a push stream to ``receiver``, and the triggers."""

    def __init__(self, db, base: str, receiver: SetReceiver):
        self.db, self.base, self.receiver = db, base, receiver
        with db.session() as s:
            self.decide = tokens.create(s, "crm", "decide")
            self.hr = tokens.create(s, "hr-system", "hr")
            ssf = tokens.create(s, "crm-receiver", "ssf")
        status, _ = call(
            base + "/ssf/streams",
            ssf,
            {
                "delivery": {"method": ev.PUSH, "endpoint_url": receiver.url},
                "events_requested": [SESSION_REVOKED, ACCOUNT_DISABLED],
                "format": "opaque",
            },
        )
        assert status == 201

    def decision(self, subject: str) -> tuple[bool, str]:
        body = evaluation(subject, field="iban", purpose="billing", explain=True)
        status, answer = call(self.base + "/access/v1/evaluation", self.decide, body)
        assert status == 200, answer
        return answer["decision"], answer["context"]["reason"]

    def until_denied(self, subject: str) -> tuple[bool, str]:
        """Ask until a worker has applied the disable (promised within 1 s; allowed 5 s). A
        departure that fell due is denied (``account_ended``) even before the job disables it."""
        deadline = time.monotonic() + 5
        while (answer := self.decision(subject)) != (
            False,
            "account_disabled",
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        return answer

    def until_allowed(self, subject: str) -> tuple[bool, str]:
        """Ask until the workers' change feeds have applied a join (polled every 0.5 s on SQLite)."""
        deadline = time.monotonic() + 5
        while not (answer := self.decision(subject))[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        return answer

    def counts(self) -> tuple[int, int, int]:
        with self.db.session() as s:
            return tuple(
                s.scalar(select(func.count()).select_from(model))
                for model in (LifecycleEvent, AuditEvent, SsfOutbox)
            )


# ------------------------------------------------------------------ the triggers


def by_directory(world: World, people, ldap_server) -> tuple[str, callable]:
    """A person the directory gives the billing role, then locks."""
    settings = make_settings(ldap_server, people, world.db.url)
    alice = people.add("alice", employeeNumber="E9001")
    people.group("billing", alice)
    sync = lambda: run_sync(world.db, settings, kind="full", actor="test")  # noqa: E731
    assert sync().counts.get("join") == 1
    people.lock(alice)
    return "alice", sync


def by_scim(world: World) -> tuple[str, callable]:
    """The HR system's SCIM client sets active false on b.huber."""
    status, found = call(
        world.base + "/scim/v2/Users?filter=userName%20eq%20%22b.huber%22", world.hr, method="GET"
    )
    assert status == 200 and found["totalResults"] == 1, found
    url = world.base + "/scim/v2/Users/" + found["Resources"][0]["id"]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }

    def trigger():
        status, answer = call(url, world.hr, body, method="PATCH")
        assert status in (200, 204), answer  # RFC 7644 3.5.2: the resource, or no content
        return answer

    return "b.huber", trigger


def by_hr_event(world: World) -> tuple[str, callable]:
    """A signed termination from HR source "workday" for b.huber's employee number."""
    with world.db.session() as s:
        number = accounts.get_by_subject_id(s, "b.huber").employee_number
    raw = json.dumps({"type": "termination", "employee_number": number, "reason": "resigned"})

    def trigger():  # a replay is the same delivery again: same id, freshly signed
        signature = Webhook(SECRET).sign("evt-1", dt.datetime.now(dt.UTC), raw)
        status, answer = call(
            world.base + "/hr/v1/events/workday",
            None,
            json.loads(raw),
            headers={
                "webhook-id": "evt-1",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": signature,
            },
        )
        assert status == 200, answer
        return answer

    # urllib re-serialises nothing: json.loads(raw) -> json.dumps gives the same bytes
    assert json.dumps(json.loads(raw)) == raw
    return "b.huber", trigger


def by_schedule(world: World) -> tuple[str, callable]:
    """A departure scheduled two seconds ahead; the departures job carries it out when due."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    with world.db.session() as s:
        account = accounts.get_by_subject_id(s, "b.huber")
        scheduled = offboarding.offboard(
            s, account, reason="contract ends", source=Source.HR, actor="hr", effective=moment
        )
    assert scheduled

    def trigger():
        time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
        return jobs.offboard_due_departures(world.db)

    return "b.huber", trigger


def by_command_line(world: World) -> tuple[str, callable]:
    """`accessd offboard b.huber --reason ...`."""

    def trigger():
        result = CliRunner(env={"ACCESSD_DATABASE_URL": world.db.url}).invoke(
            main, ["offboard", "b.huber", "--reason", "left the practice"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    return "b.huber", trigger


@pytest.mark.parametrize(
    "prepare", [by_directory, by_scim, by_hr_event, by_schedule, by_command_line], ids=lambda f: f.__name__
)
def test_every_trigger_denies_at_once_sends_each_event_once_and_a_replay_changes_nothing(
    prepare, loaded_db, employees, serve, monkeypatch, request
):
    base, _ = serve(
        loaded_db.url,
        ACCESSD_SSF_RETRY_FIRST_SECONDS="0.05",
        ACCESSD_SSF_OUTBOX_POLL_SECONDS="0.1",
        ACCESSD_HR_SOURCES=json.dumps({"workday": SECRET}),
    )
    monkeypatch.setenv("ACCESSD_PUBLIC_URL", base)  # what this process queues is signed as the server
    with SetReceiver() as receiver:
        world = World(loaded_db, base, receiver)
        ldap = ("people", "ldap_server") if prepare is by_directory else ()
        subject, trigger = prepare(world, *(request.getfixturevalue(name) for name in ldap))
        assert world.until_allowed(subject) == (True, "allowed")

        trigger()
        assert world.until_denied(subject) == (False, "account_disabled")
        got = receiver.wait_for(2, timeout=10)
        jwks = fetch_json(base + "/ssf/jwks.json")
        claims = [verify(g.token, jwks, issuer=base, audience="crm-receiver")[1] for g in got]
        assert [event_of(c)[0] for c in claims] == [SESSION_REVOKED, ACCOUNT_DISABLED]
        assert all(c["sub_id"] == {"format": "opaque", "id": subject} for c in claims)

        before = world.counts()
        trigger()  # the same trigger again
        time.sleep(1.0)  # what a replay queued would be pushed by now
        assert world.counts() == before
        assert len(receiver.posts) == 2
        assert world.decision(subject) == (False, "account_disabled")
