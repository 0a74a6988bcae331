"""The queued intake's per-thread autocommit connection: kept, replaced when the database drops it, closed on dispose.

PostgreSQL only (SQLite checks a connection out per request); run by the suite's PostgreSQL pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import typing as t

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.webhooks.intake_connections import intake_connections
from tests.engine.conftest import customer_payload
from tests.shopify_actions import ShopifyActions


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Queued intake; jobs run at commit."""
    return {**app_config, "WEBHOOK_PROCESSING": "queued"}


@pytest.fixture(autouse=True)
def _postgresql_only(app: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the intake keeps connections on PostgreSQL only (TEST_DATABASE_URL)")


def intake_backend() -> int:
    """Return the server process id of this thread's intake connection."""
    return int(intake_connections.run(lambda connection: connection.execute(text("SELECT pg_backend_pid()")).scalar()))


def stored() -> int:
    db.session.rollback()
    return int(db.session.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one())


def test_one_connection_serves_the_threads_deliveries(shopify: ShopifyActions, shop: Shop) -> None:
    """Two deliveries, one server process: the connection stayed open between the requests, in autocommit."""
    assert shopify.post_webhook("customers/create", customer_payload(9501)).get_json() == {"status": "queued"}
    first = intake_backend()
    assert shopify.post_webhook("customers/create", customer_payload(9502)).get_json() == {"status": "queued"}
    assert intake_backend() == first
    assert stored() == 2  # committed by the insert itself: another connection sees both


def test_a_connection_the_database_dropped_is_replaced_and_the_delivery_stored(
    shopify: ShopifyActions, shop: Shop
) -> None:
    """The server ends the kept connection (a restart, an idle timeout): the next delivery is still 200 and stored."""
    assert shopify.post_webhook("customers/create", customer_payload(9511)).status_code == 200
    dropped = intake_backend()
    db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
    db.session.commit()

    response = shopify.post_webhook("customers/create", customer_payload(9512))
    assert (response.status_code, response.get_json()) == (200, {"status": "queued"})
    assert intake_backend() != dropped
    assert stored() == 2


def test_disposing_the_engine_closes_the_kept_connection(shopify: ShopifyActions, shop: Shop) -> None:
    """Tests and gunicorn's post_fork dispose the engine: the kept connection goes with its pool."""
    assert shopify.post_webhook("customers/create", customer_payload(9521)).status_code == 200
    kept = intake_backend()
    db.engine.dispose()
    alive = db.session.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": kept})
    assert alive.scalar_one() == 0
    db.session.rollback()
    assert intake_backend() != kept


def test_a_forked_worker_opens_its_own_and_leaves_the_parents_open(shopify: ShopifyActions, shop: Shop) -> None:
    """gunicorn forks workers and disposes the inherited pool (``post_fork``): the child neither uses nor closes
    the parent's kept connection, and opens one of its own."""
    assert shopify.post_webhook("customers/create", customer_payload(9531)).status_code == 200
    parents = intake_backend()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            db.engine.dispose(close=False)
            code = 0 if intake_backend() != parents else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert intake_backend() == parents


def test_times_are_stored_as_utc_whatever_the_connections_time_zone(shopify: ShopifyActions, shop: Shop) -> None:
    """The intake's insert runs straight in libpq, yet the columns' UTC conversion still applies to its values."""
    intake_connections.run(lambda connection: connection.execute(text("SET TIME ZONE 'Asia/Tokyo'")))
    response = shopify.post_webhook("customers/create", customer_payload(9541), webhook_id="tz-9541",
                                    headers={"X-Shopify-Triggered-At": "2026-11-22T10:00:00+02:00"})
    assert response.status_code == 200
    db.session.rollback()
    row = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.webhook_id == "tz-9541")).scalar_one()
    assert row.triggered_at == dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
    assert abs(row.received_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_a_body_is_stored_exactly_as_sent(shopify: ShopifyActions, shop: Shop) -> None:
    """Sent as text to the prepared insert, a body with accents, emoji and escapes comes back byte for byte."""
    payload = {**customer_payload(9551), "first_name": "Zoë 🎉", "note": "tab\\t \"quoted\" \\u00e9 $1 %s"}
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = shopify.post_webhook("customers/create", body, webhook_id="exact-9551")
    assert response.status_code == 200
    db.session.rollback()
    row = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.webhook_id == "exact-9551")).scalar_one()
    assert row.payload is None or row.payload.encode() == body  # None once a worker processed it
    assert row.status in {"queued", "processed"}


def test_a_statement_error_is_raised_and_the_connection_keeps_serving(shopify: ShopifyActions, shop: Shop) -> None:
    """An error the server reports (here a value out of range) reaches the caller as the driver's own error class;
    the kept connection is not dropped for it and the next delivery is stored on it."""
    from referral_plugin.webhooks.queued import _driver_insert

    assert shopify.post_webhook("customers/create", customer_payload(9561)).status_code == 200
    kept = intake_backend()
    values = {"shop_domain": shop.shopify_domain, "topic": "customers/create", "webhook_id": "too-many-attempts",
              "event_id": None, "triggered_at": None, "api_version": None, "status": "queued",
              "attempts": 2**40, "received_at": dt.datetime.now(dt.UTC), "payload": "{}"}
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        intake_connections.run(lambda connection: _driver_insert(connection.dialect, values).run(connection, values))
    assert shopify.post_webhook("customers/create", customer_payload(9562)).status_code == 200
    assert intake_backend() == kept
    assert stored() == 2
