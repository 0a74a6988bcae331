"""Shopify's token endpoint: code exchange, refresh of expiring offline tokens, and token exchange.

Every call goes through authlib's requests OAuth2 client (so ``responses`` can play Shopify in tests)
to ``{SHOPIFY_BASE_URL_TEMPLATE}/admin/oauth/access_token``, authenticating with the client id and
secret in the form body, as Shopify expects.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from referral_plugin.errors import InvalidSessionToken
from referral_plugin.errors import ShopifyAPIError

logger = logging.getLogger(__name__)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    """An offline access token as Shopify granted it (expiring tokens carry a refresh token)."""

    access_token: str
    scope: str
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None

    def __repr__(self) -> str:
        # Keep tokens out of logs and tracebacks.
        return f"TokenGrant(scope={self.scope!r}, expires_in={self.expires_in!r})"


def shopify_base_url(shop_domain: str) -> str:
    """Return the base URL outbound calls to ``shop_domain`` go to (``https://{shop}`` in production)."""
    template = str(current_app.config.get("SHOPIFY_BASE_URL_TEMPLATE") or "https://{shop}")
    return template.format(shop=shop_domain).rstrip("/")


def token_url(shop_domain: str) -> str:
    """Return the shop's OAuth token endpoint."""
    return f"{shopify_base_url(shop_domain)}/admin/oauth/access_token"


def authorize_url(shop_domain: str, state: str) -> str:
    """Return the grant-screen URL for an offline token (always the real shop: the merchant's browser goes there)."""
    config = current_app.config
    query = urlencode(
        {
            "client_id": config["SHOPIFY_API_KEY"],
            "scope": config["SHOPIFY_SCOPES"],
            "redirect_uri": callback_url(),
            "state": state,
        }
    )
    return f"https://{shop_domain}/admin/oauth/authorize?{query}"


def callback_url() -> str:
    """Return the redirect_uri registered in ``shopify.app.toml``."""
    return f"{current_app.config['APP_URL']}/auth/callback"


def _client() -> OAuth2Session:
    config = current_app.config
    return OAuth2Session(
        client_id=config["SHOPIFY_API_KEY"],
        client_secret=config["SHOPIFY_API_SECRET"],
        token_endpoint_auth_method="client_secret_post",
        default_timeout=TIMEOUT_SECONDS,
    )


#: Lifetimes beyond this (a century) are nonsense; a datetime cannot even hold ``now + 1e300`` seconds.
MAX_LIFETIME_SECONDS = 100 * 365 * 24 * 3600


def _optional_int(value: t.Any) -> int | None:
    """Return a token lifetime in seconds, or None when it is missing, not a number or out of range."""
    try:
        seconds = None if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if seconds is not None and 0 <= seconds <= MAX_LIFETIME_SECONDS else None


def _is_token(value: t.Any) -> bool:
    """Tell whether ``value`` looks like a Shopify token (``shpat_…``, ``shprt_…``): printable ASCII, no spaces.

    Anything else could not be sent back in a header, and a lone surrogate could not even be encrypted.
    """
    return isinstance(value, str) and bool(value) and value.isascii() and value.isprintable() and " " not in value


#: Room for every Admin API scope there is (shops.scopes is VARCHAR(1024)); longer is not Shopify's answer.
MAX_SCOPE_LENGTH = 1024


def _scope(value: t.Any) -> str:
    """Return the granted scopes as Shopify's comma list; anything but printable ASCII text that fits grants nothing."""
    if isinstance(value, str) and value.isascii() and value.isprintable() and len(value) <= MAX_SCOPE_LENGTH:
        return value
    return ""


def _grant_from(token: t.Mapping[str, t.Any], what: str, shop_domain: str) -> TokenGrant:
    access_token = token.get("access_token")
    if not _is_token(access_token):
        raise ShopifyAPIError(
            f"Shopify answered the {what} for {shop_domain} without a usable access token.",
            code="TOKEN_REQUEST_FAILED",
        )
    refresh_token = token.get("refresh_token")
    return TokenGrant(
        access_token=str(access_token),
        scope=_scope(token.get("scope")),
        expires_in=_optional_int(token.get("expires_in")),
        refresh_token=refresh_token if _is_token(refresh_token) else None,
        refresh_token_expires_in=_optional_int(token.get("refresh_token_expires_in")),
    )


def _request(what: str, shop_domain: str, call: t.Callable[[OAuth2Session], t.Mapping[str, t.Any]]) -> TokenGrant:
    """Run one token-endpoint call and turn every failure into one clear error."""
    with _client() as client:
        try:
            token = call(client)
        except AuthlibBaseError as exc:
            error = str(getattr(exc, "error", "") or "")
            logger.warning("Shopify refused the %s for %s: %s", what, shop_domain, error)
            if error == "invalid_subject_token":
                raise InvalidSessionToken("Shopify rejected the session token; get a fresh one") from exc
            raise ShopifyAPIError(
                f"Shopify refused the {what} for {shop_domain} ({error or 'no reason given'}).",
                code="TOKEN_REQUEST_FAILED",
                details={"error": error} if error else None,
            ) from exc
        except requests.RequestException as exc:
            logger.warning("the %s for %s failed: %s", what, shop_domain, type(exc).__name__)
            raise ShopifyAPIError(
                f"Could not reach Shopify for the {what} for {shop_domain}.", code="TOKEN_REQUEST_FAILED"
            ) from exc
        except ValueError as exc:
            raise ShopifyAPIError(
                f"Shopify's answer to the {what} for {shop_domain} was not JSON.", code="TOKEN_REQUEST_FAILED"
            ) from exc
    return _grant_from(token, what, shop_domain)


def exchange_code(shop_domain: str, code: str) -> TokenGrant:
    """Exchange an authorization code for an expiring offline token.

    :raise ShopifyAPIError: when Shopify refuses, cannot be reached, or answers without a token.
    """
    return _request(
        "code exchange",
        shop_domain,
        lambda client: client.fetch_token(
            token_url(shop_domain), grant_type="authorization_code", code=code, expiring="1"
        ),
    )


def refresh_access_token(shop_domain: str, refresh_token: str) -> TokenGrant:
    """Trade a refresh token for a new expiring offline token (Shopify rotates the refresh token too).

    :raise ShopifyAPIError: when the refresh fails.
    """
    return _request(
        "token refresh",
        shop_domain,
        lambda client: client.refresh_token(token_url(shop_domain), refresh_token=refresh_token),
    )


def exchange_session_token(shop_domain: str, session_token: str) -> TokenGrant:
    """Exchange a verified App Bridge session token for an expiring offline token (managed install).

    :raise InvalidSessionToken: when Shopify answers ``invalid_subject_token``.
    :raise ShopifyAPIError: for any other failure (e.g. ``app_not_installed`` while an uninstall races).
    """
    return _request(
        "token exchange",
        shop_domain,
        lambda client: client.fetch_token(
            token_url(shop_domain),
            grant_type=TOKEN_EXCHANGE_GRANT,
            subject_token=session_token,
            subject_token_type=ID_TOKEN_TYPE,
            requested_token_type=OFFLINE_TOKEN_TYPE,
            expiring="1",
        ),
    )
