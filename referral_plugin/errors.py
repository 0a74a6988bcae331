"""The app's exceptions, and their translation to responses, in one place.

Exception tree::

    ReferralPluginError                 base; carries status_code, code, message
    ├── ConfigurationError              start-up: a required setting is missing or wrong
    ├── BadRequest (400)                malformed input
    │   ├── ValidationError (400/422)   well-formed input that breaks a rule; names the field
    │   ├── InvalidShopDomain (400)     a shop that is not {handle}.myshopify.com
    │   └── MissingHeaders (400)        a webhook without its Shopify headers
    ├── Unauthorized (401)
    │   ├── InvalidSignature (401)      OAuth hmac, webhook hmac or app-proxy signature wrong
    │   ├── StaleRequest (401)          timestamp outside the allowed window
    │   ├── InvalidSessionToken (401)   App Bridge session token invalid
    │   └── InvalidApiKey (401)         integrator API key missing, wrong or revoked
    ├── Forbidden (403)                 e.g. OAuth state mismatch, cross-site post
    ├── NotFound (404)
    ├── Conflict (409)
    ├── RateLimited (429)               carries retry_after seconds
    └── ShopifyAPIError (502)           the Admin API failed us
        ├── ShopifyUserErrors (502)     a mutation answered userErrors
        ├── ShopifyThrottled (503)      still throttled after the retries
        └── ShopifyUnauthorized (502)   401 from Shopify: the token is revoked

Blueprints whose routes document their own error envelope (the Capillary and Joy APIs, the
storefront) register a renderer with :func:`register_error_renderer`; everything else gets
``{"error": {"code", "message"}}`` for JSON callers and an HTML page otherwise.
"""

from __future__ import annotations

import logging
import typing as t

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ReferralPluginError(Exception):
    """Base of every error this app raises on purpose."""

    status_code: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str = "", *, code: str | None = None, status_code: int | None = None,
                 field: str | None = None, details: t.Mapping[str, t.Any] | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip().rstrip(".")
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.field = field
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, t.Any]:
        """Return the default JSON envelope."""
        body: dict[str, t.Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


class ConfigurationError(ReferralPluginError):
    """The app is misconfigured."""

    code = "CONFIGURATION_ERROR"


class BadRequest(ReferralPluginError):
    """The request is malformed."""

    status_code = 400
    code = "BAD_REQUEST"


class ValidationError(BadRequest):
    """A value breaks a rule."""

    code = "VALIDATION_ERROR"


class InvalidShopDomain(BadRequest):
    """The shop domain is not a valid myshopify.com domain."""

    code = "INVALID_SHOP_DOMAIN"


class MissingHeaders(BadRequest):
    """Required Shopify headers are missing."""

    code = "MISSING_HEADERS"


class Unauthorized(ReferralPluginError):
    """Authentication is missing or wrong."""

    status_code = 401
    code = "UNAUTHORIZED"


class InvalidSignature(Unauthorized):
    """The request signature is invalid."""

    code = "INVALID_SIGNATURE"


class StaleRequest(Unauthorized):
    """The request timestamp is outside the allowed window."""

    code = "STALE_REQUEST"


class InvalidSessionToken(Unauthorized):
    """The session token is invalid."""

    code = "INVALID_SESSION_TOKEN"


class InvalidApiKey(Unauthorized):
    """The API key is missing, wrong or revoked."""

    code = "INVALID_API_KEY"


class Forbidden(ReferralPluginError):
    """The request is not allowed."""

    status_code = 403
    code = "FORBIDDEN"


class NotFound(ReferralPluginError):
    """The resource does not exist."""

    status_code = 404
    code = "NOT_FOUND"


class Conflict(ReferralPluginError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "CONFLICT"


class RateLimited(ReferralPluginError):
    """Too many requests."""

    status_code = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str = "", *, retry_after: int = 60, **kwargs: t.Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ShopifyAPIError(ReferralPluginError):
    """The Shopify Admin API request failed."""

    status_code = 502
    code = "SHOPIFY_API_ERROR"


class ShopifyUserErrors(ShopifyAPIError):
    """Shopify rejected the mutation with userErrors."""

    code = "SHOPIFY_USER_ERRORS"

    def __init__(self, message: str = "", *, user_errors: list[dict[str, t.Any]] | None = None,
                 **kwargs: t.Any) -> None:
        super().__init__(message, **kwargs)
        self.user_errors = list(user_errors or [])


class ShopifyThrottled(ShopifyAPIError):
    """Shopify is still throttling after the allowed retries."""

    status_code = 503
    code = "SHOPIFY_THROTTLED"


class ShopifyUnauthorized(ShopifyAPIError):
    """Shopify refused the access token; it is revoked."""

    code = "SHOPIFY_UNAUTHORIZED"


ErrorRenderer = t.Callable[[ReferralPluginError], Response]
_RENDERERS: dict[str, ErrorRenderer] = {}
_PREFIX_RENDERERS: dict[str, ErrorRenderer] = {}


def register_error_renderer(
    blueprint_name: str, renderer: ErrorRenderer, *, path_prefixes: t.Iterable[str] = ()
) -> None:
    """Render errors raised under ``blueprint_name`` in that blueprint's documented envelope.

    ``path_prefixes`` claim routing errors too (an unknown path or method under them), which happen
    before any blueprint is matched.
    """
    _RENDERERS[blueprint_name] = renderer
    for prefix in path_prefixes:
        _PREFIX_RENDERERS[prefix] = renderer


def _renderer_for_request() -> ErrorRenderer | None:
    if request.blueprint:
        return _RENDERERS.get(request.blueprint)
    # Longest prefix first, so a specific surface wins over the broader one it sits in.
    for prefix in sorted(_PREFIX_RENDERERS, key=len, reverse=True):
        if request.path.startswith(prefix):
            return _PREFIX_RENDERERS[prefix]
    return None


def wants_json() -> bool:
    """Tell whether the caller expects JSON rather than a page."""
    if request.blueprint and request.blueprint not in {"auth", "admin", "demo"}:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return bool(request.is_json or best == "application/json" or request.headers.get("Authorization"))


def render_error(error: ReferralPluginError) -> Response:
    """Translate an app error into the response its route documents."""
    renderer = _renderer_for_request()
    if renderer is not None:
        response = renderer(error)
    elif wants_json():
        response = jsonify(error.to_dict())
    else:
        response = Response(
            render_template("errors/error.html", status=error.status_code, code=error.code,
                            message=error.message),
            mimetype="text/html",
        )
    response.status_code = error.status_code
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _http_error_code(error: HTTPException) -> str:
    return (error.name or "error").upper().replace(" ", "_").replace("'", "")


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    """Answer framework errors (404, 405, 413...) in the same shapes as app errors."""
    if error.code is None or error.code < 400:
        return error
    wrapped = ReferralPluginError(error.description or error.name, code=_http_error_code(error),
                                  status_code=error.code)
    response = render_error(wrapped)
    for key, value in error.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected error, roll back, and answer a plain 500 without leaking details."""
    from referral_plugin.extensions import db

    db.session.rollback()
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(ReferralPluginError("Something went wrong on our side."))


def register_error_handlers(app: Flask) -> None:
    """Translate every app and HTTP error in one place."""
    app.register_error_handler(ReferralPluginError, render_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
