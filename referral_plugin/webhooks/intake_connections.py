"""Autocommit connections the queued intake keeps per thread between requests.

The queued intake's work is one ``INSERT``. Checking a connection out of the pool for it, switching it to
autocommit and back on return costs about as much again as the statement, so each thread keeps one open,
already in autocommit, for the process's life. The connection comes from the app's engine (same pool, same
settings) and is let go when that engine is disposed (tests; gunicorn's ``post_fork``), in a forked child
(never one inherited from the parent) and when it fails: a connection the database dropped (a restart, an
idle timeout) is replaced and the statement run once more, which is safe because the insert is idempotent.
SQLite keeps a checkout per request: its insert waits for the file's writer lock whatever the connection.
"""

from __future__ import annotations

import os
import threading
import typing as t
import weakref

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from referral_plugin.extensions import db

T = t.TypeVar("T")


class IntakeConnections:
    """Each thread's autocommit connection to the app's database."""

    def __init__(self) -> None:
        self._local = threading.local()
        # Every connection held, by engine, with the process that opened it: disposing the engine closes
        # them in all threads of that process.
        self._held: weakref.WeakKeyDictionary[Engine, dict[Connection, int]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def run(self, work: t.Callable[[Connection], T]) -> T:
        """Run ``work`` (idempotent statements) on this thread's autocommit connection and return its result."""
        engine = db.engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                return work(connection.execution_options(isolation_level="AUTOCOMMIT"))
        try:
            return work(self._connection(engine))
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._forget(engine)
            return work(self._connection(engine))

    def _connection(self, engine: Engine) -> Connection:
        local = self._local
        held = getattr(local, "connection", None)
        if held is not None and local.engine is engine and local.pid == os.getpid() and not held.closed:
            return t.cast(Connection, held)
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        local.connection, local.engine, local.pid = connection, engine, os.getpid()
        with self._lock:
            if engine not in self._held:
                self._held[engine] = {}
                event.listen(engine, "engine_disposed", self._close_all)
            self._held[engine][connection] = os.getpid()
        return connection

    def _forget(self, engine: Engine) -> None:
        """Drop this thread's connection (the database dropped it); the next call opens another."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._held.get(engine, {}).pop(connection, None)
            connection.close()

    def _close_all(self, engine: Engine) -> None:
        """Close every thread's connection to a disposed engine (a forked child only forgets the parent's)."""
        with self._lock:
            connections = self._held.pop(engine, {})
        for connection, pid in connections.items():
            if pid == os.getpid():  # a child must not close the parent's sockets, only forget them
                # Closed outright, not returned: the engine's old pool is gone and would keep it open.
                connection.invalidate()
                connection.close()


intake_connections = IntakeConnections()
