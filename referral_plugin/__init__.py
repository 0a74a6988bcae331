"""referral-plugin: a referral-program app for Shopify storefronts."""

from __future__ import annotations

import os
import typing as t
from collections.abc import Mapping

from flask import Flask

from referral_plugin.config import build_config

__all__ = ["create_app"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: Mapping[str, t.Any] | None = None) -> Flask:
    """Create the app. No network or database work happens here."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(_ROOT, "templates"),
        static_folder=os.path.join(_ROOT, "static"),
    )
    app.config.from_mapping(build_config(app.instance_path, test_config))
    os.makedirs(app.instance_path, exist_ok=True)
    register_extensions(app)
    register_observability(app)
    register_blueprints(app)
    register_webhook_handlers()
    register_jobs(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extension objects to this app."""
    from referral_plugin.extensions import db
    from referral_plugin.extensions import migrate
    from referral_plugin.json_input import JSONProvider

    app.json = JSONProvider(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(_ROOT, "migrations"))


def register_observability(app: Flask) -> None:
    """Add request ids, structured logs, ``/metrics`` and ``/readyz``."""
    from referral_plugin.observability import register_observability as register

    register(app)


def register_blueprints(app: Flask) -> None:
    """Mount one blueprint per surface."""
    from referral_plugin import health
    from referral_plugin.admin import views as admin
    from referral_plugin.api import register_api
    from referral_plugin.auth import views as auth
    from referral_plugin.demo import views as demo
    from referral_plugin.storefront import views as storefront
    from referral_plugin.webhooks import views as webhooks

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(storefront.bp)
    app.register_blueprint(admin.bp)
    register_api(app)
    if app.config["DEMO_MODE"]:
        # Demo shortcuts exist only without real Shopify credentials.
        app.register_blueprint(demo.bp)


def register_webhook_handlers() -> None:
    """Fill the webhook topic table."""
    from referral_plugin.webhooks.topics import register_topic_handlers

    register_topic_handlers()


def register_jobs(app: Flask) -> None:
    """Bind the background job queue (Huey) and the privacy commands to this app."""
    from referral_plugin import jobs
    from referral_plugin import privacy

    jobs.init_app(app)
    privacy.init_app(app)


def register_error_handlers(app: Flask) -> None:
    """Translate errors to responses in one place."""
    from referral_plugin import errors

    errors.register_error_handlers(app)


def register_commands(app: Flask) -> None:
    """Add the CLI commands."""
    from referral_plugin import cli

    cli.register_commands(app)
