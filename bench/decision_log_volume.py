"""Benchmark: the decision log at volume on PostgreSQL (monthly partitions).

    .venv/bin/python -m bench.decision_log_volume                  # 50 million rows (~15 min, 13 GB)
    .venv/bin/python -m bench.decision_log_volume --rows 1000000   # a smaller run

Starts a throwaway PostgreSQL (the tests' ``PostgresServer``), migrates it and, in the same run:

1. generates ``--rows`` decisions spread over 13 months (time-ordered, as the writer appends them)
   for ``--customers`` customers (85% of the rows; the rest other record types), plus
   ``--hot`` customers who each get ``--hot-rows`` -- streamed from this process by COPY
   (``--generate server``: ``generate_series`` in the server, about as fast here: 245,000 against
   230,000 rows/s), printing progress and rows/s; the indexes are built after the load (a sorted
   build each), then VACUUM ANALYZE;
2. times "who read customer X" -- exactly ``decision_queries.search`` as the API and the CLI run it
   (newest first, 100 rows) -- for ``--queries`` random customers and for every hot one: p50, p99,
   max, and PASS/FAIL against 50 ms; and, for information, the admin UI's page and readers summary;
3. times retention: a DELETE of one month (the old purge) against ``decision_queries.purge``
   dropping the next month's partition (ratio);
4. times the writer's insert of ``decision_log.batch_size`` rows: COPY (``RowWriter``, what the
   writer does) against ``executemany`` of an INSERT (ratio);
5. times migration 0007 moving ``--migration-rows`` rows from the plain table into partitions.

Exit status 1 if the query target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time

import psycopg

from accessd.config import DecisionLogSettings
from accessd.db import Database, alembic_config
from accessd.models import utcnow
from accessd.pdp import decision_partitions, decision_queries
from accessd.pdp.decision_rows import COLUMNS, RowWriter, _pg_params
from tests.support.postgres import PostgresServer

TARGET_MS = 50.0
INDEXES = (
    ("ix_decision_log_at", "at"),
    ("ix_decision_resource", "resource_type, resource_id, at"),
    ("ix_decision_subject_at", "subject_id, at"),
)
CLIENTS = ("crm", "billing", "portal", "mobile", "reporting")
ACTIONS = ("read", "read", "read", "update", "list")
PURPOSES = ("care", "billing", "marketing", "support", None)
OUTCOMES = (("allow", "allowed"), ("allow", "allowed"), ("mask", "field-masked"), ("deny", "no-rule"))
FIELDS = ('["iban"]', '["email", "phone"]', '["diagnosis"]', None)


def months_back(month: dt.datetime, n: int) -> dt.datetime:
    index = month.year * 12 + month.month - 1 - n
    return dt.datetime(index // 12, index % 12 + 1, 1)


def pg(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("+psycopg", ""))


# -- 1. generating the rows ----------------------------------------------------------------------

# row g of generate_series is at start + (g - 1) * step: time-ordered; 85% of the rows customers'
_GENERATE = """
INSERT INTO decision_log (at, decision_id, client, subject_id, action, resource_type, resource_id,
                          fields, purpose, decision, reason, revision)
SELECT %(start)s::timestamp + make_interval(secs => (g - 1) * %(step)s),
       md5(g::text),
       (ARRAY['crm','billing','portal','mobile','reporting'])[1 + g %% 5],
       'user' || (1 + (hashint8(g) & 2147483647) %% 2000),
       (ARRAY['read','read','read','update','list'])[1 + g %% 5],
       CASE WHEN r < 0.85 THEN 'customer' WHEN r < 0.95 THEN 'invoice' ELSE 'appointment' END,
       CASE WHEN r < 0.85 THEN (1 + floor(random() * %(customers)s))::int::text
            ELSE (1 + floor(random() * 1000000))::int::text END,
       ((ARRAY['["iban"]','["email", "phone"]','["diagnosis"]', NULL])[1 + g %% 4])::json,
       (ARRAY['care','billing','marketing','support', NULL])[1 + g %% 5],
       (ARRAY['allow','allow','mask','deny'])[1 + g %% 4],
       (ARRAY['allowed','allowed','field-masked','no-rule'])[1 + g %% 4],
       1 + g / 5000000
