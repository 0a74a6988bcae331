"""Install and reinstall shops, keep their offline tokens (encrypted) fresh, and mark them revoked."""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from referral_plugin.errors import ShopifyAPIError
from referral_plugin.errors import ShopifyUnauthorized
from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.security import crypto
from referral_plugin.security.shop_domain import require_shop_domain
from referral_plugin.shopify import oauth

logger = logging.getLogger(__name__)

#: Refresh an expiring token this long before Shopify would reject it.
REFRESH_MARGIN = dt.timedelta(minutes=5)


def get_shop(domain: str) -> Shop | None:
    """Return the shop with this canonical domain, installed or not."""
    return db.session.execute(select(Shop).where(Shop.shopify_domain == domain)).scalar_one_or_none()


def _expiry(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)


def store_tokens(
    shop: Shop, access_token: str, scope: str | None, expires_in: int | None = None,
    refresh_token: str | None = None, refresh_token_expires_in: int | None = None,
    *, now: dt.datetime | None = None,
) -> None:
    """Put freshly granted tokens on ``shop``, encrypted; the caller commits."""
    now = now or utcnow()
    shop.access_token_ciphertext = crypto.encrypt(access_token)
    shop.access_token_expires_at = _expiry(now, expires_in)
    shop.refresh_token_ciphertext = crypto.encrypt(refresh_token) if refresh_token else None
    shop.refresh_token_expires_at = _expiry(now, refresh_token_expires_in) if refresh_token else None
    if scope is not None:
        shop.scopes = scope
    shop.token_revoked_at = None


