"""Fixtures for the multi-process tests: real PostgreSQL and Redis, gunicorn, a fake Shopify.

When ``DATABASE_URL_TEST_POSTGRES`` (or a PostgreSQL ``TEST_DATABASE_URL``) and ``REDIS_URL_TEST`` are set, as in
the second pass of ``scripts/test.sh``, those servers are used; otherwise a throwaway PostgreSQL and Redis are
started from the Debian binaries for the session, so ``python -m pytest tests/scale`` works on its own. Each test
gets a database of its own on that server (dropped afterwards) and a Redis database of its own (flushed).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from referral_plugin import create_app
from referral_plugin.extensions import db
from tests.scale.harness import AppServer
from tests.scale.harness import FakeShopify
from tests.scale.harness import app_config
from tests.scale.harness import app_environment
from tests.servers import PostgresServer
from tests.servers import RedisServer
from tests.servers import ServerUnavailable
from tests.servers import create_database
from tests.servers import drop_database


def _configured_postgres() -> str | None:
    url = os.environ.get("DATABASE_URL_TEST_POSTGRES") or os.environ.get("TEST_DATABASE_URL") or ""
    return url if url.startswith(("postgresql", "postgres:")) else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Return the URL of a PostgreSQL server this session may create databases on."""
    configured = _configured_postgres()
    if configured:
        yield configured.replace("postgres://", "postgresql+psycopg://", 1)
        return
    try:
        server = PostgresServer()
    except ServerUnavailable as error:
        pytest.skip(str(error))
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """Return the URL of a Redis server this session may use."""
    configured = os.environ.get("REDIS_URL_TEST")
    if configured:
        yield configured
        return
    try:
        server = RedisServer()
    except ServerUnavailable as error:
        pytest.skip(str(error))
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


_redis_db = itertools.count(1)


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """Return a flushed Redis database for this test (1-15, round robin; 0 is left to the job tests)."""
    base = redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    url = f"{base}/{next(_redis_db) % 15 + 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """Return the URL of a new, empty database (dropped after the test)."""
    name = f"scale_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    try:
        yield url
    finally:
        drop_database(postgres_url, name)


@pytest.fixture
def scale_app(pg_database: str) -> Iterator[Flask]:
    """Return the test process's own app on the test database, schema created, context pushed."""
    app = create_app(app_config(pg_database))
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def fake_shopify() -> Iterator[FakeShopify]:
    """Return a fake Shopify on loopback."""
    with FakeShopify() as fake:
        yield fake


@pytest.fixture
def start_server(
    pg_database: str, redis_url: str, fake_shopify: FakeShopify
) -> Iterator[Callable[..., AppServer]]:
    """Return a function that starts gunicorn (4 workers) on the test database; every server stops at the end."""
    servers: list[AppServer] = []

    def start(workers: int = 4, **extra_env: str) -> AppServer:
        env = app_environment(
            pg_database,
            redis_url=redis_url,
            shopify_base_url_template=fake_shopify.base_url_template,
            extra=extra_env,
        )
        server = AppServer(env, workers=workers)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(graceful=False)  # the test is over: no request is in flight
