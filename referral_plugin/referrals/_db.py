"""Exactly-once writes: insert and let the database's unique constraints decide."""

from __future__ import annotations

import functools
import typing as t

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from referral_plugin.extensions import db
from referral_plugin.models import Base
from referral_plugin.models import LedgerEntry

_ON_CONFLICT_DIALECTS = ("postgresql", "sqlite")
# Observability counts ledger rows from the session's flush (``after_flush``); a Core insert bypasses
# the flush, so these keep the ORM path or the reward metrics would stop counting them.
_FLUSH_OBSERVED: tuple[type[Base], ...] = (LedgerEntry,)


def insert_once(row: Base) -> bool:
    """Insert ``row``; return False when a unique constraint says it already exists.

    This is the engine's only idempotency primitive: never read-then-write, because two deliveries
    of the same event can both read "not there yet". On PostgreSQL and SQLite it is one
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` statement; elsewhere a savepoint around the insert.
    """
    mapper = sa_inspect(type(row))
    state = sa_inspect(row)
    dialect = db.session.get_bind(mapper=mapper).dialect.name
    if (dialect not in _ON_CONFLICT_DIALECTS or not state.transient or isinstance(row, _FLUSH_OBSERVED)
            or len(mapper.tables) != 1 or any(state.dict.get(rel.key) for rel in mapper.relationships)):
        # Relationship-set foreign keys are only synced by a flush: those rows keep the ORM path.
        return _insert_in_savepoint(row)
    # The savepoint path flushed pending changes first; keep that order (rows this one may reference).
    db.session.flush()
    table = t.cast("Table", mapper.local_table)
    values: dict[t.Any, t.Any] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if prop.key not in state.dict:
            continue
        value = state.dict[prop.key]
        # As the ORM's flush does: a None leaves the column to its default unless the type stores None itself.
        if value is None and not column.type.should_evaluate_none:
            continue
        values[column.key] = value
    inserted = db.session.execute(_insert_statement(table, dialect), values).first()
    if inserted is None:
        return False
    # Make the caller's object the persistent row, as a flush would: keep what the caller set and take
    # the rest (id, column defaults, server defaults) from RETURNING, then attach it without another query.
    returned = inserted._mapping
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if state.dict.get(prop.key) is None:
            set_committed_value(row, prop.key, returned[column])
    make_transient_to_detached(row)
    db.session.add(row)
    return True


@functools.cache
def _insert_statement(table: Table, dialect: str) -> t.Any:
    """Return the ``INSERT ... ON CONFLICT DO NOTHING RETURNING *`` of ``table``, built once per table.

    No conflict target: like the savepoint's IntegrityError, any unique constraint or (partial) unique index
    of the table turns the insert into a no-op, e.g. a code's (shop, code) and (campaign, customer). The
    values come with each execution, so one statement (and one compiled form per set of columns) serves all.
    """
    insert = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return insert.on_conflict_do_nothing().returning(*table.columns)


def _insert_in_savepoint(row: Base) -> bool:
    """Insert ``row`` in a savepoint; return False on a unique violation."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        return False
    return True


def exists_or_waits(row: Base) -> bool:
    """Tell whether a row with ``row``'s unique key exists, waiting for a transaction inserting one right now.

    A plain SELECT cannot see another transaction's uncommitted insert; an ``INSERT ... ON CONFLICT DO
    NOTHING`` of the same key waits for it on PostgreSQL (and takes SQLite's write lock). The probe's own
    insert, if it went in, is rolled back at once: nothing is written. Only for PostgreSQL and SQLite.
    """
    mapper = sa_inspect(type(row))
    dialect = db.session.get_bind(mapper=mapper).dialect.name
    if dialect not in _ON_CONFLICT_DIALECTS:
        raise NotImplementedError(f"exists_or_waits needs ON CONFLICT ({dialect})")
    db.session.flush()
    table = t.cast("Table", mapper.local_table)
    state = sa_inspect(row)
    values = {prop.columns[0].key: state.dict[prop.key] for prop in mapper.column_attrs
              if state.dict.get(prop.key) is not None}
    nested = db.session.begin_nested()
    try:
        inserted = db.session.execute(_insert_statement(table, dialect), values).first()
    finally:
        nested.rollback()
    return inserted is None


M = t.TypeVar("M", bound=Base)


def lock_for_turns(model: type[M], row_id: int, *, fresh: bool = False) -> M | None:
    """Lock one row so that the transactions deciding about it take turns (PostgreSQL; SQLite has one writer).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: a transaction that already inserted a row referencing this one
    (a referral of this advocate, a ledger row of this referral) holds the foreign key's ``KEY SHARE`` lock on
    it, which ``FOR UPDATE`` conflicts with. Two such transactions each waiting for the other's key share to
    lock the row is a deadlock (seen under load: one delivery in ~1,500 failed with it); ``NO KEY UPDATE`` waits
    only for another transaction taking turns. ``fresh`` reads the row again over what the session holds.
    """
    statement = select(model).where(model.id == row_id).with_for_update(key_share=True)  # type: ignore[attr-defined]
    if fresh:
        statement = statement.execution_options(populate_existing=True)
    return db.session.scalar(statement)
