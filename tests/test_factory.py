"""The factory builds apps from config without side effects, and refuses unsafe configurations."""

from __future__ import annotations

import pytest

from referral_plugin import create_app
from referral_plugin.errors import ConfigurationError


def test_testing_config_overrides_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Keys in test_config win over environment variables."""
    monkeypatch.setenv("APP_URL", "https://from-env.example")
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SHOPIFY_API_KEY": "a", "SHOPIFY_API_SECRET": "b",
                      "APP_URL": "https://from-test.example/", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["APP_URL"] == "https://from-test.example"
    assert app.config["DEMO_MODE"] is False


def test_secret_key_is_required_with_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside demo mode a missing SECRET_KEY stops start-up, naming the variable."""
    monkeypatch.setenv("SHOPIFY_API_KEY", "real-key")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "real-secret")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app()


def test_demo_mode_without_credentials() -> None:
    """With no Shopify credentials the app runs in demo mode with demo values."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["DEMO_MODE"] is True
    assert app.config["SHOPIFY_API_KEY"] == "demo-api-key"
    assert app.config["SECRET_KEY"]


def test_postgres_urls_use_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare postgresql:// URL is pointed at the psycopg 3 driver."""
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@localhost/db")
    app = create_app({"SECRET_KEY": "k"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@localhost/db"


def test_scopes_written_with_spaces_are_sent_as_shopify_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SHOPIFY_SCOPES="read_orders, write_discounts,"`` reaches Shopify as ``read_orders,write_discounts``."""
    monkeypatch.setenv("SHOPIFY_SCOPES", " read_orders, write_discounts,\n")
    app = create_app({"SECRET_KEY": "k", "SHOPIFY_API_KEY": "key", "SHOPIFY_API_SECRET": "secret"})
    assert app.config["SHOPIFY_SCOPES"] == "read_orders,write_discounts"


def test_healthz_answers_when_database_answers(client) -> None:
    """GET /healthz is 200 {"status": "ok"} with a working database."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_is_503_when_database_is_unreachable(tmp_path) -> None:
    """GET /healthz is 503 when the database cannot be opened."""
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SHOPIFY_API_KEY": "a", "SHOPIFY_API_SECRET": "b",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing-dir/x.sqlite"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503


def test_file_sqlite_runs_in_wal_mode(app) -> None:
    """A file SQLite database is opened in WAL mode, so reads don't wait for a webhook's write."""
    from referral_plugin.extensions import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("WAL is SQLite's; this pass runs on another database (TEST_DATABASE_URL)")
    assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
