"""The change sequence: which accounts, grants, API clients and policy revisions changed, in order.

Every worker holds all accounts, API tokens and the policy in memory (accessd.pdp.feed). To apply
only what changed, every committing transaction that wrote one of those tables takes the next
number from the one-row ``change_counter`` and stamps it on the rows it wrote:

* Any INSERT or UPDATE of ``account``, ``api_client`` or ``policy_revision`` -- ORM, bulk or
  executemany -- sets the row's ``change_seq`` to ``PENDING`` (the column's default and
  ``onupdate``), so no writer has to remember anything. A grant's change is its account's: the
  ORM unit of work and bulk writes of ``role_grant`` mark the account (a deleted grant leaves no
  row of its own to carry a number).
* Just before the commit (``before_commit``) the transaction increments the counter and sets
  ``change_seq`` of its PENDING rows to the new number. On PostgreSQL the counter's row lock is
  held from that moment to the commit, so numbers are given in commit order and a worker that has
  seen number N has seen every change up to N; SQLite serialises writers anyway. The lock is
  taken at the end, so a long transaction (a sync) does not hold other writers back while it works.
* On PostgreSQL the transaction also sends ``NOTIFY accessd_changes``, delivered at commit, which
  wakes every listening worker on every host (polling remains the fallback).

A bulk DELETE of accounts or grants whose accounts are not known (no writer in accessd does one
without also updating the accounts; the sync marks its statement) sets ``reload_seq``: workers
behind it read everything again. Rows changed by hand outside accessd are caught by the workers'
periodic full reload.
"""

from __future__ import annotations

from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Delete, Insert, Update

from accessd.models import PENDING, Account, ApiClient, ChangeCounter, PolicyRevision, RoleGrant

CHANNEL = "accessd_changes"
STAMPED = (Account, ApiClient, PolicyRevision)  # the tables carrying change_seq
WATCHED = {m.__tablename__ for m in (*STAMPED, RoleGrant)}
# execution option for a bulk DELETE of grants whose accounts the same transaction updates
ACCOUNTS_TOUCHED = "accessd_accounts_touched"
_CHUNK = 500  # ids per UPDATE ... IN (...)


class _Pending:
    """What a transaction wrote, kept in ``session.info`` until it commits or rolls back."""

    __slots__ = ("wrote", "accounts", "reload")

    def __init__(self):
        self.wrote = False  # a watched table was written: the commit takes a number
        self.accounts: set[int] = set()  # accounts whose grants changed
        self.reload = False  # a change whose rows are not known


def _pending(session: Session) -> _Pending:
    found = session.info.get("accessd_changes")
    if found is None:
        found = session.info["accessd_changes"] = _Pending()
    return found


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context) -> None:
    pending = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, (*STAMPED, RoleGrant)):
            pending = pending or _pending(session)
            pending.wrote = True
            if isinstance(obj, RoleGrant):
                # a grant deleted through its account's collection may no longer name it
                state = obj.__dict__
                account_id = state.get("account_id") or getattr(state.get("account"), "id", None)
                if account_id is None:
                    pending.reload = True
                else:
                    pending.accounts.add(account_id)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state) -> None:
    statement = state.statement
    if isinstance(statement, (Insert, Update, Delete)):
        table = getattr(statement.table, "name", None)
        if table not in WATCHED:
            return
        pending = _pending(state.session)
        pending.wrote = True
        if table == RoleGrant.__tablename__ and isinstance(statement, Insert):
            rows = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
            ids = {r.get("account_id") for r in rows}
            pending.reload |= None in ids
            pending.accounts |= ids - {None}
        elif (isinstance(statement, Delete) or table == RoleGrant.__tablename__) and not (
            state.execution_options.get(ACCOUNTS_TOUCHED)
        ):
            # rows we cannot name (a DELETE leaves none to stamp), unless the writer says the
            # same transaction updates their accounts
            pending.reload = True
    elif hasattr(statement, "text"):  # raw SQL: be safe when it writes a watched table
        sql = statement.text.lstrip().lower()
        if sql.startswith(("insert", "update", "delete")) and any(t in sql for t in WATCHED):
            pending = _pending(state.session)
            pending.wrote = pending.reload = True


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: the outermost commit takes the number
    session.flush()  # the last writes must be seen before the number is taken
    pending = session.info.pop("accessd_changes", None)
    if pending is None or not pending.wrote:
        return
    seq = take_number(session, reload=pending.reload)
    accounts = sorted(pending.accounts)
    for start in range(0, len(accounts), _CHUNK):
        _stamp(session, Account, seq, Account.id.in_(accounts[start : start + _CHUNK]))
    for model in STAMPED:
        _stamp(session, model, seq, model.change_seq == PENDING)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANNEL, "seq": str(seq)})
    session.info.pop("accessd_changes", None)  # the stamping itself is not a change


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost one: committed or rolled back, start afresh
        session.info.pop("accessd_changes", None)


def take_number(session: Session, reload: bool = False) -> int:
    """The next change sequence (locks the counter until this transaction ends)."""
    values = {"seq": ChangeCounter.seq + 1}
    if reload:
        values["reload_seq"] = ChangeCounter.seq + 1
    seq = session.execute(
        update(ChangeCounter).where(ChangeCounter.id == 1).values(**values).returning(ChangeCounter.seq)
    ).scalar()
    if seq is None:  # a database created without the migrations' first row
        session.add(ChangeCounter(id=1, seq=1, reload_seq=1))
        session.flush()
        seq = 1
    return seq


def _stamp(session: Session, model, seq: int, where) -> None:
    values = {"change_seq": seq}
    if hasattr(model, "updated_at"):
        values["updated_at"] = model.updated_at  # stamping is not a change: keep onupdate off it
    session.execute(update(model).where(where).values(**values).execution_options(synchronize_session=False))


def counter(session: Session) -> tuple[int, int]:
    """(seq, reload_seq): the newest change and the newest one that needs a full reload."""
    query = select(ChangeCounter.seq, ChangeCounter.reload_seq).where(ChangeCounter.id == 1)
    row = session.execute(query).first()
    return (row[0], row[1]) if row is not None else (0, 0)