FROM (SELECT g, random() AS r FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) AS s
"""

_HOT = """
INSERT INTO decision_log (at, decision_id, client, subject_id, action, resource_type, resource_id,
                          fields, purpose, decision, reason, revision)
SELECT %(start)s::timestamp + random() * %(span)s * interval '1 second', md5('hot' || g::text),
       'crm', 'user' || (1 + g %% 2000), 'read', 'customer', %(customer)s, '["iban"]'::json, 'care',
       'allow', 'allowed', 1
FROM generate_series(1, %(rows)s) AS g
"""


def generate(url, args, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Load the rows without indexes (built after), print progress; returns the hot customers."""
    span = (end - start).total_seconds()
    with pg(url) as conn:
        conn.autocommit = True
        for name, _ in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("SELECT setseed(0.42)")
        t0 = time.perf_counter()
        done = 0
        chunk = args.chunk
        while done < args.rows:
            n = min(chunk, args.rows - done)
            if args.generate == "server":
                params = {"start": start, "step": span / args.rows, "customers": args.customers}
                conn.execute(_GENERATE, params | {"first": done + 1, "last": done + n})
            else:
                copy_chunk(conn, args, start, span, done, n)
            done += n
            elapsed = time.perf_counter() - t0
            print(
                f"  {done:>12,} rows  {done / elapsed:>10,.0f} rows/s  ({elapsed:,.0f} s)",
                flush=True,
            )
        hot = [f"hot{i}" for i in range(args.hot)]
        for customer in hot:
            conn.execute(_HOT, {"start": start, "span": span, "customer": customer, "rows": args.hot_rows})
        load = time.perf_counter() - t0
        print(f"loaded {done + args.hot * args.hot_rows:,} rows in {load:,.0f} s", flush=True)
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for name, columns in INDEXES:
            t1 = time.perf_counter()
            conn.execute(f"CREATE INDEX {name} ON decision_log ({columns})")
            print(f"  index {name}: {time.perf_counter() - t1:,.0f} s", flush=True)
        t1 = time.perf_counter()
        conn.execute("VACUUM ANALYZE decision_log")
        print(f"  VACUUM ANALYZE: {time.perf_counter() - t1:,.0f} s", flush=True)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        print(f"indexed and analysed in {time.perf_counter() - t0:,.0f} s; database {size}", flush=True)
    return hot


def copy_chunk(conn, args, start, span, done, n) -> None:
    """The same rows streamed by this process with COPY (``--generate copy``)."""
    rng = random.Random(done)
    step = span / args.rows
    cols = ", ".join(COLUMNS)
    with conn.cursor().copy(f"COPY decision_log ({cols}) FROM STDIN") as copy:
        for g in range(done + 1, done + n + 1):
            r = rng.random()
            rtype = "customer" if r < 0.85 else "invoice" if r < 0.95 else "appointment"
            rid = rng.randint(1, args.customers) if r < 0.85 else rng.randint(1, 1_000_000)
            decision, reason = OUTCOMES[g % 4]
            copy.write_row(
                (
                    start + dt.timedelta(seconds=(g - 1) * step),
                    f"{g:032x}",
                    CLIENTS[g % 5],
                    f"user{1 + g * 7919 % 2000}",
                    ACTIONS[g % 5],
                    rtype,
                    str(rid),
                    FIELDS[g % 4],
                    PURPOSES[g % 5],
                    decision,
                    reason,
                    1 + g // 5_000_000,
                )
            )


# -- 2. the query ----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))], s[-1]


def time_queries(db, customers: list[str], run, label: str) -> tuple[float, float, float]:
    times = []
    counts = []
    for customer in customers:
        t0 = time.perf_counter()
        counts.append(run(customer))
        times.append((time.perf_counter() - t0) * 1000)
    p50, p99, worst = percentiles(times)
    print(
        f"  {label:<44} n={len(times):<5} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {worst:6.1f} ms"
        f" (#{times.index(worst) + 1})  rows/answer: median {statistics.median(counts):.0f}",
        flush=True,
    )
    return p50, p99, worst


