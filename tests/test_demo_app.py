"""``python app.py`` and ``flask --app app init-db`` as a newcomer runs them, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import inspect

from referral_plugin import create_app
from referral_plugin.extensions import db

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_TABLES = {"shops", "customers", "campaigns", "referral_codes", "referrals", "ledger_entries",
                   "webhook_deliveries", "api_keys", "alembic_version"}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOPIFY_", "MAIL_")) and k not in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL",
                                                                  "APP_URL", "HOST", "PORT"}}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


class Server:
    """A ``python app.py`` subprocess on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT,
            env={**env, "PORT": str(self.port), "HOST": "127.0.0.1"},
        )

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_healthy(self, timeout: float = 90) -> None:
        """Wait until /healthz answers, or fail with the server's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if _get(self.url("/healthz"))[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        pytest.fail("python app.py did not become healthy:\n" + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        """Stop this server (only the process this test started)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self._log_file.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[t.Callable[..., Server]]:
    """Start ``python app.py`` subprocesses with the given environment; stop them afterwards."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(_clean_env(DATABASE_URL=f"sqlite:///{tmp_path / f'app{len(servers)}.sqlite'}", **env),
                        tmp_path / f"server{len(servers)}.log")
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


def test_python_app_py_serves_the_demo(start_server: t.Callable[..., Server]) -> None:
    """Without credentials, ``python app.py`` creates the schema, seeds, prints the URLs and serves /demo."""
    server = start_server()
    assert _get(server.url("/healthz")) == (200, '{"status":"ok"}\n')
    status, page = _get(server.url("/demo"))
    assert status == 200
    assert "demo-shop.myshopify.com" in page
    token = json.loads(_get(server.url("/demo/session-token"))[1])["token"]
    request = urllib.request.Request(server.url("/admin/api/summary"), headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        summary = json.loads(response.read())
    assert summary["signups"] > 0 and summary["referredOrders"] > 0 and summary["clicks"] > 0
    output = server.log.read_text(errors="replace")
    assert "31 customers" in output
    assert server.url("/demo") in output
    assert server.url("/demo/admin") in output
    assert server.url("/healthz") in output
    # Ctrl+C stops everything, the in-process job consumer's threads included.
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=60) == 0


def test_python_app_py_with_credentials_has_no_demo_shortcuts(start_server: t.Callable[..., Server]) -> None:
    """With credentials and SECRET_KEY set, the app serves but every demo shortcut is 404."""
    server = start_server(SHOPIFY_API_KEY="real-key", SHOPIFY_API_SECRET="real-secret",
                          SECRET_KEY="a-real-secret-key")
    assert _get(server.url("/healthz"))[0] == 200
    for path in ("/demo", "/demo/widget", "/demo/widget?customer=1", "/demo/admin", "/demo/session-token"):
        assert _get(server.url(path))[0] == 404, path


# migrations/env.py (the lead's) still calls Flask-SQLAlchemy's deprecated get_engine().
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_init_db_command_creates_the_schema(tmp_path: Path) -> None:
    """``init-db`` (CLI runner) builds the schema from the migrations on an empty SQLite file, and is repeatable."""
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    app: Flask = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "k",
                             "SHOPIFY_API_KEY": "a", "SHOPIFY_API_SECRET": "b"})
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    with app.app_context():
        assert EXPECTED_TABLES <= set(inspect(db.engine).get_table_names())
        db.engine.dispose()


def test_flask_init_db_in_a_subprocess(tmp_path: Path) -> None:
    """``flask --app app init-db`` run as a newcomer would creates every table on an empty SQLite database."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "init-db"], cwd=ROOT, env=_clean_env(DATABASE_URL=url),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    engine = create_engine(url)
    try:
        assert EXPECTED_TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
