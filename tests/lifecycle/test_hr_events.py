"""Signed HR events (POST /hr/v1/events): each type reaches the next decision through the one
lifecycle, every refusal changes nothing, and a replay changes nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading

import pytest
from sqlalchemy import func, select

from accessd import jobs
from accessd.config import load_settings
from accessd.lifecycle import hr_events, hr_requests
from accessd.models import Account, AuditEvent, HrEvent, LifecycleEvent, RoleGrant
from tests.support.api import evaluation

SECRETS = {
    "workday": "whsec_" + base64.b64encode(b"workday-secret-32-bytes-long!!!!").decode(),
    "bamboo": "whsec_" + base64.b64encode(b"bamboo-secret-32-bytes-long!!!!!").decode(),
}
HUBER = "E1006"  # b.huber (billing) in the demo employees
WEBER = "E1010"  # k.weber, who has left (disabled)
_ids = itertools.count(1)


def signed(raw: bytes, secret: str, msg_id: str, at: dt.datetime | None = None) -> dict:
    """Standard Webhooks headers for ``raw``: v1 = base64(HMAC-SHA256(key, "id.timestamp.body")),
    the recipe docs/hr-events.md gives. The timestamp is the system's (as the sender's is)."""
    ts = str(int((at or dt.datetime.now(dt.UTC)).timestamp()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def send(client, body, source="workday", *, path=None, secret=None, msg_id=None, at=None, headers=None):
    """POST an HR event signed with ``source``'s secret (or ``secret``) to its URL (or ``path``)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or f"msg_{next(_ids)}"
    h = {"Content-Type": "application/json", **signed(raw, secret or SECRETS[source], msg_id, at)}
    h.update(headers or {})
    return client.post(path or f"/hr/v1/events/{source}", data=raw, headers=h)


def ask(client, auth, subject="b.huber") -> tuple[bool, str]:
    """Reads a client's IBAN for billing (b.huber's job); the decision and its reason."""
    body = evaluation(subject, field="iban", purpose="billing", explain=True)
    answer = client.post("/access/v1/evaluation", json=body, headers=auth).get_json()
    return answer["decision"], answer["context"]["reason"]


def counts(db) -> dict:
    with db.session() as s:
        return {
            m.__tablename__: s.scalar(select(func.count()).select_from(m))
            for m in (Account, LifecycleEvent, HrEvent, AuditEvent, RoleGrant)
        }


def account(db, employee_number=HUBER) -> Account:
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.employee_number == employee_number))
        s.expunge(acc)
        return acc


@pytest.fixture
def hr_client(make_app, employees, clock):
    """A client of the service with two HR sources configured (the demo employees loaded)."""
    return make_app(hr={"sources": SECRETS}).test_client()


def settle(client):
    """Apply the change as the worker's change feed would, so the next decision sees it."""
    client.application.extensions["accessd"].feed.catch_up()


# --- refusals ------------------------------------------------------------------------------------

LEAVE = {"type": "leave", "employee_number": HUBER}
# far outside the 5-minute window either way, however long after import the test runs
OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
NEW = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def _raw(text: str) -> dict:
    return {"body": text.encode()}