def bench_queries(db, args, hot: list[str]) -> bool:
    rng = random.Random(7)
    sample = [str(rng.randint(1, args.customers)) for _ in range(args.queries)]

    def api(customer, since=None):
        q = decision_queries.Query(resource_type="customer", resource_id=customer, limit=100, since=since)
        return len(decision_queries.search(db, q))

    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM decision_log "
            f"WHERE resource_type = 'customer' AND resource_id = '{sample[0]}' "
            "ORDER BY at DESC, id DESC LIMIT 100"
        ).scalars()
        print("  plan of the API query (one customer):")
        for line in plan:
            print("    " + line)
    for customer in ("warm-up-1", "warm-up-2", "warm-up-3"):  # the pool's connection, compiled SQL
        api(customer)
    print("who read customer X (decision_queries.search, newest first, limit 100):")
    _, p99, worst = time_queries(db, sample, api, "random customers (first read of each)")
    time_queries(db, sample[: max(1, len(sample) // 5)], api, "the same customers again (cached)")
    _, _, hot_worst = time_queries(db, hot, api, f"hot customers ({args.hot_rows:,} rows each)")
    month_ago = utcnow() - dt.timedelta(days=30)
    time_queries(db, sample[:200], lambda c: api(c, month_ago), "random customers, since 30d")
    passed = p99 < TARGET_MS and hot_worst < TARGET_MS
    print(
        f"{'PASS' if passed else 'FAIL'}: p99 {p99:.1f} ms (max {worst:.1f} ms) over random customers, "
        f"max {hot_worst:.1f} ms over hot ones; target {TARGET_MS:.0f} ms",
        flush=True,
    )

    from accessd.console import logs  # for information: the admin UI's views of the same question

    def page(customer):
        return len(logs.decisions_page(db, logs.decision_filter(resource=f"customer:{customer}")).items)

    def readers(customer):
        return len(logs.readers(db, logs.decision_filter(resource=f"customer:{customer}")))

    rng.shuffle(sample)
    print("the admin UI, for information (page: count capped at 10,001 + join; readers: a GROUP BY):")
    time_queries(db, sample[:200], page, "decisions page, random customers")
    time_queries(db, hot, page, "decisions page, hot customers")
    time_queries(db, sample[200:400], readers, "readers summary, random customers")
    time_queries(db, hot, readers, "readers summary, hot customers")
    return passed


# -- 3. retention ----------------------------------------------------------------------------------


def bench_retention(db, url, first_full: dt.datetime) -> None:
    """DELETE of month A (what the purge did before) against the purge dropping month B."""
    a = first_full
    b = decision_partitions.next_month(a)
    c = decision_partitions.next_month(b)
    day = dt.timedelta(days=1)
    with db.session() as s:  # the partial month before A: out of the way first (not timed)
        decision_queries.purge(s, 1, now=a + day)
    with pg(url) as conn:
        t0 = time.perf_counter()
        deleted = conn.execute("DELETE FROM decision_log WHERE at < %s", (b,)).rowcount
        conn.commit()
        t_delete = time.perf_counter() - t0
        conn.autocommit = True
        t0 = time.perf_counter()
        conn.execute(f"VACUUM {decision_partitions.SCHEMA}.{decision_partitions.partition_name(a)}")
        t_vacuum = time.perf_counter() - t0
    t0 = time.perf_counter()
    with db.session() as s:
        dropped = decision_queries.purge(s, 1, now=c + day)
    t_drop = time.perf_counter() - t0
    print("retention, one month each:")
    print(
        f"  DELETE of {a:%Y-%m} ({deleted:,} rows): {t_delete:,.2f} s "
        f"(+ {t_vacuum:,.2f} s VACUUM to reuse the space)"
    )
    print(f"  purge dropping {b:%Y-%m} ({dropped:,} rows, counted before the drop): {t_drop:,.2f} s")
    print(
        f"  ratio DELETE / drop: {t_delete / t_drop:,.1f}x "
        f"({(t_delete + t_vacuum) / t_drop:,.1f}x with the VACUUM)",
        flush=True,
    )


# -- 4. COPY against executemany ------------------------------------------------------------------


def bench_insert(db, batches: int) -> None:
    size = DecisionLogSettings().batch_size
    at = utcnow()
    rows = [
        (at, f"{i:032x}", "crm", f"user{i % 2000}", "read", "customer", str(i % 300_000), ["iban"], "care")
        + ("allow", "allowed", 1)
        for i in range(size)
    ]
    writer = RowWriter(sqlite=False)
    insert = f"INSERT INTO decision_log ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    rates = {}
    for name in ("copy", "executemany") * 2:  # interleaved, best of two rounds
        conn = db.engine.raw_connection()
        try:
            t0 = time.perf_counter()
            for _ in range(batches):
                if name == "copy":
                    writer.insert(conn, rows)
                else:
                    cur = conn.cursor()
                    cur.executemany(insert, list(_pg_params(rows)))
                    cur.close()
                    conn.commit()
            rate = batches * size / (time.perf_counter() - t0)
        finally:
            conn.close()
        rates[name] = max(rates.get(name, 0), rate)
    print(f"the writer's insert, {batches} batches of {size:,} rows (decision_log.batch_size), best of 2:")
    print(f"  COPY (RowWriter):      {rates['copy']:>9,.0f} rows/s")
    print(f"  executemany (INSERT):  {rates['executemany']:>9,.0f} rows/s")
    print(f"  ratio COPY / executemany: {rates['copy'] / rates['executemany']:.1f}x", flush=True)


# -- 5. the migration -------------------------------------------------------------------------------


def bench_migration(server: PostgresServer, rows: int) -> None:
    from alembic import command

    server.execute("CREATE DATABASE migration")
    url = server.url("migration")
    db = Database(url)
    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    with pg(url) as conn:
        conn.execute(
            "INSERT INTO decision_log (at, decision_id, client, subject_id, action, resource_type, "
            "resource_id, fields, purpose, decision, reason, revision) "
            "SELECT now()::timestamp - g * interval '1 second' * (400 * 86400.0 / %(n)s), md5(g::text), "
            "'crm', 'user' || g %% 2000, 'read', 'customer', (g %% 300000)::text, '[\"iban\"]', 'care', "
            "'allow', 'allowed', 1 FROM generate_series(1, %(n)s) AS g",
            {"n": rows},
        )
        conn.commit()
    t0 = time.perf_counter()
    db.upgrade()
    elapsed = time.perf_counter() - t0
    with pg(url) as conn:
        moved = conn.execute("SELECT count(*) FROM decision_log").fetchone()[0]
        parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'decision_log'::regclass")
        parts = parts.fetchone()[0]
    db.dispose()
    print(
        f"migration 0007: {moved:,} rows moved into {parts} partitions in {elapsed:,.1f} s "
        f"({moved / elapsed:,.0f} rows/s, indexes included)",
        flush=True,
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=50_000_000)
    p.add_argument("--customers", type=int, default=300_000)
    p.add_argument("--hot", type=int, default=5, help="customers with --hot-rows rows each")
    p.add_argument("--hot-rows", type=int, default=20_000)
    p.add_argument("--queries", type=int, default=1000, help="random customers to time")
    p.add_argument("--chunk", type=int, default=2_000_000, help="rows per generating statement")
    p.add_argument("--generate", choices=("copy", "server"), default="copy")
    p.add_argument("--insert-batches", type=int, default=20)
    p.add_argument("--migration-rows", type=int, default=2_000_000)
    args = p.parse_args(argv)

    server = PostgresServer()
    server.start()
    try:
        server.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
        server.execute("SELECT pg_reload_conf()")
        server.execute("CREATE DATABASE bench")
        url = server.url("bench")
        db = Database(url)
        db.upgrade()
        now = utcnow()
        this_month = decision_partitions.month_start(now)
        start = months_back(this_month, 12) + dt.timedelta(days=14)  # 13 months: mid-month to now
        with pg(url) as conn:
            months = [months_back(this_month, n) for n in range(13)]
            made = decision_partitions.ensure(conn, now, also=months)
            conn.commit()
        print(f"PostgreSQL {server.port}: {made} partitions made for {start:%Y-%m-%d} .. {now:%Y-%m-%d}")
        print(f"generating {args.rows:,} rows ({args.generate}), {args.customers:,} customers:", flush=True)
        hot = generate(url, args, start, now)
        passed = bench_queries(db, args, hot)
        bench_retention(db, url, months_back(this_month, 11))
        bench_insert(db, args.insert_batches)
        db.dispose()
        if args.migration_rows:
            bench_migration(server, args.migration_rows)
    finally:
        server.stop()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
