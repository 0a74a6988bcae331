"""Extension objects, created unbound and bound to the app in the factory."""

from __future__ import annotations

import sqlite3
import typing as t

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from referral_plugin.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)


@event.listens_for(Engine, "connect")
def _use_sqlite_wal(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    """Put file SQLite databases in WAL mode: storefront and API reads then never wait for a webhook's write.

    ``synchronous`` stays at its FULL default, so an acknowledged webhook survives a power cut.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()
