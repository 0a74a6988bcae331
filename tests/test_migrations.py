"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import typing as t

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect

from referral_plugin import create_app
from referral_plugin.cli import init_db
from referral_plugin.extensions import db


def _migrated_app(app_config: dict[str, t.Any]) -> Flask:
    app = create_app(app_config)
    with app.app_context():
        db.drop_all()  # a TEST_DATABASE_URL may be shared; start from nothing
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    return app


def test_migrations_match_models(app_config: dict[str, t.Any]) -> None:
    """Upgrading an empty database to head leaves no difference from the models' metadata."""
    app = _migrated_app(app_config)
    with app.app_context():
        init_db()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diff == []
        assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        db.engine.dispose()


def test_init_db_is_idempotent(app_config: dict[str, t.Any]) -> None:
    """Running init-db twice is harmless: the second run finds the schema at head."""
    app = _migrated_app(app_config)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        db.engine.dispose()
