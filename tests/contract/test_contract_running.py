"""CONTRACT.md "Running it", "Configuration" and "Health", driven from outside."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import typing as t
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask

from referral_plugin import create_app
from referral_plugin.extensions import db
from tests.contract.conftest import create_api_key
from tests.contract.conftest import register
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import signed_admin_query

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"


def _env(**extra: str) -> dict[str, str]:
    """Return an environment without the developer's Shopify settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOPIFY_", "MAIL_")) and k not in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL",
                                                                   "APP_URL", "PORT", "HOST"}}
    env.update(extra)
    return env


def _install_location(app: Flask) -> str:
    """Return where ``/auth/install`` redirects for the test shop."""
    client = app.test_client()
    response = client.get("/auth/install", query_string=signed_admin_query({"shop": SHOP}))
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_test_config_overrides_environment(monkeypatch: pytest.MonkeyPatch, app_config: dict[str, t.Any]) -> None:
    """A ``test_config`` key wins over the same environment variable."""
    monkeypatch.setenv("APP_URL", "https://from-env.example.test")
    monkeypatch.setenv("SHOPIFY_SCOPES", "read_orders")
    app = create_app({**app_config, "APP_URL": "https://from-config.example.test"})
    with app.app_context():
        db.create_all()
        location = _install_location(app)
        db.drop_all()
        db.engine.dispose()
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == ["https://from-config.example.test/auth/callback"]
    # A key not in test_config comes from the environment.
    assert query["scope"] == ["read_orders"]


def test_default_scopes_and_app_url(app_config: dict[str, t.Any]) -> None:
    """Without SHOPIFY_SCOPES and APP_URL the documented defaults are requested and used as redirect_uri."""
    config = {k: v for k, v in app_config.items() if k != "APP_URL"}
    app = create_app(config)
    with app.app_context():
        db.create_all()
        location = _install_location(app)
        db.drop_all()
        db.engine.dispose()
    parts = urlsplit(location)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"https://{SHOP}/admin/oauth/authorize"
    assert query["scope"] == [DEFAULT_SCOPES]
    assert query["redirect_uri"] == ["http://127.0.0.1:5000/auth/callback"]
    assert query["client_id"] == ["test-api-key"]
    assert query["state"][0]


