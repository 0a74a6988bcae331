"""Webhook intake: verify the HMAC on the raw body, record the delivery once, run the topic's handler.

Exactly-once rests on :class:`~referral_plugin.models.WebhookDelivery`'s unique constraints: the
delivery row is the first write of the transaction that also holds the handler's work, so a repeat
(same webhook id, or same event id for the topic) cannot insert a second row and changes nothing,
and a handler that raises takes its partial writes down with it. The failure is then recorded in a
short transaction of its own and answered with a 5xx so Shopify redelivers; a redelivery of a
``failed`` delivery claims the row with a conditional update and runs the handler again.

With ``WEBHOOK_PROCESSING=queued`` the view calls :mod:`referral_plugin.webhooks.queued` instead, which
shares the verification here and runs the same handlers in a job.

Nothing here touches ``flask.request``: the view hands over the raw bytes and the WSGI environ's headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from referral_plugin.errors import BadRequest
from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import MissingHeaders
from referral_plugin.extensions import db
from referral_plugin.json_input import loads_cleaned
from referral_plugin.json_input import surely_object
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.models import utcnow
from referral_plugin.referrals.customers import parse_datetime
from referral_plugin.security.shop_domain import names_another_shop
from referral_plugin.security.shop_domain import require_shop_domain
from referral_plugin.security.signatures import verify_webhook
from referral_plugin.webhooks.registry import Delivery
from referral_plugin.webhooks.registry import Handler
from referral_plugin.webhooks.registry import Payload
from referral_plugin.webhooks.registry import handler_for

logger = logging.getLogger(__name__)

PROCESSED = "processed"
DUPLICATE = "duplicate"
IGNORED = "ignored"
FAILED = "failed"

#: Header names without their ``X-Shopify-`` / ``Shopify-`` prefix, with the column width each fills.
_REQUIRED = {"topic": 128, "shop-domain": 255}
_OPTIONAL = {"webhook-id": 128, "event-id": 128, "api-version": 16, "triggered-at": 64}
#: Stands in for a missing webhook id: a digest of topic and body, so a repeat of the same bytes is a duplicate.
_BODY_DIGEST_PREFIX = "body-sha256:"
_ERROR_LIMIT = 2000
CUSTOMERS_REDACT = "customers/redact"


@dataclass(frozen=True)
class IntakeResult:
    """The outcome of one delivery: what to answer Shopify."""

    status: str
    delivery: Delivery

    @property
    def http_status(self) -> int:
        """Return 500 for a failed handler (so Shopify retries), 200 for everything else (``queued`` too)."""
        return 500 if self.status == FAILED else 200


#: A delivery's Shopify headers by lower-case name without prefix (``topic``, ``hmac-sha256``), from
#: :func:`shopify_headers`.
ShopifyHeaders = dict[str, str]


def shopify_headers(environ: Mapping[str, t.Any]) -> ShopifyHeaders:
    """Return a request's non-empty Shopify headers by name without prefix (``X-Shopify-`` or ``Shopify-``, any case).

    Read from the WSGI environ, where the server put them (``HTTP_X_SHOPIFY_TOPIC``): one pass over it without
    the per-name work of a header view, on every delivery. The first of two spellings of one name wins.
    """
    found: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_X_SHOPIFY_"):
            name = key[15:]
        elif key.startswith("HTTP_SHOPIFY_"):
            name = key[13:]
        else:
            continue
        value = value.strip()
        name = name.lower().replace("_", "-")
        if value and name not in found:
            found[name] = value
    return found


def parse_triggered_at(raw: str | None) -> dt.datetime | None:
    """Parse ``X-Shopify-Triggered-At`` (ISO 8601, usually with ``Z``) to aware UTC; None when unreadable.

    Read as the payloads' own timestamps are (:func:`~referral_plugin.referrals.customers.parse_datetime`).
    """
    return parse_datetime(raw.strip()) if raw else None


def _delivery_from(found: ShopifyHeaders, body: bytes) -> Delivery:
    """Read the delivery's metadata from the Shopify headers :func:`shopify_headers` found.

    Shopify always sends ``X-Shopify-Webhook-Id``; a signed delivery without one (a hand-made retry, a test
    harness) is still taken, identified by a digest of its topic and body, so only a byte-identical repeat of
    it is a duplicate: every handler treats a repeat of the same body as changing nothing anyway.

    :raise MissingHeaders: when the topic or shop domain is missing.
    :raise InvalidShopDomain: when the shop domain is not ``{handle}.myshopify.com``.
    :raise BadRequest: when a header is longer than any real Shopify value or holds control characters.
    """
    values = {name: found.get(name) for name in (*_REQUIRED, *_OPTIONAL)}
    missing = [f"X-Shopify-{name.title()}" for name in _REQUIRED if not values[name]]
    if missing:
        raise MissingHeaders("missing webhook headers: " + ", ".join(missing), details={"missing": missing})
    for name, limit in {**_REQUIRED, **_OPTIONAL}.items():
        value = values[name]
        if value is not None and len(value) > limit:
            raise BadRequest(f"X-Shopify-{name.title()} is too long", code="INVALID_HEADER")
        if value is not None and not value.isprintable():
            # No Shopify value holds control characters; PostgreSQL would refuse a NUL in the row.
            raise BadRequest(f"X-Shopify-{name.title()} holds control characters", code="INVALID_HEADER")
    topic = t.cast(str, values["topic"]).lower()
    webhook_id = values["webhook-id"]
    if webhook_id is None:
        webhook_id = _BODY_DIGEST_PREFIX + hashlib.sha256(topic.encode() + b"\0" + body).hexdigest()
    return Delivery(
        shop_domain=require_shop_domain(values["shop-domain"]),
        topic=topic,
        webhook_id=webhook_id,
        event_id=values["event-id"],
        triggered_at=parse_triggered_at(values["triggered-at"]),
        api_version=values["api-version"],
    )


def parse_payload(body: bytes) -> Payload:
    """Parse the body as a JSON object, with NUL and lone surrogates cleaned out of its strings.

    :raise BadRequest: when it is not UTF-8 JSON (nested too deeply counts) or not an object.
    """
    try:
        payload = loads_cleaned(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        raise BadRequest("webhook body is not valid JSON", code="MALFORMED_JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("webhook body must be a JSON object", code="MALFORMED_JSON")
    return payload


def check_payload(body: bytes) -> None:
    """Check the body as :func:`parse_payload` does, without keeping what it builds (a job parses it again).

    :raise BadRequest: when :func:`parse_payload` would.
    """
    if not surely_object(body):
        parse_payload(body)


def verify_delivery(body: bytes, found: ShopifyHeaders, secret: str, old_secret: str | None = None) -> Delivery:
    """Check the signature, then the headers, before anything reads the body; return the delivery they describe.

    :raise InvalidSignature: (401) when the HMAC header is missing or wrong.
    :raise BadRequest: (400) when the body is empty, or headers are missing or bad.
    """
    signature = found.get("hmac-sha256")
    if not signature:
        raise InvalidSignature("X-Shopify-Hmac-Sha256 is missing")
    if not body:
        raise BadRequest("webhook body is empty", code="MISSING_BODY")
    verify_webhook(body, signature, secret, old_secret)
    return _delivery_from(found, body)


def receive_webhook(body: bytes, found: ShopifyHeaders, *, secret: str,
                    old_secret: str | None = None) -> IntakeResult:
    """Verify, record and dispatch one webhook delivery; see the module docstring for the guarantees."""
    delivery = verify_delivery(body, found, secret, old_secret)
    return process_delivery(delivery, parse_payload(body))


def _insert_delivery(delivery: Delivery, status: str, error: str | None = None) -> None:
    """Insert the first row recorded for ``delivery`` (one Core statement; a repeat raises IntegrityError).

    Only the columns the inline intake fills are named, so it needs nothing the queued mode added.
    """
    db.session.execute(insert(WebhookDelivery).values(
        shop_domain=delivery.shop_domain,
        topic=delivery.topic,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        triggered_at=delivery.triggered_at,
        api_version=delivery.api_version,
        status=status,
        error=error,
        attempts=1,
        received_at=utcnow(),
        processed_at=utcnow(),
    ))


def process_delivery(delivery: Delivery, payload: Payload) -> IntakeResult:
    """Record ``delivery`` once and run its topic's handler in the same transaction."""
    handler = handler_for(delivery.topic)
    status = PROCESSED if handler is not None else IGNORED
    # Start a fresh transaction: the delivery insert must be its first write, so rolling back a
    # duplicate (or a failed handler) cannot discard anything else. A request's session is empty
    # here; whatever a caller sharing the session left pending (a test, a CLI) is kept, not lost.
    db.session.commit()
    try:
        _insert_delivery(delivery, status)
    except IntegrityError:
        db.session.rollback()
        if not _claim_failed_delivery(delivery, status):
            logger.info("duplicate webhook %s %s for %s", delivery.topic, delivery.webhook_id,
                        delivery.shop_domain)
            return IntakeResult(DUPLICATE, delivery)
    if handler is None:
        db.session.commit()
        return IntakeResult(IGNORED, delivery)
    try:
        run_handler(handler, delivery, payload)
        # Inside the try: a commit that fails (a constraint checked late, a lost connection) is a
        # failed delivery too, and Shopify must retry it.
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - any handler error must become a recorded, retryable failure
        db.session.rollback()
        logger.exception("webhook handler failed: %s %s for %s", delivery.topic, delivery.webhook_id,
                         delivery.shop_domain)
        _record_failure(delivery, exc)
        return IntakeResult(FAILED, delivery)
    return IntakeResult(PROCESSED, delivery)


