"""The audit trail and the decision log as the admin UI reads them (accessd.console.logs), on
SQLite and PostgreSQL: filters in the practice's time zone, paging, the chain check, CSV exports
that escape formulas, record themselves and read in chunks; bad filters are refused with a
message before anything reaches the database."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select, update

from accessd import audit
from accessd.console import logs
from accessd.errors import Invalid
from accessd.models import AuditEvent, DecisionLog

BERLIN = "Europe/Berlin"


def _csv(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


def _audit(db, clock, at: dt.datetime, actor="admin:alice", action="account.disable", target="account:1"):
    clock.set(now=at)
    with db.session() as s:
        return audit.record(s, actor, action, target, {"reason": "left"}).id


def _decision(s, i, at=dt.datetime(2026, 5, 1, 10, 0), **values):
    row = dict(
        at=at,
        decision_id=f"d{i}",
        client="crm",
        subject_id="b.huber",
        action="read",
        resource_type="customer",
        resource_id="123",
        fields=["iban"],
        purpose="billing",
        decision="allow",
        reason="allowed",
        revision=1,
    )
    row.update(values)
    s.add(DecisionLog(**row))


# -- the audit trail -------------------------------------------------------------------------


def test_audit_filters_match_parts_of_actor_action_and_target_case_insensitively(db, clock):
    t = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    _audit(db, clock, t, actor="admin:Alice", action="account.disable", target="account:7")
    _audit(db, clock, t, actor="cli:bob", action="sync.approve", target="sync_run:3")
    _audit(db, clock, t, actor="admin:carol", action="sync.reject", target="sync_run:100%")

    def actors(**kw):
        return [r["actor"] for r in logs.audit_page(db, logs.audit_filter(**kw)).items]

    assert actors(actor="alice") == ["admin:Alice"]
    assert actors(action="sync.") == ["admin:carol", "cli:bob"]
    assert actors(target="100%") == ["admin:carol"]  # % is literal, not a wildcard
    assert actors(target="_run") == ["admin:carol", "cli:bob"]
    assert actors(actor="admin", action="sync") == ["admin:carol"]


def test_audit_days_are_days_in_the_practice_time_zone_and_until_includes_its_day(db, clock):
    clock.configure(BERLIN)
    # 22:30 UTC on 1 May is 00:30 on 2 May in Berlin (summer time, UTC+2)
    late = _audit(db, clock, dt.datetime(2026, 5, 1, 22, 30, tzinfo=dt.UTC), target="late")
    early = _audit(db, clock, dt.datetime(2026, 5, 1, 21, 30, tzinfo=dt.UTC), target="early")

    def ids(**kw):
        return [r["id"] for r in logs.audit_page(db, logs.audit_filter(**kw)).items]

    assert ids(since="2026-05-02") == [late]
    assert ids(until="2026-05-01") == [early]
    assert ids(since="2026-05-01", until="2026-05-01") == [early]
    assert ids(since="2026-05-02T00:00") == [late]  # local time without an offset
    assert ids(since="2026-05-01T22:00:00+00:00") == [late]
    row = logs.audit_page(db, logs.audit_filter(target="late")).items[0]
    assert row["at"].isoformat() == "2026-05-02T00:30:00+02:00"


def test_audit_pages_hold_fifty_records_newest_first(db, clock):
    with db.session() as s:
        ids = [audit.record(s, "admin:alice", "role.grant", f"account:{i}").id for i in range(120)]
    first = logs.audit_page(db, logs.audit_filter())
    third = logs.audit_page(db, logs.audit_filter(), page=3)
    beyond = logs.audit_page(db, logs.audit_filter(), page=4)
    assert (first.total, first.pages, first.has_next, first.has_prev) == (120, 3, True, False)
    assert [r["id"] for r in first.items] == ids[::-1][:50]
    assert [r["id"] for r in third.items] == ids[::-1][100:]
    assert beyond.items == [] and beyond.total == 120


def test_the_chain_check_finds_an_edited_record(db):
    with db.session() as s:
        ids = [audit.record(s, "cli:test", "role.grant", f"account:{i}").id for i in range(3)]
    assert logs.verify_chain(db) == logs.ChainCheck(intact=True, broken_at=None, records=3)
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == ids[1]).values(actor="cli:mallory"))
    assert logs.verify_chain(db) == logs.ChainCheck(intact=False, broken_at=ids[1], records=3)


def test_audit_export_streams_csv_with_formulas_defused_and_records_who_exported_what(db, clock):
    t = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    _audit(db, clock, t, actor='=HYPERLINK("http://x")', target="+1")
    _audit(db, clock, t, actor="admin:alice", target="@sum")
    _audit(db, clock, t, actor="admin:bob", target="-2")

    stream = logs.export_audit_csv(db, logs.audit_filter(target="2", since="2026-04-01"), "admin:carol")

    with db.session() as s:  # recorded before the first byte is read
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.actor, last.action, last.target) == ("admin:carol", "audit.export", "audit_event")
    assert last.detail == {"filter": {"target": "2", "since": "2026-04-01T00:00:00Z"}, "format": "csv"}
    rows = _csv(stream)
    assert rows[0] == list(logs.AUDIT_COLUMNS)
    assert [r[4] for r in rows[1:]] == ["'-2"]
    everything = _csv(logs.export_audit_csv(db, logs.audit_filter(), "admin:carol"))
    cells = {c for r in everything[1:] for c in r}
    assert {'\'=HYPERLINK("http://x")', "'+1", "'@sum", "'-2"} <= cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_an_export_reads_in_chunks_and_gives_every_record_once_in_order(db, monkeypatch):
    monkeypatch.setattr(logs, "EXPORT_CHUNK", 7)
    with db.session() as s:
        ids = [audit.record(s, "admin:alice", "role.grant", f"account:{i}").id for i in range(30)]
    stream = logs.export_audit_csv(db, logs.audit_filter(action="role.grant"), "admin:alice")
    chunks = list(stream)
    assert len(chunks) == 1 + 5  # the header, then 30 rows in chunks of at most 7
    assert [int(r[0]) for r in _csv(chunks)[1:]] == ids[::-1]


# -- the decision log ------------------------------------------------------------------------


def test_decision_filters_and_the_people_who_read_one_record(loaded_db, employees):
    db = loaded_db
    with db.session() as s:
        _decision(s, 1, subject_id="b.huber", purpose="billing", fields=["iban"])
        _decision(s, 2, subject_id="b.huber", purpose="billing", at=dt.datetime(2026, 5, 2, 9))
        _decision(s, 3, subject_id="m.marketing", purpose="marketing", decision="deny", reason="no_consent")
        _decision(s, 4, resource_id="124")
        _decision(s, 5, resource_type="invoice", resource_id="9")

    def ids(**kw):
        return [r["decision_id"] for r in logs.decisions_page(db, logs.decision_filter(**kw)).items]

    assert ids(resource="customer:123") == ["d2", "d3", "d1"]  # newest first, then the later row
    assert sorted(ids(resource="customer")) == ["d1", "d2", "d3", "d4"]
    assert ids(resource="customer:123", decision="deny") == ["d3"]
    assert ids(purpose="marketing") == ["d3"]
    assert ids(subject="b.huber", since="2026-05-02") == ["d2"]
    f = logs.decision_filter(resource="customer:123")
    assert f.one_record and f.resource == "customer:123"
    first = logs.decisions_page(db, f).items[0]
    assert (first["subject_name"], first["fields"], first["at"].tzinfo is not None) == (
        "Bernd Huber",
        ["iban"],
        True,
    )

    people = logs.readers(db, f)
    assert [p["subject"] for p in people] == ["b.huber", "m.marketing"]
    assert people[0]["decisions"] == {"allow": 2} and people[0]["purposes"] == ["billing"]
    assert people[0]["name"] == "Bernd Huber" and people[0]["total"] == 2
    assert people[1]["decisions"] == {"deny": 1} and people[1]["name"] is None


def test_decision_export_pages_through_equal_times_without_losing_or_repeating_a_row(db, monkeypatch):
    monkeypatch.setattr(logs, "EXPORT_CHUNK", 4)
    same = dt.datetime(2026, 5, 1, 10)
    with db.session() as s:
        for i in range(11):  # the writer stores a whole API call's decisions with one time
            _decision(s, i, at=same, fields=["=cmd|' /C calc'!A0", "iban"] if i == 0 else ["iban"])
        _decision(s, 99, at=same - dt.timedelta(hours=1))
    rows = _csv(logs.export_decisions_csv(db, logs.decision_filter(resource="customer:123"), "admin:alice"))
    assert rows[0] == list(logs.DECISION_COLUMNS)
    assert sorted(r[1] for r in rows[1:]) == sorted([f"d{i}" for i in range(11)] + ["d99"])
    assert rows[-1][1] == "d99"
    assert "'=cmd|' /C calc'!A0,iban" in [r[7] for r in rows]
    with db.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.action, last.target) == ("decisions.export", "customer:123")
    assert last.detail["filter"] == {"resource_type": "customer", "resource_id": "123"}


# -- bad filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: logs.audit_filter(actor="a\x00b"), "actor must not contain control characters"),
        (lambda: logs.audit_filter(target="x\ud800"), "target is not valid text"),
        (lambda: logs.audit_filter(action="x" * 65), "action must be at most 64 characters"),
        (lambda: logs.audit_filter(since="1e999"), "since must be a date"),
        (lambda: logs.audit_filter(since="0001-01-01T00:00:00+01:00"), "since must be a date"),
        (lambda: logs.audit_filter(until="9999-12-31"), "until must be a date"),
        (lambda: logs.audit_filter(since="99999999d"), "since must be"),
        (lambda: logs.audit_filter(since="2026-05-02", until="2026-05-01"), "since must be before until"),
        (lambda: logs.decision_filter(decision="maybe"), "decision must be one of"),
        (lambda: logs.decision_filter(resource=":123"), "resource must look like TYPE:ID"),
        (lambda: logs.decision_filter(subject="\ud800"), "subject is not valid text"),
        (lambda: logs.checked_page(0), "page must be a whole number"),
        (lambda: logs.checked_page(-1), "page must be a whole number"),
        (lambda: logs.checked_page(10**30), "page must be a whole number"),
    ],
)
def test_bad_filters_are_refused_with_a_message(build, message):
    with pytest.raises(Invalid, match=message.replace("(", r"\(")):
        build()


def test_a_page_number_past_the_limit_never_reaches_the_database(db):
    with pytest.raises(Invalid):
        logs.audit_page(db, logs.audit_filter(), page=10**30)
    with pytest.raises(Invalid):
        logs.decisions_page(db, logs.decision_filter(), page=-1)


def test_the_decision_pager_stops_counting_at_the_cap_and_says_more(db, monkeypatch):
    monkeypatch.setattr(logs, "COUNT_CAP", 30)
    with db.session() as s:
        for i in range(35):
            _decision(s, i)
    page = logs.decisions_page(db, logs.decision_filter(), 1, per_page=10)
    assert (page.total, page.more, page.pages, len(page.items)) == (30, True, 3, 10)
    with db.session() as s:
        _decision(s, 99, subject_id="t.meyer")
    exact = logs.decisions_page(db, logs.decision_filter(subject="t.meyer"), 1, per_page=10)
    assert (exact.total, exact.more) == (1, False)
