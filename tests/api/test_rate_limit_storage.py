"""Where rate-limit counters live: memory by default, Redis when configured, memory again if Redis is down."""

from __future__ import annotations

import os
import typing as t
from collections.abc import Iterator

import pytest
from flask import Flask

from referral_plugin import create_app
from referral_plugin.api.ratelimit import storage_uri
from referral_plugin.apikeys import create_key
from referral_plugin.extensions import db
from referral_plugin.models import Shop


@pytest.mark.parametrize(("config", "expected"), [
    ({"RATELIMIT_STORAGE_URI": None, "REDIS_URL": None}, "memory://"),
    ({"RATELIMIT_STORAGE_URI": None, "REDIS_URL": "redis://cache:6379/1"}, "redis://cache:6379/1"),
    ({"RATELIMIT_STORAGE_URI": "redis://limits:6379/2", "REDIS_URL": "redis://cache:6379/1"},
     "redis://limits:6379/2"),
])
def test_storage_uri_prefers_the_explicit_setting_then_redis(app_config: dict[str, t.Any], config: dict[str, t.Any],
                                                             expected: str) -> None:
    """RATELIMIT_STORAGE_URI wins, then REDIS_URL, then process memory."""
    assert storage_uri(create_app({**app_config, **config})) == expected


@pytest.fixture
def make_app(app_config: dict[str, t.Any]) -> Iterator[t.Callable[..., Flask]]:
    """Build extra app instances on the test database and close their connections afterwards."""
    made: list[Flask] = []

    def build(**overrides: t.Any) -> Flask:
        extra = create_app({**app_config, **overrides})
        made.append(extra)
        return extra

    yield build
    for extra in made:
        with extra.app_context():
            db.session.remove()
            db.engine.dispose()


def _key_for(app: Flask) -> str:
    with app.app_context():
        shop = db.session.scalars(db.select(Shop)).one()
        created = create_key(shop)
        db.session.commit()
        return created.key


def test_unreachable_redis_falls_back_to_memory(make_app: t.Callable[..., Flask], api_shop: Shop) -> None:
    """With the counters' Redis down, the API still answers (and still limits, in memory)."""
    down = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", API_RATE_LIMIT="2/minute")
    key = _key_for(down)
    client = down.test_client()
    statuses = [client.get("/api/v1/campaigns", headers={"X-Api-Key": key}).status_code for _ in range(3)]
    assert statuses[0] == 200 and statuses[-1] in (200, 429) and 500 not in statuses


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL_TEST"), reason="needs REDIS_URL_TEST (scripts/test.sh)")
def test_redis_counters_are_shared_between_processes(make_app: t.Callable[..., Flask], api_shop: Shop) -> None:
    """Two app instances (as two gunicorn workers) on one Redis share a key's budget."""
    config = {"RATELIMIT_STORAGE_URI": os.environ["REDIS_URL_TEST"], "API_RATE_LIMIT": "3/minute"}
    first, second = make_app(**config), make_app(**config)
    key = _key_for(first)
    headers = {"X-Api-Key": key}
    assert [first.test_client().get("/api/v1/campaigns", headers=headers).status_code for _ in range(2)] == [200, 200]
    assert second.test_client().get("/api/v1/campaigns", headers=headers).status_code == 200
    blocked = second.test_client().get("/api/v1/campaigns", headers=headers)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