def test_app_py_defines_app() -> None:
    """The top-level ``app.py`` defines ``app``, a Flask application."""
    result = subprocess.run([sys.executable, "-c", "import app, flask; assert isinstance(app.app, flask.Flask)"],
                            cwd=REPO, env=_env(DATABASE_URL="sqlite:///:memory:"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_init_db_on_empty_database_then_serves(tmp_path: Path, app_config: dict[str, t.Any]) -> None:
    """``flask --app app init-db`` builds the schema on an empty database (twice is fine); the app then works."""
    path = tmp_path / "fresh.sqlite"
    env = _env(DATABASE_URL=f"sqlite:///{path}", SHOPIFY_API_KEY="test-api-key", SHOPIFY_API_SECRET="hush",
               SECRET_KEY="s3cret")
    for _ in range(2):
        result = subprocess.run(["flask", "--app", "app", "init-db"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}
    assert len(tables) > 5
    # The migrated schema (not create_all) carries the whole public surface.
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    with app.app_context():
        client = app.test_client()
        assert client.get("/healthz").get_json() == {"status": "ok"}
        from tests.conftest import make_shop

        make_shop()
        shopify = ShopifyActions(client)
        register(shopify, 5001, "mig@example.com")
        key = create_api_key(app.test_cli_runner())
        response = client.post("/rest_api/v2/referrals/invitations", json={"email": "mig@example.com"},
                               headers={"X-Api-Key": key})
        assert response.status_code == 200, response.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()


def test_api_key_create_prints_key_on_last_line(runner: t.Any, shop: t.Any, client: t.Any) -> None:
    """``api-key create <shop>`` prints a working key on its last line."""
    key = create_api_key(runner, SHOP)
    response = client.get("/api/v1/campaigns", headers={"X-Api-Key": key})
    assert response.status_code == 200


def test_api_key_create_unknown_shop_fails(runner: t.Any, app: Flask) -> None:
    """``api-key create`` for a shop that is not installed fails instead of printing a key."""
    result = runner.invoke(args=["api-key", "create", "nobody.myshopify.com"])
    assert result.exit_code != 0


def test_healthz_ok(client: t.Any) -> None:
    """``/healthz`` answers 200 ``{"status": "ok"}`` when the database answers."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_503_when_database_is_down(tmp_path: Path, app_config: dict[str, t.Any]) -> None:
    """``/healthz`` answers 503 when the database cannot be reached."""
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    with app.app_context():
        response = app.test_client().get("/healthz")
        db.engine.dispose()
    assert response.status_code == 503


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_demo_mode_python_app_py(tmp_path: Path) -> None:
    """With no Shopify credentials ``python app.py`` seeds the demo shop, prints the widget/dashboard URLs, serves."""
    port = _free_port()
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite'}", PORT=str(port), HOST="127.0.0.1",
               PYTHONUNBUFFERED="1")
    log = tmp_path / "out.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        assert health is not None and health.status_code == 200, log.read_text()
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}/" in printed, printed
        assert "demo-shop.myshopify.com" in printed or "/demo" in printed
        assert "widget" in printed.lower(), printed
        assert "admin" in printed.lower() or "dashboard" in printed.lower(), printed
        widget = requests.get(f"{base}/demo/widget", timeout=10)
        assert widget.status_code == 200
        token = requests.get(f"{base}/demo/session-token", timeout=10).json()["token"]
        summary = requests.get(f"{base}/admin/api/summary", headers={"Authorization": f"Bearer {token}"},
                               timeout=10)
        assert summary.status_code == 200
        # "a few customers and referrals"
        assert summary.json()["signups"] > 0 or summary.json()["referredOrders"] > 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TestSecretRotation:
    """SHOPIFY_API_SECRET_OLD: the previous secret is still accepted during a rotation."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Rotate: ``hush`` became the old secret, a new one signs from now on."""
        return {**app_config, "SHOPIFY_API_SECRET": "brand-new-secret", "SHOPIFY_API_SECRET_OLD": "hush"}

    def test_old_secret_accepted_everywhere(self, client: t.Any, shop: t.Any) -> None:
        """Webhooks, proxy calls, session tokens and OAuth hmacs signed with either secret verify."""
        from tests.shopify_actions import session_token

        for secret in ("hush", "brand-new-secret"):
            actions = ShopifyActions(client, secret=secret)
            assert actions.post_webhook("products/create", {"id": 1}).status_code == 200, secret
            assert actions.proxy_get("widget", None).status_code == 200, secret
            token = session_token(SHOP, secret=secret)
            assert client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            query = signed_admin_query({"shop": SHOP}, secret=secret)
            assert client.get("/auth/install", query_string=query).status_code == 302, secret
        bad = ShopifyActions(client, secret="neither")
        assert bad.post_webhook("products/create", {"id": 1}).status_code == 401


def test_secret_key_required_outside_demo(app_config: dict[str, t.Any]) -> None:
    """With Shopify credentials set, a missing SECRET_KEY stops start-up with an error naming it."""
    config = {k: v for k, v in app_config.items() if k != "SECRET_KEY"}
    with pytest.raises(Exception, match="SECRET_KEY"):
        create_app(config)


def test_demo_mode_without_credentials(tmp_path: Path) -> None:
    """Without Shopify credentials the app starts in demo mode with demo values and a random SECRET_KEY."""
    config = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.sqlite'}"}
    first, second = create_app(config), create_app(config)
    for app in (first, second):
        assert app.config["SHOPIFY_API_KEY"] and app.config["SHOPIFY_API_SECRET"]
        assert app.config["SECRET_KEY"]
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]


def test_api_version_default_is_a_stable_quarter(app: Flask) -> None:
    """SHOPIFY_API_VERSION defaults to a stable ``YYYY-MM`` release (a quarter month)."""
    import re

    version = app.config["SHOPIFY_API_VERSION"]
    assert re.fullmatch(r"20\d\d-(01|04|07|10)", version), version


def test_database_url_environment(monkeypatch: pytest.MonkeyPatch, app_config: dict[str, t.Any],
                                  tmp_path: Path) -> None:
    """DATABASE_URL in the environment is the database the app uses."""
    path = tmp_path / "from-env.sqlite"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    config = {k: v for k, v in app_config.items() if k != "SQLALCHEMY_DATABASE_URI"}
    app = create_app(config)
    with app.app_context():
        db.create_all()
        assert app.test_client().get("/healthz").status_code == 200
        db.engine.dispose()
    assert path.exists()


def test_default_database_is_sqlite_in_instance_folder(app_config: dict[str, t.Any]) -> None:
    """Without DATABASE_URL the database is an SQLite file in the instance folder."""
    config = {k: v for k, v in app_config.items() if k != "SQLALCHEMY_DATABASE_URI"}
    app = create_app(config)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("sqlite:///")
    assert str(Path(app.instance_path)) in uri


def test_readme_test_command_is_what_ci_runs() -> None:
    """README.md names one test command, and ``.ci/run`` calls that same command."""
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in ci
    assert (REPO / "scripts" / "test.sh").exists()


def test_init_db_through_cli_runner(tmp_path: Path, app_config: dict[str, t.Any]) -> None:
    """``init-db`` run through Flask's CLI runner on an empty database builds a schema the app then uses."""
    path = tmp_path / "runner.sqlite"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        from tests.conftest import make_shop

        make_shop()
        client = app.test_client()
        register(ShopifyActions(client), 5101, "runner@example.com")
        key = create_api_key(app.test_cli_runner())
        assert client.get("/api/v1/campaigns", headers={"X-Api-Key": key}).status_code == 200
        db.session.remove()
        db.engine.dispose()
