"""The decision log at volume: monthly partitions on PostgreSQL (made ahead, made on demand by the
writer, dropped whole by retention), rows written by COPY exactly as queued; on SQLite the same
public behaviour over one plain table."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest
from sqlalchemy import inspect, select, text

from accessd.config import DecisionLogSettings
from accessd.db import Database, alembic_config
from accessd.models import DecisionLog, utcnow
from accessd.pdp import decision_partitions, decision_queries
from accessd.pdp.decision_log import DecisionLogWriter
from tests.support.decision_log import entry

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def write(db, rows) -> DecisionLogWriter:
    """Queue ``rows`` on a new writer and close it (which writes everything queued)."""
    writer = DecisionLogWriter(db, DecisionLogSettings())
    writer.record_many(rows)
    writer.close()
    return writer


def partitions(db) -> dict[dt.datetime, str]:
    conn = db.engine.raw_connection()
    try:
        return decision_partitions.existing(conn)
    finally:
        conn.close()


def partition_of_each(db) -> dict[str, str]:
    """decision_id -> the partition holding the row."""
    with db.engine.connect() as conn:
        return dict(
            conn.execute(text("SELECT decision_id, tableoid::regclass::text FROM decision_log")).all()
        )


def months_from(month: dt.datetime, n: int) -> list[dt.datetime]:
    out = [month]
    for _ in range(n - 1):
        out.append(decision_partitions.next_month(out[-1]))
    return out


def drop_partitions(db, months) -> None:
    with db.engine.begin() as conn:
        for month in months:
            name = decision_partitions.partition_name(month)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {decision_partitions.SCHEMA}.{name}")


def test_each_backend_has_the_layout_the_model_describes(db):
    insp = inspect(db.engine)
    pk = insp.get_pk_constraint("decision_log")["constrained_columns"]
    if db.dialect == "sqlite":
        assert pk == ["id"]
        return
    assert pk == ["id", "at"]  # a partitioned table's key must hold the partition key
    with db.engine.connect() as conn:
        kind = conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE oid = 'decision_log'::regclass")
        assert kind.scalar() == "p"
        id_type = conn.exec_driver_sql(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'decision_log' AND column_name = 'id'"
        ).scalar()
        assert id_type == "bigint"
    # the partitions stay out of the schema the models describe
    assert not [t for t in insp.get_table_names() if t.startswith("decision_log_2")]
    assert set(months_from(decision_partitions.month_start(utcnow()), 3)) <= partitions(db).keys()


@postgresql_only
def test_the_writer_makes_this_month_and_the_next_two_when_it_starts(db):
    ahead = months_from(decision_partitions.month_start(utcnow()), 3)
    drop_partitions(db, ahead)
    assert not set(ahead) & partitions(db).keys()
    write(db, [entry(1, at=utcnow())])
    assert set(ahead) <= partitions(db).keys()
    assert partition_of_each(db)["d1"].endswith(decision_partitions.partition_name(ahead[0]))


@postgresql_only
def test_records_land_in_their_month_and_a_month_without_a_partition_loses_nothing(db):
    rows = [
        entry(1, at=dt.datetime(2024, 1, 31, 23, 59, 59, 999999)),
        entry(2, at=dt.datetime(2024, 2, 1, 0, 0, 0)),
        entry(3, at=dt.datetime(2024, 2, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        entry(4, at=utcnow()),
        *[entry(10 + i, at=dt.datetime(2023, 12, 15)) for i in range(500)],
    ]
    assert dt.datetime(2024, 1, 1) not in partitions(db)
    writer = write(db, rows)
    assert count(db) == len(rows)
    stats = writer.stats()
    assert (stats["queued"], stats["written"], stats["failed_batches"], stats["repaired"]) == (
        0,
        len(rows),
        0,
        0,
    )
    where = partition_of_each(db)
    assert where["d1"].endswith("decision_log_2024_01")
    assert where["d2"].endswith("decision_log_2024_02")
    assert where["d3"].endswith("decision_log_2024_01")  # 01:00 at +02:00 is 23:00 UTC the day before
    assert where["d10"].endswith("decision_log_2023_12")
    with db.session() as s:
        assert s.scalar(select(DecisionLog.at).where(DecisionLog.decision_id == "d3")) == dt.datetime(
            2024, 1, 31, 23, 0
        )


@postgresql_only
def test_making_partitions_is_idempotent_and_safe_from_two_processes_at_once(db):
    months = months_from(dt.datetime(2021, 3, 1), 6)
    results, errors = [], []
    start = threading.Barrier(4)

    def ensure():
        try:
            with psycopg.connect(db.url.replace("+psycopg", "")) as conn:
                start.wait()
                results.append(decision_partitions.ensure(conn, utcnow(), also=months))
                conn.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [0, 0, 0, len(months)]
    assert set(months) <= partitions(db).keys()


def test_purge_drops_whole_old_months_and_trims_the_one_the_cutoff_falls_in(db):
    now = dt.datetime(2025, 6, 20, 12, 0)
    # 100 days before now: 2025-03-12 12:00, inside March
    ats = {
        "jan": dt.datetime(2025, 1, 10),
        "feb": dt.datetime(2025, 2, 27),
        "mar-early": dt.datetime(2025, 3, 12, 11, 59),
        "mar-late": dt.datetime(2025, 3, 12, 12, 0),
        "apr": dt.datetime(2025, 4, 2),
        "jun": dt.datetime(2025, 6, 20),
    }
    write(db, [entry(i, decision_id=name, at=at) for i, (name, at) in enumerate(ats.items())])
    with db.session() as s:
        assert decision_queries.purge(s, 100, now=now) == 3
    with db.session() as s:
        left = set(s.scalars(select(DecisionLog.decision_id)))
    assert left == {"mar-late", "apr", "jun"}
    if db.dialect == "postgresql":
        months = partitions(db)
        assert dt.datetime(2025, 1, 1) not in months and dt.datetime(2025, 2, 1) not in months
        assert {dt.datetime(2025, m, 1) for m in (3, 4, 6, 7, 8)} <= months.keys()  # and made ahead
    with db.session() as s:  # nothing more to do: nothing removed
        assert decision_queries.purge(s, 100, now=now) == 0


def test_the_retention_job_keeps_working(db):
    from accessd import jobs

    write(
        db,
        [entry(1, decision_id="old", at=dt.datetime(2020, 1, 1)), entry(2, decision_id="new", at=utcnow())],
    )
    assert jobs.purge_decision_log(db, retention_days=400) == 1
    with db.session() as s:
        assert list(s.scalars(select(DecisionLog.decision_id))) == ["new"]


ODD = [
    "tab\there",
    "new\nline and\r\ncarriage return",
    "back\\slash \\N \\t \\\\ end\\",
    "\\N",
    "",
    "non-BMP \U0001f600 \U00010348 and combining e\u0301",
    'quotes \' " , ; | and {"json": [1]}',
    "\x01\x1f\x7f control characters",
    " leading and trailing spaces ",
]


def test_odd_text_round_trips_exactly(db):
    rows = [
        entry(
            i,
            decision_id=f"odd{i}",
            client=text_,
            subject_id=text_,
            resource_id=text_,
            fields=[text_, "iban"],
            purpose=text_[:64],
        )
        for i, text_ in enumerate(ODD)
    ]
    rows.append(entry(99, decision_id="nulls", client=None, resource_id=None, fields=None, purpose=None))
    writer = write(db, rows)
    assert writer.stats()["repaired"] == 0
    with db.session() as s:
        got = {r.decision_id: r for r in s.scalars(select(DecisionLog))}
    for i, text_ in enumerate(ODD):
        r = got[f"odd{i}"]
        assert (r.client, r.subject_id, r.resource_id, r.fields, r.purpose) == (
            text_,
            text_,
            text_,
            [text_, "iban"],
            text_[:64],
        )
    r = got["nulls"]
    assert (r.client, r.resource_id, r.fields, r.purpose) == (None, None, None, None)


def count(db) -> int:
    with db.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM decision_log").scalar()


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_migration_0007_moves_the_rows_into_monthly_partitions_and_back(empty_database_url):
    from alembic import command

    db = Database(empty_database_url)
    try:

        def migrate(how, to):
            with db.engine.begin() as conn:
                cfg = alembic_config(db.url)
                cfg.attributes["connection"] = conn
                how(cfg, to)

        migrate(command.upgrade, "0006")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO decision_log (at, decision_id, client, subject_id, action, resource_type, "
                "resource_id, fields, purpose, decision, reason, revision) "
                "SELECT timestamp '2024-11-30 12:00' + g * interval '1 day', 'd' || g, 'crm', 'b.huber', "
                "'read', 'customer', g::text, '[\"iban\"]', 'care', 'allow', 'allowed', 1 "
                "FROM generate_series(1, 40) AS g"
            )
        with db.engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT id, at, decision_id FROM decision_log ORDER BY id").all()
        db.upgrade()
        with db.engine.connect() as conn:
            after = conn.exec_driver_sql("SELECT id, at, decision_id FROM decision_log ORDER BY id").all()
        assert after == before
        months = partitions(db).keys()
        assert {dt.datetime(2024, 12, 1), dt.datetime(2025, 1, 1)} <= months  # the rows' months
        assert set(months_from(decision_partitions.month_start(utcnow()), 3)) <= months
        write(db, [entry(1, decision_id="after", at=utcnow())])
        with db.session() as s:
            new_id = s.scalar(select(DecisionLog.id).where(DecisionLog.decision_id == "after"))
        assert new_id > before[-1][0]  # the sequence went on

        migrate(command.downgrade, "0006")
        with db.engine.connect() as conn:
            kind = conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE oid = 'decision_log'::regclass")
            assert kind.scalar() == "r"
            assert conn.exec_driver_sql("SELECT count(*) FROM decision_log").scalar() == len(before) + 1
    finally:
        db.dispose()


def test_a_decision_added_through_the_orm_gets_its_month(db):
    at = dt.datetime(2019, 7, 4, 12, 0)
    with db.session() as s:
        s.add(
            DecisionLog(
                at=at,
                decision_id="orm",
                subject_id="b.huber",
                action="read",
                resource_type="customer",
                resource_id="1",
                decision="allow",
                reason="allowed",
            )
        )
    with db.session() as s:
        assert s.scalar(select(DecisionLog.at).where(DecisionLog.decision_id == "orm")) == at
    if db.dialect == "postgresql":
        assert dt.datetime(2019, 7, 1) in partitions(db)