def install_shop(
    domain: str, access_token: str, scope: str, expires_in: int | None = None,
    refresh_token: str | None = None, refresh_token_expires_in: int | None = None,
) -> Shop:
    """Create or reinstall a shop with its new offline token, give it a default campaign, and commit."""
    domain = require_shop_domain(domain)
    for attempt in (1, 2):
        try:
            return _install(domain, access_token, scope, expires_in, refresh_token, refresh_token_expires_in)
        except IntegrityError:
            # Two installs raced (OAuth callback and a token exchange): the second one updates the first's row.
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _install(
    domain: str, access_token: str, scope: str, expires_in: int | None,
    refresh_token: str | None, refresh_token_expires_in: int | None,
) -> Shop:
    now = utcnow()
    # Lock the row (PostgreSQL): an app/uninstalled racing this install waits, or is waited for, and the
    # loser then sees the winner's state; without it the shop could end with a token *and* uninstalled_at.
    shop = db.session.execute(
        select(Shop).where(Shop.shopify_domain == domain).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if shop is None:
        shop = Shop(shopify_domain=domain, name=domain.split(".", 1)[0], installed_at=now)
        db.session.add(shop)
    # Every grant is an install Shopify vouches for now, even when the shop still looked installed here (its
    # app/uninstalled not delivered yet): an uninstall that fired before this moment must not kill this token.
    shop.installed_at = now
    shop.uninstalled_at = None
    store_tokens(shop, access_token, scope, expires_in, refresh_token, refresh_token_expires_in, now=now)
    db.session.flush()

    from referral_plugin.referrals.campaigns import ensure_default_campaign

    ensure_default_campaign(shop)
    db.session.commit()
    logger.info("installed %s (scopes %s)", domain, scope)
    missing = missing_scopes(scope, str(current_app.config["SHOPIFY_SCOPES"]))
    if missing:
        # Granted scopes may differ from the requested ones; features needing them fail with a clear API error.
        logger.warning("%s did not grant %s", domain, ", ".join(missing))
    return shop


def missing_scopes(granted: str, requested: str) -> list[str]:
    """Return the requested scopes Shopify did not grant (``write_X`` implies ``read_X``)."""
    have = {scope.strip() for scope in granted.split(",") if scope.strip()}
    have |= {"read_" + scope.removeprefix("write_") for scope in have if scope.startswith("write_")}
    return [scope.strip() for scope in requested.split(",") if scope.strip() and scope.strip() not in have]


def has_live_token(shop: Shop, *, now: dt.datetime | None = None) -> bool:
    """Tell whether ``shop`` holds a token that works now or can be refreshed without the merchant."""
    if not shop.is_installed:
        return False
    now = now or utcnow()
    if shop.access_token_expires_at is None or shop.access_token_expires_at > now:
        return True
    return shop.refresh_token_ciphertext is not None and (
        shop.refresh_token_expires_at is None or shop.refresh_token_expires_at > now
    )


def _persist() -> None:
    """Commit token bookkeeping unless the caller has its own unflushed work in the session.

    A token rotation or revocation must survive the caller rolling back, but committing someone
    else's half-done changes would be worse; in that case the caller's commit carries it.
    """
    others_dirty = any(not isinstance(obj, Shop) for obj in db.session.dirty)
    if db.session.new or db.session.deleted or others_dirty:
        db.session.flush()
    else:
        db.session.commit()


def access_token_for(shop: Shop, *, now: dt.datetime | None = None) -> str:
    """Return a working access token for ``shop``, refreshing an expiring one first.

    :raise ShopifyUnauthorized: when the shop is uninstalled, revoked, or its token expired for good.
    """
    if not shop.is_installed or shop.access_token_ciphertext is None:
        raise ShopifyUnauthorized(f"{shop.shopify_domain} has no live access token")
    now = now or utcnow()
    expires_at = shop.access_token_expires_at
    if expires_at is None or expires_at - REFRESH_MARGIN > now:
        return _decrypt_access(shop)

    # Lock the row (PostgreSQL) so two workers do not both spend the same refresh token.
    locked = db.session.execute(
        select(Shop).where(Shop.id == shop.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if locked.access_token_expires_at is not None and locked.access_token_expires_at - REFRESH_MARGIN > now:
        return _decrypt_access(locked)  # another worker refreshed while we waited
    refresh_token = crypto.decrypt(locked.refresh_token_ciphertext) if locked.refresh_token_ciphertext else None
    refresh_alive = locked.refresh_token_expires_at is None or locked.refresh_token_expires_at > now
    if refresh_token and refresh_alive:
        try:
            grant = oauth.refresh_access_token(locked.shopify_domain, refresh_token)
        except ShopifyAPIError as exc:
            if locked.access_token_expires_at is not None and locked.access_token_expires_at > now:
                logger.warning("token refresh failed for %s; using the current token", locked.shopify_domain)
                return _decrypt_access(locked)
            if exc.details.get("error"):
                # Shopify refused the refresh token itself (e.g. invalid_grant): it is dead, so let the
                # next embedded load exchange a session token for a new one.
                mark_token_revoked(locked)
                raise ShopifyUnauthorized(
                    f"Shopify refused to refresh the token of {locked.shopify_domain} ({exc.details['error']})"
                ) from exc
            raise
        old_refresh_expiry = locked.refresh_token_expires_at
        store_tokens(locked, grant.access_token, grant.scope or None, grant.expires_in, grant.refresh_token,
                     grant.refresh_token_expires_in, now=now)
        if grant.refresh_token is None:
            # Shopify did not rotate it: keep the old one rather than losing the ability to refresh.
            locked.refresh_token_ciphertext = crypto.encrypt(refresh_token)
            locked.refresh_token_expires_at = old_refresh_expiry
        _persist()
        logger.info("refreshed the offline token of %s", locked.shopify_domain)
        return grant.access_token
    if locked.access_token_expires_at is not None and locked.access_token_expires_at > now:
        return _decrypt_access(locked)
    raise ShopifyUnauthorized(f"the access token of {locked.shopify_domain} expired and cannot be refreshed")


def _decrypt_access(shop: Shop) -> str:
    token = crypto.decrypt(shop.access_token_ciphertext or "")
    if not token:
        raise ShopifyUnauthorized(f"the stored token of {shop.shopify_domain} cannot be decrypted with current keys")
    return token


def mark_token_revoked(shop: Shop) -> None:
    """Record that Shopify refused the shop's token, and drop it: the next embedded load re-exchanges."""
    now = utcnow()
    shop.token_revoked_at = now
    shop.access_token_ciphertext = None
    shop.refresh_token_ciphertext = None
    shop.access_token_expires_at = None
    shop.refresh_token_expires_at = None
    _persist()
    logger.warning("Shopify refused the token of %s; marked revoked", shop.shopify_domain)
