"""The guard for embedded-admin views: an App Bridge session token decides the shop, nothing else.

Document loads carry the token as ``?id_token=``; App Bridge's fetches send ``Authorization: Bearer``.
An invalid token answers XHR with 401 and ``X-Shopify-Retry-Invalid-Session-Request: 1`` (App Bridge
retries with a fresh token) and documents with the bounce page (App Bridge reloads the same URL with a
fresh ``id_token``). A valid token for a shop without a live offline token is exchanged for one
(managed installation), so the app works right after Shopify installs it.
"""

from __future__ import annotations

import functools
import logging
import typing as t
from urllib.parse import urlencode

from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from referral_plugin import installs
from referral_plugin.errors import InvalidSessionToken
from referral_plugin.errors import ReferralPluginError
from referral_plugin.models import Shop
from referral_plugin.security.session_token import decode_session_token
from referral_plugin.security.shop_domain import sanitize_shop_domain
from referral_plugin.security.signatures import parse_query
from referral_plugin.security.signatures import verify_admin_query
from referral_plugin.shopify import oauth

logger = logging.getLogger(__name__)

RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
ADMIN_ORIGIN = "https://admin.shopify.com"

P = t.ParamSpec("P")


def frame_ancestors(shop: str | None) -> str:
    """Return the CSP that lets only this shop's admin frame the page; ``shop`` must be sanitized."""
    hosts = ([f"https://{shop}"] if shop else []) + [ADMIN_ORIGIN]
    return f"frame-ancestors {' '.join(hosts)};"


def _set_frame_ancestors(response: Response, shop: str | None) -> None:
    policy = frame_ancestors(shop)
    existing = response.headers.get("Content-Security-Policy")
    if existing and "frame-ancestors" not in existing:
        policy = f"{existing.rstrip().rstrip(';')}; {policy}"
    elif existing:
        return
    response.headers["Content-Security-Policy"] = policy


def bounce_response(reload_url: str, *, status: int) -> Response:
    """Render the App Bridge page that reloads ``reload_url`` with a fresh session token."""
    body = render_template(
        "auth/bounce.html",
        api_key=current_app.config["SHOPIFY_API_KEY"],
        app_bridge_url=APP_BRIDGE_URL,
        reload_url=reload_url,
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_xhr() -> bool:
    """Tell App Bridge fetches (Bearer header, JSON endpoints) from document loads."""
    if request.headers.get("Authorization"):
        return True
    if "/api/" in request.path or request.headers.get("X-Requested-With"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return bool(request.accept_mimetypes) and best == "application/json"


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _reload_url() -> str:
    """Return this URL on the configured app host, without the spent ``id_token``."""
    pairs = [(key, value) for key, value in parse_query(request.query_string) if key != "id_token"]
    query = urlencode(pairs)
    return f"{current_app.config['APP_URL']}{request.path}" + (f"?{query}" if query else "")


def _invalid(xhr: bool, error: InvalidSessionToken) -> Response:
    """Answer an invalid or missing session token the way App Bridge recovers from."""
    if xhr:
        response = jsonify(error.to_dict())
        response.status_code = 401
    else:
        response = bounce_response(_reload_url(), status=401)
        _set_frame_ancestors(response, sanitize_shop_domain(request.args.get("shop")))
    response.headers[RETRY_HEADER] = "1"
    return response


def _install_redirect() -> BaseResponse | None:
    """Send a signed admin load for a shop that is not installed to the OAuth install."""
    if "shop" not in request.args or "hmac" not in request.args:
        return None
    config = current_app.config
    pairs = parse_query(request.query_string)
    try:
        verify_admin_query(pairs, config["SHOPIFY_API_SECRET"], config.get("SHOPIFY_API_SECRET_OLD"),
                           tolerance=int(config["HMAC_TIMESTAMP_TOLERANCE"]))
    except ReferralPluginError:
        return None
    shop_domain = sanitize_shop_domain(request.args.get("shop"))
    if shop_domain is None:
        return None
    shop = installs.get_shop(shop_domain)
    if shop is not None and installs.has_live_token(shop):
        return None
    # The query is still Shopify's signed one, so /auth/install verifies it again as is.
    return redirect(f"/auth/install?{request.query_string.decode()}", code=302)


def _shop_for(shop_domain: str, token: str) -> Shop:
    """Return the shop of a verified token, exchanging the token for an offline token when needed."""
    shop = installs.get_shop(shop_domain)
    if shop is not None and installs.has_live_token(shop):
        return shop
    if current_app.config.get("DEMO_MODE"):
        # No Shopify to talk to in the demo: only a seeded shop can be opened.
        if shop is None:
            raise InvalidSessionToken("this demo has no such shop")
        return shop
    grant = oauth.exchange_session_token(shop_domain, token)
    return installs.install_shop(
        shop_domain, grant.access_token, grant.scope, expires_in=grant.expires_in,
        refresh_token=grant.refresh_token, refresh_token_expires_in=grant.refresh_token_expires_in,
    )


def embedded_required(view: t.Callable[P, t.Any]) -> t.Callable[P, BaseResponse]:
    """Require a valid App Bridge session token; set ``g.shop`` and ``g.session_claims``."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> BaseResponse:
        xhr = _is_xhr()
        token = _bearer_token() or request.args.get("id_token") or None
        if token is None:
            if not xhr:
                install = _install_redirect()
                if install is not None:
                    return install
            return _invalid(xhr, InvalidSessionToken("a session token is required"))
        config = current_app.config
        try:
            claims = decode_session_token(
                token, config["SHOPIFY_API_KEY"], config["SHOPIFY_API_SECRET"],
                config.get("SHOPIFY_API_SECRET_OLD"), leeway=int(config["SESSION_TOKEN_LEEWAY"]),
            )
            shop = _shop_for(claims["shop"], token)
        except InvalidSessionToken as exc:
            logger.info("invalid session token on %s: %s", request.path, exc.message)
            return _invalid(xhr, exc)
        g.shop = shop
        g.session_claims = claims
        response = make_response(view(*args, **kwargs))
        if not xhr:
            _set_frame_ancestors(response, shop.shopify_domain)
        return response

    return wrapper
