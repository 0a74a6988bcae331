"""Which Huey storage the app's configuration picks, and the ``worker`` command's guard."""

from __future__ import annotations

import typing as t
from pathlib import Path

from flask.testing import FlaskCliRunner
from huey.storage import SqliteStorage

from referral_plugin import create_app
from referral_plugin.jobs import get_queue
from referral_plugin.jobs import sqlite_queue_path
from referral_plugin.jobs import start_inprocess_consumer


def build(app_config: dict[str, t.Any], **overrides: t.Any) -> t.Any:
    """Return the Huey instance of an app built with ``overrides``."""
    return get_queue(create_app({**app_config, **overrides})).huey


def test_storage_follows_the_configuration(app_config: dict[str, t.Any], tmp_path: Path) -> None:
    """Immediate mode runs inline in memory; REDIS_URL picks Redis; otherwise a SQLite file is used."""
    immediate = build(app_config)
    assert immediate.immediate and type(immediate.storage).__name__ == "MemoryStorage"
    redis_huey = build(app_config, HUEY_IMMEDIATE=False, REDIS_URL="redis://127.0.0.1:1/0")
    assert not redis_huey.immediate and type(redis_huey.storage).__name__ == "RedisStorage"
    sqlite_file = tmp_path / "queue.sqlite"
    sqlite_huey = build(app_config, HUEY_IMMEDIATE=False, HUEY_SQLITE_PATH=str(sqlite_file))
    assert isinstance(sqlite_huey.storage, SqliteStorage)
    assert not sqlite_file.exists()  # building the app touches no disk
    assert sqlite_huey.pending_count() == 0 and sqlite_file.exists()


def test_default_sqlite_queue_sits_beside_the_database(app_config: dict[str, t.Any], tmp_path: Path) -> None:
    """Without Redis the queue file sits next to a SQLite database (the instance folder's by default)."""
    database = tmp_path / "shop-data" / "app.sqlite"
    database.parent.mkdir()
    app = create_app({**app_config, "HUEY_IMMEDIATE": False, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    assert get_queue(app).huey.storage.filename == str(database.parent / "huey.sqlite")
    other = create_app({**app_config, "HUEY_IMMEDIATE": False,
                        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u:p@127.0.0.1:1/db"})
    assert sqlite_queue_path(other) == str(Path(other.instance_path) / "huey.sqlite")


def test_each_app_has_its_own_queue(app_config: dict[str, t.Any]) -> None:
    """Two apps in one process never share a queue or a task registry."""
    first, second = create_app(app_config), create_app(app_config)
    assert get_queue(first) is not get_queue(second)
    assert get_queue(first).huey is not get_queue(second).huey
    assert set(get_queue(first).tasks) == set(get_queue(second).tasks) >= {
        "rewards.issue_discount", "rewards.deactivate_discount", "rewards.sync_code_discount", "mail.send",
        "rewards.sweep"}


def test_worker_refuses_immediate_mode(runner: FlaskCliRunner) -> None:
    """``flask worker`` explains that inline jobs need no consumer instead of starting one."""
    result = runner.invoke(args=["worker"])
    assert result.exit_code != 0
    assert "HUEY_IMMEDIATE" in result.output


def test_no_inprocess_consumer_in_immediate_mode(app: t.Any) -> None:
    """Immediate mode needs no consumer thread."""
    assert start_inprocess_consumer(app) is None
