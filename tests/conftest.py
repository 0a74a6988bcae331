"""Shared fixtures: the app on a throwaway database, clients, an installed shop, Shopify's side.

Set ``TEST_DATABASE_URL`` to run the whole suite on another database (e.g. PostgreSQL); each test
then gets a clean schema there instead of a SQLite file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
import typing as t
from collections.abc import Iterator

import pytest
import responses as responses_lib
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from referral_plugin import create_app
from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.models import Shop
from referral_plugin.security import crypto
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own Shopify settings out of the tests."""
    for key in list(os.environ):
        if key.startswith(("SHOPIFY_", "MAIL_")) or key in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "APP_URL"}:
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def app_config(tmp_path: t.Any) -> dict[str, t.Any]:
    """Return the test configuration; tests may change it before ``app`` is built."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "APP_URL": "https://referrals.example.test",
        "SQLALCHEMY_DATABASE_URI": os.environ.get("TEST_DATABASE_URL")
        or f"sqlite:///{tmp_path / 'test.sqlite'}",
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    }


@contextlib.contextmanager
def app_with_tables(config: dict[str, t.Any]) -> Iterator[Flask]:
    """Build an app from ``config`` on a fresh schema with its context pushed; drop the tables and close its
    connections afterwards (a pooled connection left open would be collected later, inside another test)."""
    app = create_app(config)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def app(app_config: dict[str, t.Any]) -> Iterator[Flask]:
    """Build the app on a fresh schema and push its context for the test."""
    with app_with_tables(app_config) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Return a CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def shopify(client: FlaskClient) -> ShopifyActions:
    """Return Shopify's side of the conversation: signed webhooks, proxy calls, session tokens."""
    return ShopifyActions(client)


@pytest.fixture
def mocked_responses() -> Iterator[responses_lib.RequestsMock]:
    """Play Shopify's HTTP side; every registered call must fire."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def run_at_once(target: t.Callable[..., None], calls: t.Iterable[tuple[t.Any, ...]], timeout: float = 120.0) -> None:
    """Run ``target(*args)`` for each ``args`` in ``calls``, each in a thread of its own, all at once; wait for all."""
    threads = [threading.Thread(target=target, args=args) for args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def wait_until(condition: t.Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def run_scheduled_retries(app: Flask) -> int:
    """Run every retry Huey parked in its schedule, as the consumer's scheduler would once the delay is over."""
    huey = get_queue(app).huey
    tasks = huey.scheduled()
    huey.storage.flush_schedule()
    for task in tasks:
        huey.execute(task, task.eta)
    return len(tasks)


def make_shop(domain: str = SHOP, token: str = "shpat_test_token") -> Shop:
    """Create an installed shop with an encrypted offline token."""
    now = dt.datetime.now(dt.UTC)
    shop = Shop(
        shopify_domain=domain,
        name=domain.split(".")[0],
        access_token_ciphertext=crypto.encrypt(token),
        scopes="read_customers,write_customers,read_orders,write_discounts,write_app_proxy",
        installed_at=now,
    )
    db.session.add(shop)
    db.session.commit()
    return shop


@pytest.fixture
def shop(app: Flask) -> Shop:
    """Return an installed shop, ``test-shop.myshopify.com``."""
    return make_shop()
