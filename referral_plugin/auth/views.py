"""Shopify install (OAuth authorization-code grant) and the App Bridge session-token bounce page.

Embedded loads normally come through managed installation plus token exchange
(:mod:`referral_plugin.auth.embedded`); this classic flow serves non-embedded installs and the CLI's
development flow. Webhook subscriptions are declared in ``shopify.app.toml``, so Shopify registers
them for every shop on install and nothing is registered per shop here.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy import update
from werkzeug.wrappers import Response as BaseResponse

from referral_plugin import installs
from referral_plugin.auth.embedded import bounce_response
from referral_plugin.auth.embedded import frame_ancestors
from referral_plugin.errors import BadRequest
from referral_plugin.errors import Forbidden
from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import ShopifyAPIError
from referral_plugin.extensions import db
from referral_plugin.models import OAuthState
from referral_plugin.models import utcnow
from referral_plugin.security.shop_domain import require_shop_domain
from referral_plugin.security.shop_domain import sanitize_shop_domain
from referral_plugin.security.signatures import Pairs
from referral_plugin.security.signatures import parse_query
from referral_plugin.security.signatures import same_secret
from referral_plugin.security.signatures import verify_admin_query
from referral_plugin.shopify import oauth

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/auth")

STATE_COOKIE = "shopify_app_state"
STATE_LIFETIME = dt.timedelta(minutes=10)
_STATE_SALT = "referral-plugin/oauth-state"


def _verified_query() -> tuple[Pairs, str]:
    """Verify the signed admin query and return its pairs and sanitized shop."""
    pairs = parse_query(request.query_string)
    config = current_app.config
    verify_admin_query(
        pairs, config["SHOPIFY_API_SECRET"], config.get("SHOPIFY_API_SECRET_OLD"),
        tolerance=int(config["HMAC_TIMESTAMP_TOLERANCE"]),
    )
    shops = [value for key, value in pairs if key == "shop"]
    if len(shops) > 1:
        raise InvalidSignature("shop must appear exactly once")
    return pairs, require_shop_domain(shops[0] if shops else None)


def _single(pairs: Pairs, key: str) -> str:
    values = [value for name, value in pairs if name == key]
    return values[0] if len(values) == 1 else ""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_STATE_SALT)


@bp.get("/install")
def install() -> BaseResponse:
    """Start the OAuth grant: verify Shopify's signature, issue a state nonce, send the merchant to Shopify."""
    _, shop = _verified_query()
    nonce = secrets.token_hex(32)
    now = utcnow()
    # Old nonces for this shop are useless: keep the table small.
    db.session.execute(
        delete(OAuthState).where(OAuthState.shop_domain == shop, OAuthState.created_at < now - STATE_LIFETIME)
    )
    db.session.add(OAuthState(nonce=nonce, shop_domain=shop, created_at=now))
    db.session.commit()

    response = redirect(oauth.authorize_url(shop, nonce), code=302)
    response.set_cookie(
        STATE_COOKIE,
        _serializer().dumps({"state": nonce, "shop": shop}),
        max_age=int(STATE_LIFETIME.total_seconds()),
        path="/auth",
        secure=current_app.config["APP_URL"].startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response


def _check_state_cookie(state: str, shop: str) -> None:
    """Compare the state with the signed cookie, when the browser sent it back."""
    raw = request.cookies.get(STATE_COOKIE)
    if raw is None:
        # Installs started inside the admin iframe may not carry the cookie; the server-side nonce decides.
        return
    try:
        stored = _serializer().loads(raw, max_age=int(STATE_LIFETIME.total_seconds()))
    except BadSignature:
        raise Forbidden("the install state cookie is invalid or expired; start the install again",
                        code="INVALID_STATE") from None
    expected = str(stored.get("state", "")) if isinstance(stored, dict) else ""
    if not same_secret(expected, state) or stored.get("shop") != shop:
        raise Forbidden("the install state does not match this browser; start the install again",
                        code="INVALID_STATE")


def _consume_state(state: str, shop: str) -> None:
    """Spend the server-side nonce exactly once; raise when it is unknown, spent, stale or another shop's."""
    now = utcnow()
    result = db.session.execute(
        update(OAuthState)
        .where(
            OAuthState.nonce == state,
            OAuthState.shop_domain == shop,
            OAuthState.consumed_at.is_(None),
            OAuthState.created_at > now - STATE_LIFETIME,
        )
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    )
    # Spent for good, even when the code exchange below fails: a state is single-use.
    db.session.commit()
    if getattr(result, "rowcount", 0) != 1:
        raise Forbidden("the install state is unknown, already used or expired; start the install again",
                        code="INVALID_STATE")


@bp.get("/callback")
def callback() -> BaseResponse:
    """Finish the OAuth grant: verify, spend the state, exchange the code, store the shop, enter the app."""
    pairs, shop = _verified_query()
    code = _single(pairs, "code")
    state = _single(pairs, "state")
    if not code:
        raise BadRequest("the callback has no authorization code", code="MISSING_CODE")
    if not state:
        raise Forbidden("the callback has no state", code="INVALID_STATE")
    if not state.isprintable():
        # Our nonces are URL-safe text; PostgreSQL would refuse a NUL in the state lookup itself.
        raise Forbidden("the callback's state is not one this app issues", code="INVALID_STATE")
    _check_state_cookie(state, shop)
    _consume_state(state, shop)

    try:
        grant = oauth.exchange_code(shop, code)
    except ShopifyAPIError as exc:
        logger.warning("install of %s failed at the code exchange: %s", shop, exc.message)
        return _install_failed(shop, exc)
    installs.install_shop(
        shop, grant.access_token, grant.scope, expires_in=grant.expires_in, refresh_token=grant.refresh_token,
        refresh_token_expires_in=grant.refresh_token_expires_in,
    )
    handle = shop.split(".", 1)[0]
    response = redirect(f"https://admin.shopify.com/store/{handle}/apps/{current_app.config['SHOPIFY_API_KEY']}")
    response.delete_cookie(STATE_COOKIE, path="/auth")
    return response


def _install_failed(shop: str, error: ShopifyAPIError) -> Response:
    body = render_template("auth/install_failed.html", shop=shop, message=error.message, code=error.code)
    response = Response(body, status=502, mimetype="text/html")
    response.delete_cookie(STATE_COOKIE, path="/auth")
    return response


@bp.get("/session-token")
def session_token_bounce() -> Response:
    """Render the App Bridge page that fetches a fresh session token and reloads ``shopify-reload``."""
    reload_target = request.args.get("shopify-reload", "")
    app_url = current_app.config["APP_URL"]
    # Reload only into this app, never to a URL someone put in the link.
    if not (reload_target.startswith(app_url + "/") or reload_target == app_url):
        reload_target = app_url + "/"
    response = bounce_response(reload_target, status=200)
    shop = sanitize_shop_domain(request.args.get("shop"))
    response.headers["Content-Security-Policy"] = frame_ancestors(shop)
    return response