REFUSALS = {
    # name: (how to send it, status, error code)
    "bad signature": (
        dict(body=LEAVE, secret="whsec_" + base64.b64encode(b"x" * 32).decode()),
        401,
        "invalid_signature",
    ),
    "another source's secret": (dict(body=LEAVE, secret=SECRETS["bamboo"]), 401, "invalid_signature"),
    "unknown source": (dict(body=LEAVE, path="/hr/v1/events/payroll"), 404, "unknown_source"),
    "timestamp too old": (dict(body=LEAVE, at=OLD), 401, "timestamp_outside_window"),
    "timestamp too new": (
        dict(body=LEAVE, at=NEW),
        401,
        "timestamp_outside_window",
    ),
    "no signature": (dict(body=LEAVE, headers={"webhook-signature": ""}), 401, "invalid_signature"),
    "malformed signature": (dict(body=LEAVE, headers={"webhook-signature": "v1"}), 401, "invalid_signature"),
    "timestamp not a number": (
        dict(body=LEAVE, headers={"webhook-timestamp": "1e9"}),
        401,
        "invalid_signature",
    ),
    "id too long": (dict(body=LEAVE, msg_id="m" * 121), 401, "invalid_signature"),
    "not JSON": (_raw("type=leave"), 400, "invalid"),
    "not an object": (_raw('["leave"]'), 400, "invalid"),
    "not UTF-8": ({"body": b'{"type": "leave", "employee_number": "E\xff"}'}, 400, "invalid"),
    "NUL byte": (_raw('{"type": "leave", "employee_number": "E1006\\u0000"}'), 400, "invalid"),
    "lone surrogate": (_raw('{"type": "leave", "employee_number": "\\ud800"}'), 400, "invalid"),
    "1e999": (_raw('{"type": "leave", "employee_number": "E1006", "reason": 1e999}'), 400, "invalid"),
    "deep JSON": (
        _raw('{"type": "leave", "employee_number": "E1006", "reason": ' + "[" * 5000 + "]" * 5000 + "}"),
        400,
        "invalid",
    ),
    "employee number not a string": (dict(body={"type": "leave", "employee_number": 1006}), 400, "invalid"),
    "no employee number": (dict(body={"type": "leave"}), 400, "invalid"),
    "unknown type": (dict(body={"type": "promotion", "employee_number": HUBER}), 400, "invalid"),
    "member of another type": (dict(body={**LEAVE, "effective": "2030-01-01"}), 400, "invalid"),
    "time without offset": (
        dict(body={"type": "termination", "employee_number": HUBER, "effective": "2030-01-01T17:00:00"}),
        400,
        "invalid",
    ),
    "no such date": (
        dict(body={"type": "termination", "employee_number": HUBER, "effective": "2030-02-30"}),
        400,
        "invalid",
    ),
    "unknown employee": (
        dict(body={"type": "termination", "employee_number": "E404"}),
        404,
        "unknown_employee",
    ),
    "leave of someone who left": (dict(body={"type": "leave", "employee_number": WEBER}), 409, "conflict"),
    "hire under a taken subject id": (
        dict(body={"type": "hire", "employee_number": "E9001", "username": "b.huber"}),
        409,
        "conflict",
    ),
}


def test_every_refused_event_gets_a_clear_4xx_and_changes_nothing(hr_client, loaded_db):
    before = counts(loaded_db)
    for name, (how, status, code) in REFUSALS.items():
        r = send(hr_client, **how)
        body = r.get_json()
        assert (r.status_code, (body or {}).get("error")) == (status, code), f"{name}: {r.status_code} {body}"
        assert body["message"], name
        assert counts(loaded_db) == before, f"{name} changed something"
    assert account(loaded_db).status == "active"


def test_a_signature_made_with_another_sources_secret_is_refused(hr_client, loaded_db):
    r = send(hr_client, LEAVE, "workday", secret=SECRETS["bamboo"])
    assert r.status_code == 401 and "workday" in r.get_json()["message"]
    assert send(hr_client, LEAVE, "bamboo").get_json()["status"] == "applied"  # its own URL: fine


def test_a_body_that_is_not_declared_json_is_refused(hr_client, loaded_db):
    raw = json.dumps(LEAVE).encode()
    h = {"Content-Type": "text/plain", **signed(raw, SECRETS["workday"], "msg_text")}
    r = hr_client.post("/hr/v1/events/workday", data=raw, headers=h)
    assert r.status_code == 415 and r.get_json()["error"] == "unsupported_media_type"


# --- each type reaches the next decision ----------------------------------------------------------


def test_a_termination_now_denies_the_next_evaluation(hr_client, loaded_db, auth, clock):
    assert ask(hr_client, auth) == (True, "allowed")
    r = send(hr_client, {"type": "termination", "employee_number": HUBER, "reason": "resigned"}, msg_id="t-1")
    assert r.status_code == 200
    assert r.get_json() == {
        "status": "applied",
        "event": {"source": "workday", "id": "t-1", "type": "termination", "employee_number": HUBER},
        "account": {"subject_id": "b.huber", "status": "disabled", "departure_at": None},
    }
    settle(hr_client)
    assert ask(hr_client, auth) == (False, "account_disabled")
    acc = account(loaded_db)
    assert (acc.disabled_by, acc.status_reason, acc.roles) == ("hr", "resigned", frozenset())
    with loaded_db.session() as s:
        ev = s.scalars(select(LifecycleEvent).where(LifecycleEvent.kind == "leaver")).one()
        assert (ev.source, ev.actor, ev.event_ref) == ("hr", "hr:workday", "workday:t-1")
        row = s.scalars(select(HrEvent)).one()
        assert (row.source, row.event_id, row.type, row.status) == (
            "workday",
            "t-1",
            "termination",
            "applied",
        )


