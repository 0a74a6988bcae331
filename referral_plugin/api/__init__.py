"""The integrator REST API at the seeds' paths (Capillary, Joy) plus campaigns and the OpenAPI document."""

from __future__ import annotations

from flask import Flask

from referral_plugin.errors import ErrorRenderer
from referral_plugin.errors import register_error_renderer

#: Path prefixes of each surface, whose routing errors (unknown path or method) use its envelope.
_PREFIXES: dict[str, tuple[str, ...]] = {
    "capillary_refer": ("/v1.1/",),
    "capillary_lookup": ("/v2/",),
    "joy": ("/rest_api/",),
    "api_v1": ("/api/",),
}


def _renderers() -> dict[str, ErrorRenderer]:
    from referral_plugin.api import envelopes

    return {
        "capillary_refer": envelopes.render_capillary_refer_error,
        "capillary_lookup": envelopes.render_capillary_lookup_error,
        "joy": envelopes.render_joy_error,
        "api_v1": envelopes.render_default_error,
        "api_docs": envelopes.render_default_error,
    }


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
        register_error_renderer(name, renderer, path_prefixes=_PREFIXES.get(name, ()))
    init_limiter(app, limited)
    register_api_key_commands(app)


def api_blueprint_names() -> frozenset[str]:
    """Return the names of the API's blueprints (for the OpenAPI-vs-URL-map check)."""
    return frozenset(_renderers())


__all__: list[str] = ["api_blueprint_names", "register_api"]
