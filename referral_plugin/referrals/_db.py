"""Exactly-once writes: insert in a savepoint and let the database's unique constraints decide."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from referral_plugin.extensions import db
from referral_plugin.models import Base


def insert_once(row: Base) -> bool:
    """Insert ``row`` in a savepoint; return False when a unique constraint says it already exists.

    This is the engine's only idempotency primitive: never read-then-write, because two deliveries
    of the same event can both read "not there yet".
    """
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        return False
    return True