def test_a_termination_at_a_future_moment_denies_from_then_even_before_the_job_runs(
    hr_client, loaded_db, auth, clock
):
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock.set(now=start)
    moment = (start + dt.timedelta(hours=2)).astimezone(dt.timezone(dt.timedelta(hours=1)))
    body = {"type": "termination", "employee_number": HUBER, "effective": moment.isoformat()}
    answer = send(hr_client, body, msg_id="t-2").get_json()
    assert answer["status"] == "scheduled"
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    assert answer["account"] == {
        "subject_id": "b.huber",
        "status": "active",
        "departure_at": utc.isoformat() + "Z",
    }
    settle(hr_client)
    assert ask(hr_client, auth) == (True, "allowed")
    assert jobs.offboard_due_departures(loaded_db) == 0  # not due yet

    clock.set(now=moment + dt.timedelta(minutes=1))
    settle(hr_client)
    assert ask(hr_client, auth) == (False, "account_ended")  # no job has run
    assert account(loaded_db).status == "active"

    assert jobs.offboard_due_departures(loaded_db) == 1
    assert jobs.offboard_due_departures(loaded_db) == 0
    settle(hr_client)
    assert ask(hr_client, auth) == (False, "account_disabled")
    with loaded_db.session() as s:
        kinds = s.execute(
            select(LifecycleEvent.kind, LifecycleEvent.source, LifecycleEvent.event_ref)
            .where(LifecycleEvent.kind.like("leaver%"))
            .order_by(LifecycleEvent.id)
        ).all()
        assert [tuple(k) for k in kinds] == [
            ("leaver_scheduled", "hr", "workday:t-2"),
            ("leaver", "scheduler", f"departure:{utc.isoformat()}Z"),
        ]
        row = s.scalars(select(HrEvent)).one()
        assert (row.status, row.effective_at) == ("scheduled", utc)


def test_a_bare_date_is_the_last_working_day(hr_client, loaded_db, clock):
    body = {"type": "termination", "employee_number": HUBER, "effective": "2099-12-31"}
    assert send(hr_client, body).get_json()["status"] == "scheduled"
    acc = account(loaded_db)
    assert (acc.end_date, acc.departure_at) == (dt.date(2099, 12, 31), dt.datetime(2100, 1, 1))


def test_a_leave_denies_with_the_grants_kept_and_a_return_allows_again(hr_client, loaded_db, auth, clock):
    assert send(hr_client, {**LEAVE, "reason": "parental leave"}).get_json()["status"] == "applied"
    settle(hr_client)
    assert ask(hr_client, auth) == (False, "account_suspended")
    acc = account(loaded_db)
    assert (acc.status, acc.roles, acc.disabled_by) == ("suspended", frozenset({"billing"}), "hr")
    assert send(hr_client, LEAVE).get_json()["status"] == "unchanged"  # a second leave: nothing to do

    assert send(hr_client, {"type": "return", "employee_number": HUBER}).get_json()["status"] == "applied"
    settle(hr_client)
    assert ask(hr_client, auth) == (True, "allowed")


def test_a_replayed_event_answers_duplicate_and_changes_nothing(hr_client, loaded_db, auth, clock):
    body = {"type": "termination", "employee_number": HUBER}
    assert send(hr_client, body, msg_id="t-3").get_json()["status"] == "applied"
    before = counts(loaded_db)

    again = send(hr_client, body, msg_id="t-3")  # the sender's retry: same id, same bytes, new timestamp
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert again.get_json()["original"]["status"] == "applied"
    # the same id for another body is not a retry
    other = send(hr_client, {"type": "leave", "employee_number": HUBER}, msg_id="t-3")
    assert (other.status_code, other.get_json()["error"]) == (409, "conflict")
    assert counts(loaded_db) == before
    # ids are per source: another source may use the same one
    assert (
        send(hr_client, {"type": "rehire", "employee_number": HUBER}, "bamboo", msg_id="t-3").status_code
        == 200
    )


def test_the_unnamed_url_knows_the_source_by_its_signature(hr_client, loaded_db):
    r = send(hr_client, LEAVE, "bamboo", path="/hr/v1/events")
    assert r.get_json()["event"]["source"] == "bamboo"
    r = send(hr_client, LEAVE, path="/hr/v1/events", secret="whsec_" + base64.b64encode(b"y" * 32).decode())
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_signature")


