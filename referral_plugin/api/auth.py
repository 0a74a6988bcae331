"""API-key authentication for the integrator API: ``X-Api-Key``, ``Bearer`` or HTTP Basic."""

from __future__ import annotations

import base64

from flask import g
from flask import request
from flask.wrappers import Response

from referral_plugin import apikeys
from referral_plugin.errors import InvalidApiKey
from referral_plugin.errors import ReferralPluginError
from referral_plugin.extensions import db
from referral_plugin.models import ApiKey
from referral_plugin.models import Shop


def presented_key() -> str | None:
    """Return the key the caller presented, from whichever of the three accepted forms it used."""
    # X-Joy-Loyalty-App-Key is Joy's own header (seed 003): clients ported from Joy keep working.
    header = (request.headers.get("X-Api-Key") or request.headers.get("X-Joy-Loyalty-App-Key") or "").strip()
    if header:
        return header
    authorization = request.headers.get("Authorization", "").strip()
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
            return None
        username, _, password = decoded.partition(":")
        # The key is the password (any username); a client that puts it in the username is forgiven.
        return password.strip() or username.strip() or None
    return None


#: Largest request body the API reads: a full Capillary batch (100 x 100 referrals) fits with room to spare.
MAX_BODY_BYTES = 2 * 1024 * 1024


def refuse_large_bodies() -> None:
    """Answer 413 (not 429, so clients do not retry it) to a body larger than :data:`MAX_BODY_BYTES`."""
    too_large = ReferralPluginError(f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                                    code="REQUEST_ENTITY_TOO_LARGE", status_code=413)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    # A chunked body has no Content-Length. Werkzeug stops reading at the limit but hands back what it read,
    # so read one byte past it here: more than the limit is a 413, never a silently cut body.
    request.max_content_length = MAX_BODY_BYTES + 1
    if request.content_length is None and request.method in ("POST", "PUT", "PATCH"):
        if len(request.get_data(cache=True)) > MAX_BODY_BYTES:
            raise too_large


def authenticated() -> tuple[ApiKey, Shop] | None:
    """Return the presented key's live key and shop, looked up once per request (limiter and views share it)."""
    # Cached on the request, not on ``g``: an app context (and its ``g``) can outlive one request.
    slot = "referral_plugin.api_authentication"
    if slot not in request.environ:
        key = presented_key()
        request.environ[slot] = apikeys.authenticate(key) if key else None
    found: tuple[ApiKey, Shop] | None = request.environ[slot]
    return found


def require_api_key() -> None:
    """Authenticate the request and put its shop on ``g.api_shop``; raise ``InvalidApiKey`` otherwise."""
    refuse_large_bodies()
    if not presented_key():
        raise InvalidApiKey("An API key is required: send X-Api-Key, Authorization: Bearer, or HTTP Basic.")
    found = authenticated()
    if found is None:
        raise InvalidApiKey("The API key is wrong, revoked, or its shop is not installed.")
    api_key, shop = found
    if db.session.dirty or db.session.new:
        db.session.commit()
    g.api_key = api_key
    g.api_shop = shop


def current_shop() -> Shop:
    """Return the shop of the authenticated key."""
    shop: Shop = g.api_shop
    return shop


def no_store(response: Response) -> Response:
    """Keep caches from storing an API answer: it holds a shop's data, and X-Api-Key is no Authorization header."""
    response.headers["Cache-Control"] = "no-store"
    return response
