"""Request ids, structured logs, /metrics and /readyz."""

from __future__ import annotations

import io
import json
import logging
import typing as t
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY

from referral_plugin import create_app
from referral_plugin import observability
from referral_plugin.cli import init_db
from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from referral_plugin.webhooks import registry
from tests.conftest import app_with_tables
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

METRICS_TOKEN = "metrics-test-token"


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Turn /metrics on with a token."""
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN}


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _metrics(client: FlaskClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_request_id_is_generated_and_echoed(client: FlaskClient) -> None:
    """A request without an id gets a fresh one in the response; two requests get two ids."""
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert first and second and first != second


def test_incoming_request_id_is_kept_when_well_formed(client: FlaskClient) -> None:
    """The load balancer's id is echoed back, so one id follows the request through every hop."""
    assert client.get("/healthz", headers={"X-Request-Id": "lb-4f2a:9"}).headers["X-Request-Id"] == "lb-4f2a:9"


def test_malformed_request_id_is_replaced(client: FlaskClient) -> None:
    """An id carrying characters that could forge log lines or headers is not trusted."""
    rid = client.get("/healthz", headers={"X-Request-Id": "bad id\tinjected"}).headers["X-Request-Id"]
    assert rid != "bad id\tinjected"
    assert rid.isalnum()


