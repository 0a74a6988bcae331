"""Shared pieces of the browser tests: Chromium through Playwright, a loopback app server, screenshots."""

from __future__ import annotations

import socket
import threading
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from referral_plugin.extensions import db

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(wsgi: t.Any, app: Flask, *, port: int, threaded: bool) -> Iterator[None]:
    """Serve ``wsgi`` on the loopback ``port`` in a thread; stop it and drop ``app``'s database afterwards."""
    server: BaseWSGIServer = make_server("127.0.0.1", port, wsgi, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def installed_shop_app(database: Path, base: str) -> Flask:
    """Return an app with real (test) Shopify credentials served at ``base``, on a fresh SQLite ``database``
    holding one installed shop: the embedded admin as a merchant opens it, not the demo."""
    from referral_plugin import create_app
    from tests.conftest import make_shop
    from tests.shopify_actions import API_KEY
    from tests.shopify_actions import API_SECRET

    app = create_app({
        "TESTING": True, "SECRET_KEY": "browser-secret", "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
        "APP_URL": base, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "HUEY_IMMEDIATE": True, "RATELIMIT_STORAGE_URI": "memory://",
    })
    with app.app_context():
        db.create_all()
        make_shop()
    return app


def shot(page: t.Any, name: str) -> None:
    """Save a full-page screenshot to ``tests/artifacts/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture
def browser() -> Iterator[t.Any]:
    """Launch Debian's Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
