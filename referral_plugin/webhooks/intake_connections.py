"""Autocommit connections the queued intake keeps per thread between requests.

The queued intake's work is one ``INSERT``. Checking a connection out of the pool for it, switching it to
autocommit and back on return costs about as much again as the statement, so each thread keeps one open,
already in autocommit, for the process's life, with the names of the statements prepared on it for work that
runs a statement compiled once straight in libpq (:meth:`IntakeConnections.libpq`). The connection comes
from the app's engine (same pool, same settings) and is let go when that engine is disposed (tests; gunicorn's
``post_fork``), in a forked child (which forgets the parent's without closing them) and when it fails: a
connection the database dropped (a restart, an idle timeout) is invalidated, replaced and the statement run once
more, which is safe because the insert is idempotent. SQLite keeps a checkout per request: its insert waits for
the file's writer lock whatever the connection.
"""

from __future__ import annotations

import os
import threading
import typing as t
import weakref

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from referral_plugin.extensions import db

T = t.TypeVar("T")


class IntakeConnections:
    """Each thread's autocommit connection to the app's database."""

    def __init__(self) -> None:
        self.forget_all()

    def forget_all(self) -> None:
        """Hold nothing (a forked child: the parent's sockets are the parent's to close)."""
        self._local = threading.local()
        # Every connection held, by engine: disposing the engine closes them in all threads.
        self._held: weakref.WeakKeyDictionary[Engine, set[Connection]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def run(self, work: t.Callable[[Connection], T]) -> T:
        """Run ``work`` (idempotent statements) on this thread's autocommit connection and return its result."""
        engine = db.engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                return work(connection.execution_options(isolation_level="AUTOCOMMIT"))
        try:
            return work(self._connection(engine))
        except DBAPIError as exc:  # through SQLAlchemy, which tells whether the connection is gone
            if not exc.connection_invalidated:
                raise
        except engine.dialect.loaded_dbapi.Error as exc:  # on the driver cursor: ask the dialect
            if not engine.dialect.is_disconnect(exc, self._local.connection.connection.driver_connection, None):
                raise
        self._forget(engine)
        return work(self._connection(engine))

    def libpq(self, connection: Connection, name: bytes, sql: bytes) -> t.Any:
        """Return the libpq connection under ``connection`` (this thread's), with ``sql`` prepared on it as ``name``.

        Prepared once per connection and name: a replacement connection (the database dropped the last one)
        prepares it again.
        """
        local = self._local
        if getattr(local, "prepared_of", None) is not connection:
            local.prepared, local.prepared_of = set(), connection
        pgconn = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
        if name not in local.prepared:
            result = pgconn.prepare(name, sql)
            if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result)
            local.prepared.add(name)
        return pgconn

    def _connection(self, engine: Engine) -> Connection:
        local = self._local
        held = getattr(local, "connection", None)
        if held is not None and local.engine is engine and not held.closed:
            return t.cast(Connection, held)
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        local.connection, local.engine = connection, engine
        with self._lock:
            self._held.setdefault(engine, set()).add(connection)
            if not event.contains(engine, "engine_disposed", self._close_all):
                event.listen(engine, "engine_disposed", self._close_all)
        return connection

    def _forget(self, engine: Engine) -> None:
        """Drop this thread's connection (the database dropped it); the next call opens another."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.prepared_of = None
        if connection is not None:
            with self._lock:
                self._held.get(engine, set()).discard(connection)
            # Invalidated, not returned: the pool must not hand the broken driver connection out again.
            connection.invalidate()
            connection.close()

    def _close_all(self, engine: Engine) -> None:
        """Close every thread's connection to a disposed engine."""
        with self._lock:
            connections = self._held.pop(engine, set())
        for connection in connections:
            # Closed outright, not returned: the engine's old pool is gone and would keep it open.
            connection.invalidate()
            connection.close()


intake_connections = IntakeConnections()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=intake_connections.forget_all)
