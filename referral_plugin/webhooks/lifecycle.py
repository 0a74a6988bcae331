"""The app's own life cycle in a shop: ``app/uninstalled``.

On uninstall the shop's tokens go at once (they are dead anyway) and its API keys stop working;
the program's data stays until ``shop/redact`` (48 hours later), so a merchant who reinstalls finds
everything as they left it. ``installs.install_shop`` clears the flags on reinstall.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from referral_plugin.extensions import db
from referral_plugin.models import ApiKey
from referral_plugin.models import AuditEvent
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.security.shop_domain import names_another_shop
from referral_plugin.webhooks.registry import Delivery
from referral_plugin.webhooks.registry import Payload

logger = logging.getLogger(__name__)


def handle_app_uninstalled(shop: Shop | None, payload: Payload, delivery: Delivery) -> None:
    """Forget the shop's tokens, mark it uninstalled and revoke its API keys; keep its data.

    An uninstall that fired before the shop's latest install is a late retry of an old delivery
    (Shopify retries for hours): applying it would kill the token of a merchant who reinstalled.
    """
    if shop is None:
        return
    if names_another_shop(payload.get("myshopify_domain"), shop.shopify_domain):
        # The hmac covers the body, not the shop header: a body naming another shop is a replay, not this shop's.
        logger.warning("ignoring app/uninstalled for %s: its body names another shop", shop.shopify_domain)
        return
    # Lock and re-read the row: an install racing this delivery commits first or waits (see installs._install).
    db.session.refresh(shop, with_for_update=True)
    if delivery.triggered_at and shop.installed_at and delivery.triggered_at < shop.installed_at:
        logger.info("ignoring app/uninstalled for %s triggered before the latest install", shop.shopify_domain)
        return
    now = utcnow()
    shop.access_token_ciphertext = None
    shop.access_token_expires_at = None
    shop.refresh_token_ciphertext = None
    shop.refresh_token_expires_at = None
    first_time = shop.uninstalled_at is None
    if first_time:
        shop.uninstalled_at = now
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.shop_id == shop.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if first_time:
        db.session.add(AuditEvent(
            shop_id=shop.id,
            actor="shopify",
            action="app_uninstalled",
            subject_type="shop",
            subject_id=shop.id,
            details={"webhook_id": delivery.webhook_id},
        ))
    db.session.flush()
