"""SQLAlchemy tables. Schema changes go through Alembic (accessd/migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from accessd import clock


def utcnow() -> dt.datetime:
    """The clock's current instant as naive UTC (how every table stores times)."""
    return clock.now().astimezone(dt.UTC).replace(tzinfo=None)


# change_seq of a row written by a transaction that has not committed yet (see accessd.changes)
PENDING = -1


class Base(DeclarativeBase):
    pass


ACCOUNT_STATUSES = ("active", "suspended", "disabled", "pending")
GRANT_SOURCES = ("directory", "manual", "scim")


#: Account columns that are subject attributes, under the same names as the columns (and as the
#: keys of ``[ldap.attributes]``): one vocabulary for the directory mapping, the ``accessd
#: account`` options and the policy's ``r.sub.<name>``.
PROFILE_COLUMNS = (
    "username",
    "employee_number",
    "display_name",
    "email",
    "department",
    "title",
    "manager",
    "region",
)


class Account(Base):
    """An employee: the subject of decisions. Keyed by the directory's stable key."""

    __tablename__ = "account"
    # SCIM's userName is case-insensitive: lookups and the uniqueness check use lower(username)
    __table_args__ = (Index("ix_account_username_lower", func.lower(text("username"))),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the subject id applications send (AuthZEN subject.id); defaults to the username
    subject_id: Mapped[str] = mapped_column(String(200), unique=True)
    employee_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    directory_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # entryUUID / objectGUID
    directory_dn: Mapped[str | None] = mapped_column(String(1000))
    username: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    department: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    manager: Mapped[str | None] = mapped_column(String(1000))
    region: Mapped[str | None] = mapped_column(String(64))
    # further subject attributes declared in the policy catalogue (name -> text), beyond the
    # columns above; filled by the directory sync and `accessd account`
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    # who disabled the account (the offboard ``source``): directory | admin | cli | hr | scim |
    # scheduler; the directory sync re-enables only accounts it disabled itself
    disabled_by: Mapped[str | None] = mapped_column(String(16))
    # the moment access ends (UTC): end of end_date in settings.timezone, or an exact HR time
    departure_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    external_id: Mapped[str | None] = mapped_column(String(200))  # SCIM externalId
    origin: Mapped[str | None] = mapped_column(String(16))  # the Source that created the account
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)  # last working day
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # bumped on every disable/role change so sessions issued before become invalid
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # the change sequence of the transaction that last changed the account or one of its grants:
    # any INSERT or UPDATE marks the row PENDING, and accessd.changes stamps the sequence at commit
    change_seq: Mapped[int] = mapped_column(BigInteger, default=PENDING, onupdate=PENDING, index=True)

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)


class RoleGrant(Base):
    """A role held by an account, with where it came from (directory group or manual grant)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("account_id", "role", "source", name="uq_grant_account_role_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # directory | manual
    source_ref: Mapped[str | None] = mapped_column(String(1000))  # group DN for directory grants
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(200))

    account: Mapped[Account] = relationship(back_populates="grants")


class PolicyRevision(Base):
    """A numbered, immutable snapshot of the policies/ directory. The highest number is in force."""

    __tablename__ = "policy_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict] = mapped_column(JSON)  # file name -> text
    comment: Mapped[str | None] = mapped_column(Text)
    change_seq: Mapped[int] = mapped_column(
        BigInteger, default=PENDING, onupdate=PENDING, index=True
    )  # see Account.change_seq


class ApiClient(Base):
    """An application allowed to call the API. Only the token's SHA-256 is stored."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # decide | admin | hr
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the purpose assumed when this client's request names none (see docs/api.md)
    default_purpose: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    change_seq: Mapped[int] = mapped_column(
        BigInteger, default=PENDING, onupdate=PENDING, index=True
    )  # see Account.change_seq


class ChangeCounter(Base):
    """One row: the newest change sequence (see accessd.changes), the one value workers poll.

    ``reload_seq`` is the sequence of the newest change whose rows are not known (a bulk
    statement without ids): workers behind it read everything again."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    reload_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class AdminUser(Base):
    """How an account signs in to the admin UI: a local password (argon2id; none for directory
    sign-in), the optional TOTP factor with its recovery codes (argon2id hashes), and the lockout
    state. What the account may do there is decided by the policy (type ``admin_ui``)."""

    __tablename__ = "admin_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)  # lower case: the sign-in name
    password_hash: Mapped[str | None] = mapped_column(String(300))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), unique=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # secret: never shown after enrolment
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # the newest TOTP time step used: a code is good once (RFC 6238 section 5.2)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_codes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class SyncRun(Base):
    """One directory sync: its plan, outcome and counts."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # full | incremental
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # running | succeeded | failed | pending_approval | rejected | superseded
    status: Mapped[str] = mapped_column(String(24), default="running")
    # what started it: cli | scheduler | approval (a plan re-made when a held run was approved) |
    # any name given with `accessd sync --source` (e.g. cron)
    source: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    plan: Mapped[dict | None] = mapped_column(JSON)
    high_water_mark: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    approved_by: Mapped[str | None] = mapped_column(String(200))
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class RunLock(Base):
    """Who holds a cluster-wide lock (``sync``): the lock itself on SQLite, information for the
    "already running" message on PostgreSQL, where an advisory lock decides (lifecycle/locks.py)."""

    __tablename__ = "run_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))  # host:pid:process start:token
    run_id: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SyncAction(Base):
    """One per-account action of a sync run (joiner, mover, leaver, grant, revoke, ...)."""

    __tablename__ = "sync_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"), index=True)
    directory_key: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(200))