def test_metrics_require_the_bearer_token(client: FlaskClient) -> None:
    """Without the token /metrics is 401; with it, Prometheus text with the app's metric families."""
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    body = _metrics(client)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.headers["Content-Type"] == CONTENT_TYPE_LATEST  # the exposition format's type, charset once
    for family in (
        "referral_http_request_duration_seconds",
        "referral_webhooks_total",
        "referral_webhook_duration_seconds",
        "referral_ledger_entries_total",
        "referral_job_queue_depth",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in body


def test_metrics_are_hidden_without_a_token_outside_demo_mode(app_config: dict[str, t.Any]) -> None:
    """An operator who set no METRICS_TOKEN does not publish metrics by accident."""
    app = create_app({**app_config, "METRICS_TOKEN": None})
    assert app.test_client().get("/metrics").status_code == 404


def test_rejected_webhook_is_counted_without_trusting_its_topic(shopify: ShopifyActions) -> None:
    """A webhook with a bad signature counts as invalid_signature under topic ``unverified``."""
    before = _sample("referral_webhooks_total", topic="unverified", outcome="invalid_signature")
    response = shopify.post_webhook("orders/paid", load_payload("orders_paid"), valid=False)
    assert response.status_code == 401
    assert _sample("referral_webhooks_total", topic="unverified", outcome="invalid_signature") == before + 1


def test_http_latency_is_observed_per_route(client: FlaskClient) -> None:
    """Every request lands in the latency histogram under its route pattern, not its raw path."""
    before = _sample("referral_http_request_duration_seconds_count", method="GET", route="/healthz", status="2xx")
    client.get("/healthz")
    after = _sample("referral_http_request_duration_seconds_count", method="GET", route="/healthz", status="2xx")
    assert after == before + 1


def _ledger_row(shop: Shop, key: str) -> LedgerEntry:
    return LedgerEntry(
        shop_id=shop.id,
        entry_type=EntryType.GRANT,
        side=Side.ADVOCATE,
        reward_kind=RewardKind.POINTS,
        points=100,
        idempotency_key=key,
    )


def test_committed_ledger_rows_are_counted_and_rolled_back_ones_are_not(app: Flask, shop: Shop) -> None:
    """Reward outcomes count what was committed: a grant that rolled back never happened."""
    labels = {"entry_type": "grant", "reward_kind": "points", "side": "advocate"}
    before = _sample("referral_ledger_entries_total", **labels)
    db.session.add(_ledger_row(shop, "grant:metrics-rollback"))
    db.session.flush()
    db.session.rollback()
    assert _sample("referral_ledger_entries_total", **labels) == before
    db.session.add(_ledger_row(shop, "grant:metrics-commit"))
    db.session.commit()
    assert _sample("referral_ledger_entries_total", **labels) == before + 1


@pytest.fixture
def json_app(app_config: dict[str, t.Any]) -> Iterator[Flask]:
    """Return an app that logs JSON, with its tables; its connections are closed afterwards."""
    with app_with_tables({**app_config, "LOG_FORMAT": "json"}) as app:
        yield app


def _json_log_lines(app: Flask) -> io.StringIO:
    """Point the app's log handler at a buffer and return it."""
    handler = next(h for h in logging.getLogger("referral_plugin").handlers if hasattr(h, "setStream"))
    stream = io.StringIO()
    t.cast(logging.StreamHandler[t.Any], handler).setStream(stream)
    return stream


def _request_lines(stream: io.StringIO) -> list[dict[str, t.Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "referral_plugin.requests"]


def test_json_logs_carry_request_and_webhook_fields(json_app: Flask) -> None:
    """With LOG_FORMAT=json a line a handler writes is a JSON object with the request id, shop, topic, webhook id."""
    stream = _json_log_lines(json_app)
    topic = "referral-plugin-test/logs"

    def handler(shop: Shop | None, payload: dict[str, t.Any], delivery: t.Any) -> None:
        logging.getLogger("referral_plugin.webhooks.intake").warning("handler failed", extra={"attempt": 2})

    registry.register(topic, handler)
    try:
        shopify = ShopifyActions(json_app.test_client(), json_app.config["SHOPIFY_API_SECRET"])
        shopify.post_webhook(topic, {"id": 1}, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                             headers={"X-Request-Id": "req-77"})
    finally:
        registry._HANDLERS.pop(topic, None)
    line = next(json.loads(line) for line in stream.getvalue().splitlines() if "handler failed" in line)
    assert line["message"] == "handler failed"
    assert line["level"] == "warning"
    assert line["request_id"] == "req-77"
    assert line["shop"] == "test-shop.myshopify.com"
    assert line["topic"] == topic
    assert line["webhook_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert line["attempt"] == 2


def test_every_request_is_logged_once_with_what_happened(json_app: Flask) -> None:
    """One line per answered request: method, path, status, duration and request id; probes stay out of INFO."""
    stream = _json_log_lines(json_app)
    client = json_app.test_client()
    client.get("/c/NO-SUCH-CODE%0Aforged", headers={"X-Request-Id": "req-1"})
    client.get("/healthz")
    [line] = _request_lines(stream)
    assert line["request_id"] == "req-1"
    assert (line["method"], line["status"], line["level"]) == ("GET", 404, "info")
    assert line["path"] == "/c/NO-SUCH-CODE_forged"  # a newline in the path cannot start a forged line
    assert isinstance(line["duration_ms"], float)


def test_a_webhook_is_logged_once_with_its_topic_shop_id_and_outcome(json_app: Flask) -> None:
    """The webhook's line carries what an operator searches by, and how the delivery ended."""
    stream = _json_log_lines(json_app)
    shopify = ShopifyActions(json_app.test_client(), json_app.config["SHOPIFY_API_SECRET"])
    shopify.post_webhook("customers/create", load_payload("customers_create"), webhook_id="wh-log-1")
    [line] = _request_lines(stream)
    assert line["message"].startswith("webhook customers/create processed in ")
    assert (line["topic"], line["webhook_id"], line["outcome"], line["status"]) == (
        "customers/create", "wh-log-1", "processed", 200)
    assert line["shop"] == "test-shop.myshopify.com"


def test_readyz_is_unavailable_until_migrations_ran(client: FlaskClient) -> None:
    """A schema made without the migrations (no alembic revision) is not ready for traffic."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "ok"
    assert response.get_json()["checks"]["migrations"] == "behind"


# migrations/env.py (the lead's) still calls Flask-SQLAlchemy's deprecated get_engine.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_readyz_reports_migrations_at_head_after_init_db(app_config: dict[str, t.Any], tmp_path: t.Any) -> None:
    """After ``init-db`` on an empty database the migrations check passes."""
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.sqlite'}"})
    with app.app_context():
        init_db()
        checks = observability.check_readiness()
        db.engine.dispose()
    assert checks["database"] == "ok"
    assert checks["migrations"] == "ok"


def test_readyz_reports_an_unreachable_database(app_config: dict[str, t.Any], tmp_path: t.Any) -> None:
    """A database that cannot be opened makes /readyz answer 503, not raise."""
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unreachable"


def test_bench_baseline_route_is_off_unless_enabled(client: FlaskClient) -> None:
    """The benchmark's baseline route does not exist in a normal app."""
    assert client.post(observability.BENCH_BASELINE_PATH, data=b"{}").status_code == 404


def test_bench_baseline_route_only_verifies_the_hmac(app_config: dict[str, t.Any]) -> None:
    """With BENCH_BASELINE_ROUTE on, a signed body gets 200 and a badly signed one 401, nothing stored."""
    from tests.shopify_actions import webhook_hmac

    client = create_app({**app_config, "BENCH_BASELINE_ROUTE": True}).test_client()
    body = b'{"id": 1}'
    good = client.post(
        observability.BENCH_BASELINE_PATH, data=body, headers={"X-Shopify-Hmac-Sha256": webhook_hmac(body)}
    )
    bad = client.post(observability.BENCH_BASELINE_PATH, data=body, headers={"X-Shopify-Hmac-Sha256": "AAAA"})
    assert good.status_code == 200
    assert bad.status_code == 401
