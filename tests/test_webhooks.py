"""POST /webhooks: HMAC on the raw bytes, header checks, exactly-once recording, dispatch and retries."""

from __future__ import annotations

import json
import threading
import typing as t
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.errors import InvalidSignature
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.security.signatures import compute_webhook_hmac
from referral_plugin.security.signatures import verify_webhook
from referral_plugin.webhooks import registry
from referral_plugin.webhooks.intake import parse_triggered_at
from referral_plugin.webhooks.registry import Delivery
from tests.conftest import run_at_once
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import raw_payload
from tests.shopify_actions import webhook_hmac

TEST_TOPIC = "referral-plugin-test/marker"
UNKNOWN_TOPIC = "referral-plugin-test/unknown"


def _count(model: t.Any) -> int:
    return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def _deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def _headers(body: bytes, *, topic: str = UNKNOWN_TOPIC, secret: str = "hush", **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-01T12:00:00.000000Z",
    }
    headers.update(extra)
    return headers


class MarkerHandler:
    """A test-only handler that writes an audit row, and raises while ``failures`` is above zero."""

    def __init__(self) -> None:
        self.calls: list[Delivery] = []
        self.failures = 0

    def __call__(self, shop: Shop | None, payload: registry.Payload, delivery: Delivery) -> None:
        self.calls.append(delivery)
        assert shop is not None
        db.session.add(AuditEvent(shop_id=shop.id, actor="test", action="marker",
                                  details={"n": payload.get("n")}))
        db.session.flush()
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("handler exploded after writing")


@pytest.fixture
def marker(app: Flask) -> Iterator[MarkerHandler]:
    """Register a test-only handler for TEST_TOPIC, and remove it afterwards."""
    handler = MarkerHandler()
    registry.register(TEST_TOPIC, handler)
    yield handler
    registry._HANDLERS.pop(TEST_TOPIC, None)


# --- Shopify's published HMAC vectors (reference §3.2) ---------------------------------------

@pytest.mark.parametrize(
    ("secret", "body", "expected"),
    [
        ("test_secret_key", b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="),
        ("secret", b"foo=anything", "yCGX/RrK4fcuNtr3ztk5tQGsOBjcAzHpGLdMUrbV8yI="),
        ("old_secret", b"foo=anything", "XqRcjrSv57VACn6apEO9znyu/wkN1VC7QxdSPwK3Hzs="),
    ],
)
def test_published_webhook_hmac_vectors(secret: str, body: bytes, expected: str) -> None:
    """The webhook HMAC equals the digests published by Shopify's JS and Ruby libraries."""
    assert compute_webhook_hmac(body, secret) == expected
    verify_webhook(body, expected, secret)


def test_old_secret_is_accepted_during_rotation() -> None:
    """A body signed with the previous secret verifies while SHOPIFY_API_SECRET_OLD is set, and not after."""
    signed_with_old = "XqRcjrSv57VACn6apEO9znyu/wkN1VC7QxdSPwK3Hzs="
    verify_webhook(b"foo=anything", signed_with_old, "secret", old_secret="old_secret")
    with pytest.raises(InvalidSignature):
        verify_webhook(b"foo=anything", signed_with_old, "secret")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders_paid", "vzceRpjYyqJGenPaDJzDMKUPemGJ6t+Tkovs5++dx2Y="),
        ("customers_create", "pttdiaoFM5sLP22ttY8IpgBi8jqi9ihcvo7sv9L4NP8="),
        ("customers_redact", "gMgpnNqCQMYwuTRRWyebW11zQH4MUCOZsK9VkPK2TFw="),
    ],
)
def test_sample_payload_digests_are_accepted_on_the_raw_bytes(client: t.Any, name: str, expected: str) -> None:
    """The exact bytes of each sample payload, with its published digest, are accepted and recorded."""
    body = raw_payload(name)
    headers = _headers(body)
    headers["X-Shopify-Hmac-Sha256"] = expected
    response = client.post("/webhooks", data=body, headers=headers, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"status": "ignored"}
    assert [d.status for d in _deliveries()] == ["ignored"]