def test_a_hire_creates_an_account_without_roles_and_a_rehire_brings_a_leaver_back(
    hr_client, loaded_db, auth, clock
):
    hire = {
        "type": "hire",
        "employee_number": "E9001",
        "username": "n.new",
        "display_name": "Nora New",
        "email": "n.new@practice.example",
        "department": "Accounts",
        "start_date": "2026-01-05",
    }
    answer = send(hr_client, hire, msg_id="h-1").get_json()
    assert answer["status"] == "applied" and answer["account"]["subject_id"] == "n.new"
    acc = account(loaded_db, "E9001")
    assert (acc.origin, acc.status, acc.display_name, acc.roles) == ("hr", "active", "Nora New", frozenset())
    assert send(hr_client, hire).get_json()["status"] == "unchanged"  # the same hire, a new id
    assert send(hr_client, {**hire, "department": "Billing"}, msg_id="h-2").get_json()["status"] == "applied"
    assert account(loaded_db, "E9001").department == "Billing"
    with loaded_db.session() as s:
        rows = s.execute(
            select(LifecycleEvent.kind, LifecycleEvent.source, LifecycleEvent.event_ref)
            .where(LifecycleEvent.account_id == acc.id)
            .order_by(LifecycleEvent.id)
        ).all()
        assert [tuple(r) for r in rows] == [("joiner", "hr", "workday:h-1"), ("mover", "hr", "workday:h-2")]
    # without a username the employee number is the subject id
    assert (
        send(hr_client, {"type": "hire", "employee_number": "E9002"}).get_json()["account"]["subject_id"]
        == "E9002"
    )

    # someone who left is rehired: active again, without the roles removed at the departure;
    # a hire of someone who left is a rehire too
    assert (
        send(hr_client, {"type": "termination", "employee_number": HUBER}).get_json()["status"] == "applied"
    )
    assert send(hr_client, {"type": "rehire", "employee_number": HUBER}).get_json()["status"] == "applied"
    assert send(hr_client, {"type": "rehire", "employee_number": HUBER}).get_json()["status"] == "unchanged"
    assert (
        send(hr_client, {"type": "termination", "employee_number": HUBER}).get_json()["status"] == "applied"
    )
    assert send(hr_client, {"type": "hire", "employee_number": HUBER}).get_json()["status"] == "applied"
    acc = account(loaded_db)
    assert (acc.status, acc.roles, acc.disabled_by) == ("active", frozenset(), None)
    with loaded_db.session() as s:
        kinds = s.scalars(
            select(LifecycleEvent.kind).where(LifecycleEvent.account_id == acc.id).order_by(LifecycleEvent.id)
        ).all()
        assert kinds[-4:] == ["leaver", "rehire", "leaver", "rehire"]
    settle(hr_client)
    assert ask(hr_client, auth) == (False, "no_matching_rule")  # no roles: HR grants none


def test_a_rehire_withdraws_a_termination_not_yet_carried_out(hr_client, loaded_db, auth, clock):
    body = {"type": "termination", "employee_number": HUBER, "effective": "2099-12-31"}
    assert send(hr_client, body).get_json()["status"] == "scheduled"
    answer = send(
        hr_client, {"type": "rehire", "employee_number": HUBER, "reason": "stays after all"}
    ).get_json()
    assert answer["status"] == "applied"
    acc = account(loaded_db)
    assert (acc.status, acc.end_date, acc.departure_at) == ("active", None, None)
    settle(hr_client)
    assert ask(hr_client, auth) == (True, "allowed")


def test_hr_secrets_come_from_the_environment_and_are_never_shown(tmp_path):
    env = {"ACCESSD_HR_SOURCES": json.dumps(SECRETS)}
    settings = load_settings(env=env)
    assert settings.validate() == []
    (tmp_path / "hr-sources").write_text(json.dumps(SECRETS) + "\n")  # a secrets file, as JSON
    assert load_settings(env={"ACCESSD_HR_SOURCES_FILE": str(tmp_path / "hr-sources")}).hr.sources == SECRETS
    assert settings.describe()["hr"] == {"sources": {"workday": "***", "bamboo": "***"}}
    shared = load_settings(
        env={"ACCESSD_HR_SOURCES": json.dumps({"a": SECRETS["bamboo"], "b": SECRETS["bamboo"]})}
    )
    problems = shared.validate()
    assert any("share a secret" in p for p in problems)
    assert not any(SECRETS["bamboo"][6:] in p for p in problems)


def test_two_deliveries_of_one_id_at_once_apply_it_once(loaded_db, employees):
    """The sender retries while the first delivery is still being handled: the second waits for
    the first's transaction (the unique (source, id)) and answers duplicate."""
    raw = json.dumps(LEAVE).encode()
    headers = signed(raw, SECRETS["workday"], "race-1")
    answers = {}

    def second():
        answers["second"] = hr_events.handle(loaded_db, SECRETS, "workday", headers, raw)

    with loaded_db.session() as s:
        assert hr_events.apply(s, hr_requests.parse("workday", "race-1", raw)).status == "applied"
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(1.0)  # give it time to reach the insert; the answer is the same either way
    thread.join(30)
    assert answers["second"].status == "duplicate"
    with loaded_db.session() as s:
        assert s.scalar(select(func.count()).where(LifecycleEvent.kind == "suspended")) == 1
        assert s.scalar(select(func.count()).select_from(HrEvent)) == 1