class LifecycleEvent(Base):
    """Joiner/mover/leaver/rehire events, whatever their source."""

    __tablename__ = "lifecycle_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))  # a lifecycle.states.Source
    event_ref: Mapped[str | None] = mapped_column(String(200))  # HR event id, SCIM request, sync run
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained audit trail (see accessd/audit.py)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DecisionLogWorker(Base):
    """Each web worker's decision-log counters, refreshed every few seconds, so that /readyz
    answers for every worker of every host, not only the one that served the request."""

    __tablename__ = "decision_log_worker"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid:start
    queued: Mapped[int] = mapped_column(Integer, default=0)
    written: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_batches: Mapped[int] = mapped_column(Integer, default=0)
    waiting: Mapped[int] = mapped_column(Integer, default=0)  # requests held by backpressure now
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # requests answered 503 (log full)
    last_error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DecisionLog(Base):
    """One decision: who asked about what, for which purpose, and the answer. No attribute values.

    On PostgreSQL the table is partitioned by month on ``at`` (migration 0007,
    ``accessd.pdp.decision_partitions``), and a partitioned table's primary key must contain the
    partition key: there the constraint is (id, at). The model declares ``id``, SQLite's primary
    key, which is unique on both backends (one sequence) and is the rows' identity for the ORM. A
    model cannot declare a per-dialect primary key and Alembic does not compare primary keys, so
    tests/pdp/test_decision_partitions.py checks each backend's actual one."""

    __tablename__ = "decision_log"
    __table_args__ = (
        Index("ix_decision_resource", "resource_type", "resource_id", "at"),
        # a person's decisions (auditors' --subject queries, the stale-account sweep)
        Index("ix_decision_subject_at", "subject_id", "at"),
    )

    # BIGINT on PostgreSQL (the sequence outlives dropped partitions); SQLite's INTEGER PRIMARY
    # KEY is its 64-bit rowid already
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    decision_id: Mapped[str] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(200))
    subject_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[list | None] = mapped_column(JSON)
    purpose: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # allow | mask | deny | partial
    reason: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int | None] = mapped_column(Integer)


@event.listens_for(DecisionLog, "before_insert")
def _decision_month_partition(_mapper, connection, target: DecisionLog) -> None:
    """A decision added through the ORM (tests, tools; the writer uses COPY and does this itself)
    gets its month's partition made on PostgreSQL, where a month without one refuses the row."""
    if connection.dialect.name == "postgresql" and isinstance(target.at, dt.datetime):
        from accessd.pdp import decision_partitions  # not at import: models come first

        decision_partitions.ensure(connection.connection, target.at, months_ahead=0)


class ScimGroup(Base):
    """A group as SCIM clients (HR systems) manage it; mapped to roles by ``scim.group_roles``."""

    __tablename__ = "scim_group"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ScimGroupMember(Base):
    __tablename__ = "scim_group_member"

    group_id: Mapped[str] = mapped_column(ForeignKey("scim_group.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class HrEvent(Base):
    """A signed HR event as received (replay protection by (source, event_id)) and what became of it."""

    __tablename__ = "hr_event"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_hr_event_source_event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))  # hire | termination | leave | return | rehire
    employee_number: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    effective_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class SsfKey(Base):
    """A signing key for Security Event Tokens (private JWK: never shown or logged)."""

    __tablename__ = "ssf_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class SsfStream(Base):
    """A Shared Signals stream to one receiver (SSF 1.0 stream configuration)."""

    __tablename__ = "ssf_stream"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str | None] = mapped_column(String(200))  # the API client that manages it
    audience: Mapped[list] = mapped_column(JSON, default=list)
    delivery_method: Mapped[str] = mapped_column(String(200))
    endpoint_url: Mapped[str | None] = mapped_column(String(2000))
    authorization_header: Mapped[str | None] = mapped_column(Text)  # secret: never shown or logged
    events_requested: Mapped[list] = mapped_column(JSON, default=list)
    events_delivered: Mapped[list] = mapped_column(JSON, default=list)
    subject_format: Mapped[str] = mapped_column(String(32), default="email")
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | paused | disabled
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SsfStreamSubject(Base):
    """A subject a receiver removed from its stream (default_subjects is ALL: every account
    is in a stream except the ones listed here)."""

    __tablename__ = "ssf_stream_subject"

    stream_id: Mapped[str] = mapped_column(ForeignKey("ssf_stream.id", ondelete="CASCADE"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class SsfOutbox(Base):
    """A signed SET waiting for (or done with) delivery; written in the transaction of the change."""

    __tablename__ = "ssf_outbox"
    __table_args__ = (
        Index("ix_ssf_outbox_due", "status", "next_attempt_at"),
        Index("ix_ssf_outbox_stream_subject", "stream_id", "subject_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("ssf_stream.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    subject_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class SchedulerJob(Base):
    """The last run of one scheduled job in the cluster (accessd.jobs): the leading scheduler
    claims a run by a compare-and-set on ``runs``, so a fire time is run once across processes,
    and a leader that takes over runs once what fell due since ``due_after``."""

    __tablename__ = "scheduler_job"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the job's id (jobs.register)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # runs so far; the claim's version
    # fire times up to this instant are accounted for: by the last run, which started then, or
    # (runs = 0) by the moment the job was first scheduled
    due_after: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str | None] = mapped_column(String(16))  # running | succeeded | failed
    ran_by: Mapped[str | None] = mapped_column(String(200))  # host:pid:process start:token
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(String(300))