def test_reformatted_body_fails_verification(client: t.Any) -> None:
    """Re-serializing the JSON changes the bytes, so the original digest no longer verifies: 401."""
    body = json.dumps(json.loads(raw_payload("customers_create"))).encode()
    headers = _headers(body)
    headers["X-Shopify-Hmac-Sha256"] = "pttdiaoFM5sLP22ttY8IpgBi8jqi9ihcvo7sv9L4NP8="
    response = client.post("/webhooks", data=body, headers=headers, content_type="application/json")
    assert response.status_code == 401
    assert _deliveries() == []


def test_old_secret_is_accepted_by_the_route(app_config: dict[str, t.Any]) -> None:
    """With SHOPIFY_API_SECRET_OLD set, a delivery signed with the old secret is accepted."""
    from referral_plugin import create_app

    app_config.update({"SHOPIFY_API_SECRET": "rotated-secret", "SHOPIFY_API_SECRET_OLD": "hush"})
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        try:
            body = raw_payload("customers_redact")
            response = app.test_client().post("/webhooks", data=body, headers=_headers(body))
            assert response.status_code == 200
            body2 = b'{"n": 1}'
            response = app.test_client().post("/webhooks", data=body2,
                                              headers=_headers(body2, secret="rotated-secret"))
            assert response.status_code == 200
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


# --- Rejections ------------------------------------------------------------------------------

def test_missing_hmac_is_401_and_nothing_is_stored(client: t.Any) -> None:
    """A delivery without X-Shopify-Hmac-Sha256 is 401 and leaves no row."""
    body = b'{"id": 1}'
    headers = _headers(body)
    del headers["X-Shopify-Hmac-Sha256"]
    response = client.post("/webhooks", data=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "INVALID_SIGNATURE"
    assert _deliveries() == []


def test_bad_hmac_is_401_and_nothing_is_stored(shopify: ShopifyActions, marker: MarkerHandler) -> None:
    """A delivery signed with the wrong secret is 401; no delivery row, no handler call."""
    response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, valid=False)
    assert response.status_code == 401
    assert _deliveries() == []
    assert marker.calls == []