def run_handler(handler: Handler, delivery: Delivery, payload: Payload) -> None:
    """Run ``handler`` on the delivery inside the caller's transaction (both intake modes come here).

    After a ``customers/redact``, stored deliveries still waiting for a worker that are about that
    customer are dropped too, or processing them would write the erased data back (queued mode).
    """
    handler(_find_shop(delivery.shop_domain), payload, delivery)
    # A body naming another shop was a no-op for the handler (a replay under this shop's header): so here.
    if delivery.topic == CUSTOMERS_REDACT and not names_another_shop(payload.get("shop_domain"), delivery.shop_domain):
        from referral_plugin.webhooks.queued import forget_customer_deliveries

        forget_customer_deliveries(delivery.shop_domain, payload)


def error_text(exc: BaseException) -> str:
    """Return the failure as stored on the delivery row: type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]


def _matching_delivery_filter(delivery: Delivery) -> t.Any:
    """Match the row a repeat of ``delivery`` collides with: same webhook id, or same topic event."""
    same_webhook = WebhookDelivery.webhook_id == delivery.webhook_id
    if delivery.event_id is None:
        return same_webhook
    return or_(same_webhook, (WebhookDelivery.topic == delivery.topic)
               & (WebhookDelivery.event_id == delivery.event_id))


def _update_failed_row(delivery: Delivery, **values: t.Any) -> bool:
    """Bump this delivery's ``failed`` row (attempts, processed_at, ``values``); False when there is none."""
    result = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.shop_domain == delivery.shop_domain,
            _matching_delivery_filter(delivery),
            WebhookDelivery.status == FAILED,
        )
        .values(attempts=WebhookDelivery.attempts + 1, processed_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(t.cast(t.Any, result).rowcount)


def _claim_failed_delivery(delivery: Delivery, status: str) -> bool:
    """Take over an earlier ``failed`` row for this delivery; False when it was processed or ignored.

    The conditional update is the lock: of two concurrent redeliveries only one sees ``failed``.
    """
    # A body stored by the queued intake goes too: this request processes the delivery now.
    if _update_failed_row(delivery, status=status, error=None, payload=None):
        return True
    db.session.rollback()
    return False


def _record_failure(delivery: Delivery, exc: Exception) -> None:
    """Record a handler failure in its own short transaction (the handler's work is already rolled back)."""
    error = error_text(exc)
    try:
        if not _update_failed_row(delivery, error=error):
            _insert_delivery(delivery, FAILED, error)
        db.session.commit()
    except IntegrityError:
        # A concurrent repeat of this delivery succeeded meanwhile; its row stands.
        db.session.rollback()


def _find_shop(domain: str) -> Shop | None:
    """Return the shop with this domain, or None before install or after redaction."""
    return db.session.execute(select(Shop).where(Shop.shopify_domain == domain)).scalar_one_or_none()
