"""The integrator REST API at the seeds' paths (Capillary, Joy) plus campaigns and the OpenAPI document."""

from __future__ import annotations

from flask import Flask
from flask import request
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException

from referral_plugin.errors import ErrorRenderer
from referral_plugin.errors import ReferralPluginError
from referral_plugin.errors import register_error_renderer

#: Path prefix of each surface, and the renderer of its documented error envelope (for routing errors,
#: which happen before a blueprint is known).
_PREFIXES: list[tuple[str, str]] = [
    ("/v1.1/customer/referrals", "capillary_refer"),
    ("/v2/customers/lookup/referrals", "capillary_lookup"),
    ("/rest_api/", "joy"),
    ("/v1.1/", "capillary_refer"),
    ("/v2/", "capillary_lookup"),
    ("/api/", "api_v1"),
]


def _renderers() -> dict[str, ErrorRenderer]:
    from referral_plugin.api import envelopes

    return {
        "capillary_refer": envelopes.render_capillary_refer_error,
        "capillary_lookup": envelopes.render_capillary_lookup_error,
        "joy": envelopes.render_joy_error,
        "api_v1": envelopes.render_default_error,
        "api_docs": envelopes.render_default_error,
    }


def _routing_error_in_envelope() -> Response | None:
    """Answer 404/405 under the API's prefixes in the envelope of the surface the path belongs to."""
    error = request.routing_exception
    if not isinstance(error, HTTPException) or error.code is None or error.code < 400:
        return None
    surface = next((name for prefix, name in _PREFIXES if request.path.startswith(prefix)), None)
    if surface is None:
        return None
    code = (error.name or "error").upper().replace(" ", "_")
    wrapped = ReferralPluginError(error.description or error.name, code=code, status_code=error.code)
    response = _renderers()[surface](wrapped)
    response.status_code = error.code
    for key, value in error.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def register_api(app: Flask) -> None:
    """Mount the API blueprints, their error envelopes, the per-key rate limit and the ``api-key`` CLI."""
    from referral_plugin.api import campaigns
    from referral_plugin.api import capillary
    from referral_plugin.api import joy
    from referral_plugin.api import openapi
    from referral_plugin.api.ratelimit import init_limiter
    from referral_plugin.apikeys import register_api_key_commands

    limited = [capillary.refer_bp, capillary.lookup_bp, joy.bp, campaigns.bp]
    for blueprint in (*limited, openapi.bp):
        app.register_blueprint(blueprint)
    for name, renderer in _renderers().items():
        register_error_renderer(name, renderer)
    init_limiter(app, limited)
    app.before_request(_routing_error_in_envelope)
    register_api_key_commands(app)


def api_blueprint_names() -> frozenset[str]:
    """Return the names of the API's blueprints (for the OpenAPI-vs-URL-map check)."""
    return frozenset(_renderers())


__all__: list[str] = ["api_blueprint_names", "register_api"]
