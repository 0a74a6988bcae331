"""Per-key rate limiting of the integrator API (flask-limiter), with RFC draft ``RateLimit`` headers.

The limit (``API_RATE_LIMIT``, default Capillary's documented 1000 per minute) is shared by every
API route and counted per live key; requests without one are counted per client address, so made-up
keys cannot each open a fresh counter. Storage is ``RATELIMIT_STORAGE_URI``, else ``REDIS_URL``, else
process memory; when the storage is unreachable the limiter falls back to memory instead of failing requests.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import request
from flask.wrappers import Response
from flask_limiter import Limiter
from limits import parse_many

from referral_plugin.api.auth import authenticated
from referral_plugin.errors import ConfigurationError

logger = logging.getLogger(__name__)

EXTENSION_KEY = "referral_api_limiter"
SCOPE = "integrator-api"


def rate_limit_key() -> str:
    """Return the counter a request is charged to: its live key, or its address without one."""
    found = authenticated()
    if found is not None:
        return f"key:{found[0].id}"
    return "unauthenticated:" + (request.remote_addr or "unknown")


def _limit_value() -> str:
    return str(current_app.config.get("API_RATE_LIMIT") or "1000 per minute")


def storage_uri(app: Flask) -> str:
    """Return where counters live: ``RATELIMIT_STORAGE_URI``, else ``REDIS_URL``, else memory."""
    return str(app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://")


def init_limiter(app: Flask, blueprints: list[Blueprint]) -> Limiter:
    """Create this app's limiter and apply the shared per-key limit to ``blueprints``.

    Each blueprint adds :func:`add_rate_limit_headers` itself, once, where it is defined.
    """
    configured = str(app.config.get("API_RATE_LIMIT") or "1000 per minute")
    try:
        parse_many(configured)
    except ValueError:
        # flask-limiter would swallow the parse error on every request and limit nothing.
        raise ConfigurationError(f"API_RATE_LIMIT {configured!r} is not a rate limit such as "
                                 "'1000 per minute' or '10/second;1000/minute'.") from None
    uri = storage_uri(app)
    limiter = Limiter(
        key_func=rate_limit_key,
        storage_uri=uri,
        headers_enabled=False,  # we write the RFC draft names ourselves, see add_rate_limit_headers
        swallow_errors=True,
        in_memory_fallback_enabled=not uri.startswith("memory"),
        key_prefix="referral-plugin-api",
    )
    limiter.init_app(app)
    # init_app checks every request of the app: each webhook, widget and dashboard request would walk the
    # limiter's blueprint and exemption lookups (about 0.05 ms) only to find no limit. The check runs first among
    # the API blueprints' own hooks instead, so a flood of made-up keys is still limited before any key lookup.
    app.before_request_funcs[None].remove(limiter._check_request_limit)  # noqa: SLF001 - the hook init_app added
    for blueprint in blueprints:
        app.before_request_funcs.setdefault(blueprint.name, []).insert(0, limiter._check_request_limit)  # noqa: SLF001
    shared = limiter.shared_limit(_limit_value, scope=SCOPE, key_func=rate_limit_key)
    for blueprint in blueprints:
        shared(blueprint)
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def add_rate_limit_headers(response: Response) -> Response:
    """Add ``RateLimit-Limit/-Remaining/-Reset`` and ``RateLimit-Policy``; ``Retry-After`` on 429."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION_KEY)
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return response
    try:
        reset_in = max(0, math.ceil(current.window[0] - time.time()))
        amount = current.limit.amount
        response.headers["RateLimit-Limit"] = str(amount)
        response.headers["RateLimit-Remaining"] = str(max(0, current.remaining))
        response.headers["RateLimit-Reset"] = str(reset_in)
        response.headers["RateLimit-Policy"] = f"{amount};w={current.limit.get_expiry()}"
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(1, reset_in))
    except Exception:  # the storage went away mid-request; the answer matters more than its headers
        logger.warning("could not read the rate-limit window", exc_info=True)
    return response