def test_hmac_of_another_body_is_401(client: t.Any) -> None:
    """A valid signature of different bytes does not authenticate this body."""
    headers = _headers(b'{"id": 1}')
    response = client.post("/webhooks", data=b'{"id": 2}', headers=headers)
    assert response.status_code == 401
    assert _deliveries() == []


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "X-Shopify-Shop-Domain"])
def test_missing_headers_are_400(client: t.Any, missing: str) -> None:
    """A signed delivery without its topic or shop domain is 400 MISSING_HEADERS."""
    body = b'{"id": 1}'
    headers = _headers(body)
    del headers[missing]
    response = client.post("/webhooks", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "MISSING_HEADERS"
    assert _deliveries() == []


def test_a_delivery_without_a_webhook_id_is_taken_and_its_byte_identical_repeat_is_a_duplicate(client: t.Any) -> None:
    """No X-Shopify-Webhook-Id: 200; the same bytes again are a duplicate, other bytes a new delivery."""
    first, other = b'{"id": 1}', b'{"id": 2}'

    def post(body: bytes) -> t.Any:
        headers = _headers(body)
        del headers["X-Shopify-Webhook-Id"]
        return client.post("/webhooks", data=body, headers=headers)

    assert (post(first).status_code, post(first).get_json()) == (200, {"status": "duplicate"})
    assert post(other).get_json() == {"status": "ignored"}
    assert [row.webhook_id.startswith("body-sha256:") for row in _deliveries()] == [True, True]


def test_unprefixed_and_odd_case_header_names_are_read(client: t.Any) -> None:
    """Shopify's newer un-prefixed ``shopify-*`` names, in any case, work like the ``X-Shopify-*`` ones."""
    body = b'{"id": 7}'
    headers = {
        "shopify-topic": UNKNOWN_TOPIC,
        "SHOPIFY-HMAC-SHA256": webhook_hmac(body, "hush"),
        "Shopify-Shop-Domain": SHOP,
        "x-SHOPIFY-webhook-ID": "odd-case-1",
    }
    response = client.post("/webhooks", data=body, headers=headers)
    assert response.get_json() == {"status": "ignored"}
    [row] = _deliveries()
    assert (row.topic, row.shop_domain, row.webhook_id) == (UNKNOWN_TOPIC, SHOP, "odd-case-1")


@pytest.mark.parametrize("domain", ["evil.example.com", "test-shop.myshopify.com.evil.io", "a_b.myshopify.com"])
def test_invalid_shop_domain_is_400(client: t.Any, domain: str) -> None:
    """A shop domain header that is not {handle}.myshopify.com is 400."""
    body = b'{"id": 1}'
    response = client.post("/webhooks", data=body,
                           headers=_headers(body, **{"X-Shopify-Shop-Domain": domain}))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_SHOP_DOMAIN"
    assert _deliveries() == []


def test_empty_body_is_400(client: t.Any) -> None:
    """A delivery with an empty body is 400, even when its HMAC is valid."""
    response = client.post("/webhooks", data=b"", headers=_headers(b""))
    assert response.status_code == 400
    assert _deliveries() == []


@pytest.mark.parametrize("body", [b'{"id": 1', b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}"])
def test_malformed_json_with_valid_hmac_is_400(client: t.Any, body: bytes) -> None:
    """A correctly signed body that is not a JSON object is 400 MALFORMED_JSON and stores nothing."""
    response = client.post("/webhooks", data=body, headers=_headers(body))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "MALFORMED_JSON"
    assert _deliveries() == []


def test_get_is_not_allowed(client: t.Any) -> None:
    """Only POST is accepted."""
    assert client.get("/webhooks").status_code == 405


# --- Headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["lower", "unprefixed"])
def test_headers_are_read_case_insensitively_and_unprefixed(client: t.Any, marker: MarkerHandler, shop: Shop,
                                                            style: str) -> None:
    """Lower-case x-shopify-* headers (HTTP/2) and the un-prefixed shopify-* forms both work."""
    body = b'{"n": 7}'
    headers = _headers(body, topic=TEST_TOPIC, **{"X-Shopify-Event-Id": "evt-1"})
    if style == "lower":
        headers = {k.lower(): v for k, v in headers.items()}
    else:
        headers = {k.lower().removeprefix("x-"): v for k, v in headers.items()}
    response = client.post("/webhooks", data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"status": "processed"}
    [delivery] = _deliveries()
    assert (delivery.shop_domain, delivery.topic, delivery.event_id, delivery.api_version) == (
        SHOP, TEST_TOPIC, "evt-1", "2026-10")
    assert delivery.triggered_at is not None and delivery.triggered_at.isoformat() == "2026-11-01T12:00:00+00:00"
    assert marker.calls[0].webhook_id == headers.get("x-shopify-webhook-id", headers.get("shopify-webhook-id"))


def test_triggered_at_parsing() -> None:
    """X-Shopify-Triggered-At is read as aware UTC; garbage is None rather than an error."""
    parsed = parse_triggered_at("2025-07-10T16:15:47.000000Z")
    assert parsed is not None and parsed.isoformat() == "2025-07-10T16:15:47+00:00"
    assert parse_triggered_at("yesterday") is None
    assert parse_triggered_at(None) is None


# --- Recording, dedupe, dispatch -----------------------------------------------------------------

def test_delivery_is_recorded_and_dispatched(shopify: ShopifyActions, marker: MarkerHandler, shop: Shop) -> None:
    """A valid delivery is recorded (shop, topic, ids, api version) and its handler gets the shop and payload."""
    response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-1", event_id="ev-1")
    assert response.status_code == 200
    assert response.get_json() == {"status": "processed"}
    [delivery] = _deliveries()
    assert (delivery.webhook_id, delivery.event_id, delivery.status, delivery.attempts) == (
        "wh-1", "ev-1", "processed", 1)
    assert _count(AuditEvent) == 1
    assert marker.calls[0].shop_domain == SHOP


def test_unknown_topic_is_200_and_recorded_as_ignored(shopify: ShopifyActions) -> None:
    """A topic without a handler is answered 200 and recorded as ignored."""
    response = shopify.post_webhook(UNKNOWN_TOPIC, {"id": 1})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ignored"}
    assert [d.status for d in _deliveries()] == ["ignored"]


def test_handler_gets_none_for_an_unknown_shop(shopify: ShopifyActions, app: Flask) -> None:
    """A delivery for a shop that is not installed reaches the handler with shop None."""
    seen: list[Shop | None] = []
    registry.register(TEST_TOPIC, lambda shop, payload, delivery: seen.append(shop))
    try:
        response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, shop="nobody.myshopify.com")
    finally:
        registry._HANDLERS.pop(TEST_TOPIC, None)
    assert response.status_code == 200
    assert seen == [None]


def test_same_webhook_id_is_a_duplicate(shopify: ShopifyActions, marker: MarkerHandler, shop: Shop) -> None:
    """A redelivery with the same webhook id is 200 duplicate and changes nothing."""
    first = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-dup")
    second = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-dup")
    assert first.get_json() == {"status": "processed"}
    assert second.status_code == 200
    assert second.get_json() == {"status": "duplicate"}
    assert len(_deliveries()) == 1
    assert _count(AuditEvent) == 1
    assert len(marker.calls) == 1


def test_same_event_id_with_new_webhook_id_is_a_duplicate(shopify: ShopifyActions, marker: MarkerHandler,
                                                          shop: Shop) -> None:
    """Two deliveries of one event (same event id, new webhook id) for the topic run the handler once."""
    first = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-a", event_id="evt-same")
    second = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-b", event_id="evt-same")
    assert first.get_json() == {"status": "processed"}
    assert second.status_code == 200
    assert second.get_json() == {"status": "duplicate"}
    assert len(_deliveries()) == 1
    assert len(marker.calls) == 1


def test_same_event_id_on_another_topic_is_processed(shopify: ShopifyActions, marker: MarkerHandler,
                                                     shop: Shop) -> None:
    """One merchant action fans out to several topics with one event id; each topic is processed."""
    shopify.post_webhook(TEST_TOPIC, {"n": 1}, event_id="evt-fan")
    other = shopify.post_webhook(UNKNOWN_TOPIC, {"n": 1}, event_id="evt-fan")
    assert other.get_json() == {"status": "ignored"}
    assert len(_deliveries()) == 2


def test_same_webhook_id_in_another_shop_is_not_a_duplicate(shopify: ShopifyActions, marker: MarkerHandler,
                                                            shop: Shop) -> None:
    """Webhook ids are deduplicated per shop."""
    from tests.conftest import make_shop

    make_shop("other-shop.myshopify.com")
    shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-x")
    response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-x", shop="other-shop.myshopify.com")
    assert response.get_json() == {"status": "processed"}
    assert len(marker.calls) == 2


def test_handler_failure_is_500_recorded_and_rolled_back(shopify: ShopifyActions, marker: MarkerHandler,
                                                         shop: Shop) -> None:
    """A handler that raises after writing leaves no partial rows, a failed delivery with the error, and a 500."""
    marker.failures = 1
    response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-fail", event_id="evt-fail")
    assert response.status_code == 500
    assert response.get_json() == {"status": "failed"}
    [delivery] = _deliveries()
    assert delivery.status == "failed"
    assert delivery.attempts == 1
    assert delivery.error is not None and "handler exploded" in delivery.error
    assert _count(AuditEvent) == 0


def test_redelivery_of_a_failed_delivery_runs_the_handler_again(shopify: ShopifyActions, marker: MarkerHandler,
                                                                shop: Shop) -> None:
    """Shopify's retry of a failed delivery (same webhook id) runs the handler again and succeeds once."""
    marker.failures = 2
    assert shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-r").status_code == 500
    assert shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-r").status_code == 500
    [delivery] = _deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    retried = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-r")
    assert retried.status_code == 200
    assert retried.get_json() == {"status": "processed"}
    [delivery] = _deliveries()
    assert (delivery.status, delivery.attempts, delivery.error) == ("processed", 3, None)
    assert _count(AuditEvent) == 1
    again = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-r")
    assert again.get_json() == {"status": "duplicate"}
    assert _count(AuditEvent) == 1


def test_failed_event_is_retried_under_a_new_webhook_id(shopify: ShopifyActions, marker: MarkerHandler,
                                                        shop: Shop) -> None:
    """A failed event redelivered with a new webhook id (same event id) is processed, still one row."""
    marker.failures = 1
    assert shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-1", event_id="evt-r").status_code == 500
    response = shopify.post_webhook(TEST_TOPIC, {"n": 1}, webhook_id="wh-2", event_id="evt-r")
    assert response.get_json() == {"status": "processed"}
    assert [(d.status, d.attempts) for d in _deliveries()] == [("processed", 2)]
    assert _count(AuditEvent) == 1


def _post_concurrently(app: Flask, bodies_and_headers: list[tuple[bytes, dict[str, str]]]) -> list[t.Any]:
    barrier = threading.Barrier(len(bodies_and_headers))
    results: list[t.Any] = [None] * len(bodies_and_headers)

    def post(index: int, body: bytes, headers: dict[str, str]) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/webhooks", data=body, headers=headers)
        results[index] = (response.status_code, response.get_json())

    run_at_once(post, [(i, b, h) for i, (b, h) in enumerate(bodies_and_headers)])
    return results


def test_concurrent_identical_deliveries_are_processed_once(app: Flask, marker: MarkerHandler, shop: Shop) -> None:
    """Eight simultaneous copies of one delivery (file SQLite) record one row and run the handler once."""
    body = b'{"n": 1}'
    headers = _headers(body, topic=TEST_TOPIC, **{"X-Shopify-Webhook-Id": "wh-race"})
    results = _post_concurrently(app, [(body, headers)] * 8)
    assert all(code == 200 for code, _ in results), results
    statuses = sorted(payload["status"] for _, payload in results)
    assert statuses == ["duplicate"] * 7 + ["processed"]
    assert [(d.status, d.webhook_id) for d in _deliveries()] == [("processed", "wh-race")]
    assert _count(AuditEvent) == 1


def test_concurrent_deliveries_of_one_event_are_processed_once(app: Flask, marker: MarkerHandler,
                                                               shop: Shop) -> None:
    """Eight simultaneous deliveries of one event under distinct webhook ids run the handler once."""
    body = b'{"n": 1}'
    copies = [(body, _headers(body, topic=TEST_TOPIC, **{"X-Shopify-Event-Id": "evt-race"})) for _ in range(8)]
    results = _post_concurrently(app, copies)
    assert sorted(payload["status"] for _, payload in results) == ["duplicate"] * 7 + ["processed"]
    assert len(_deliveries()) == 1
    assert _count(AuditEvent) == 1


def test_sub_paths_reach_the_same_intake(client: t.Any) -> None:
    """/webhooks/compliance (a separate TOML subscription URI) verifies and records like /webhooks."""
    body = raw_payload("customers_redact")
    assert client.post("/webhooks/compliance", data=body, headers=_headers(body)).status_code == 200
    assert client.post("/webhooks/compliance", data=body,
                       headers=_headers(body, secret="wrong")).status_code == 401
    assert len(_deliveries()) == 1


def test_oversized_header_is_400(client: t.Any) -> None:
    """A webhook id longer than any Shopify sends is a 400, not a database error."""
    body = b'{"id": 1}'
    response = client.post("/webhooks", data=body, headers=_headers(body, **{"X-Shopify-Webhook-Id": "x" * 500}))
    assert response.status_code == 400
    assert _deliveries() == []
