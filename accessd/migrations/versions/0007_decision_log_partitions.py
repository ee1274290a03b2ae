"""the decision log partitioned by month on PostgreSQL (retention drops whole months)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00

PostgreSQL only (SQLite keeps its plain table): ``decision_log`` becomes a table partitioned by
RANGE on ``at``, one partition per calendar month in the schema ``decision_log_partitions``
(see ``accessd.pdp.decision_partitions``). The rows are moved: the old table is renamed, the new
one created with partitions for every month it holds plus the current and the next two, the rows
copied (ids kept), the indexes built on the new table (declared on the parent, so every
partition has them) and the old table dropped. The primary key becomes (id, at): a partitioned
table's unique constraints must include the partition key; ``id`` stays unique (one sequence),
and becomes a BIGINT (the sequence outlives the rows it numbered). The copy holds decision_log
locked while it runs: 5 million rows took 39 s on a shared 2-core machine
(``python -m bench.decision_log_volume``, docs/decisions.md).

Creating the schema needs the CREATE privilege on the database (the owner has it).
"""

import datetime as dt

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "decision_log_partitions"  # the same as accessd.pdp.decision_partitions.SCHEMA
COLUMNS = (
    "id, at, decision_id, client, subject_id, action, resource_type, resource_id, fields, purpose, "
    "decision, reason, revision"
)
INDEXES = (
    ("ix_decision_log_at", "at"),
    ("ix_decision_resource", "resource_type, resource_id, at"),
    ("ix_decision_subject_at", "subject_id, at"),
)


def _table(name: str, id_type: str, tail: str) -> str:
    return (
        f"CREATE TABLE {name} ("
        f"id {id_type} NOT NULL, at TIMESTAMP WITHOUT TIME ZONE NOT NULL, "
        "decision_id VARCHAR(64) NOT NULL, client VARCHAR(200), subject_id VARCHAR(200) NOT NULL, "
        "action VARCHAR(64) NOT NULL, resource_type VARCHAR(64) NOT NULL, resource_id VARCHAR(200), "
        "fields JSON, purpose VARCHAR(64), decision VARCHAR(16) NOT NULL, reason VARCHAR(64) NOT NULL, "
        f"revision INTEGER, {tail}"
    )


def _next_month(month: dt.datetime) -> dt.datetime:
    return dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('decision_log', 'id')").scalar()
    op.execute("ALTER TABLE decision_log RENAME TO decision_log_old")
    op.execute("ALTER TABLE decision_log_old RENAME CONSTRAINT decision_log_pkey TO decision_log_old_pkey")
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE decision_log_old ALTER COLUMN id DROP DEFAULT")
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY NONE")
    op.execute(f"ALTER SEQUENCE {seq} AS BIGINT")
    op.execute(
        _table(
            "decision_log",
            f"BIGINT DEFAULT nextval('{seq}'::regclass)",
            "CONSTRAINT decision_log_pkey PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
        )
    )
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY decision_log.id")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")

    now = dt.datetime.now(dt.UTC)
    month = dt.datetime(now.year, now.month, 1)
    months = {month}
    for _ in range(2):
        month = _next_month(month)
        months.add(month)
    months.update(
        conn.exec_driver_sql("SELECT DISTINCT date_trunc('month', at) FROM decision_log_old").scalars()
    )
    for month in sorted(months):
        start, end = month.isoformat(" "), _next_month(month).isoformat(" ")
        op.execute(
            f"CREATE TABLE {SCHEMA}.decision_log_{month.year:04d}_{month.month:02d} PARTITION OF "
            f"decision_log FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    op.execute(f"INSERT INTO decision_log ({COLUMNS}) SELECT {COLUMNS} FROM decision_log_old")
    op.execute("DROP TABLE decision_log_old")
    for name, columns in INDEXES:  # after the copy: one sorted build per partition
        op.execute(f"CREATE INDEX {name} ON decision_log ({columns})")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('decision_log', 'id')").scalar()
    op.execute("ALTER TABLE decision_log ALTER COLUMN id DROP DEFAULT")
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY NONE")
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE decision_log RENAME TO decision_log_old")
    op.execute("ALTER TABLE decision_log_old RENAME CONSTRAINT decision_log_pkey TO decision_log_old_pkey")
    op.execute(
        _table(
            "decision_log",
            f"INTEGER DEFAULT nextval('{seq}'::regclass)",
            "CONSTRAINT decision_log_pkey PRIMARY KEY (id))",
        )
    )
    op.execute(f"INSERT INTO decision_log ({COLUMNS}) SELECT {COLUMNS} FROM decision_log_old")
    op.execute("DROP TABLE decision_log_old")  # and with it every partition
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
    op.execute(f"ALTER SEQUENCE {seq} AS INTEGER")
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY decision_log.id")
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX {name} ON decision_log ({columns})")
