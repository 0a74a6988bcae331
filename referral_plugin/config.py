"""Build the app's configuration from defaults, the environment and ``test_config``.

Precedence, lowest first: :data:`DEFAULTS`, environment variables, ``test_config``. The keys and their
defaults are the public surface in ``CONTRACT.md``; everything else here is internal tuning.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from collections.abc import Mapping

from referral_plugin.errors import ConfigurationError

DEMO_SHOP_DOMAIN = "demo-shop.myshopify.com"
DEMO_API_KEY = "demo-api-key"
DEMO_API_SECRET = "demo-api-secret"

#: ``WEBHOOK_PROCESSING`` values: run handlers in the request (default) or in the job workers.
WEBHOOK_PROCESSING_MODES = ("inline", "queued")

DEFAULTS: dict[str, t.Any] = {
    "SHOPIFY_API_KEY": None,
    "SHOPIFY_API_SECRET": None,
    "SHOPIFY_API_SECRET_OLD": None,
    "SHOPIFY_SCOPES": "read_customers,write_customers,read_orders,write_discounts,write_app_proxy",
    "SHOPIFY_API_VERSION": "2026-10",
    "APP_URL": "http://127.0.0.1:5000",
    "APP_PROXY_PREFIX": "/apps/referrals",
    "SECRET_KEY": None,
    "DEFAULT_PHONE_REGION": "US",
    "REWARD_TEST_ORDERS": False,
    # Internal tuning, overridable the same way.
    "TOKEN_ENCRYPTION_KEY": None,
    "HMAC_TIMESTAMP_TOLERANCE": 90,
    "SESSION_TOKEN_LEEWAY": 10,
    #: Where outbound Shopify calls go; a fake Shopify on loopback can stand in (benchmarks, e2e).
    "SHOPIFY_BASE_URL_TEMPLATE": "https://{shop}",
    "POINT_VALUE": "0.01",
    "REDIS_URL": None,
    "HUEY_IMMEDIATE": False,
    #: ``inline``: ``POST /webhooks`` runs the topic's handler before answering. ``queued``: it stores the
    #: verified delivery, answers 200 and a job worker runs the handler (flash-sale scale; README).
    "WEBHOOK_PROCESSING": "inline",
    "API_RATE_LIMIT": "1000 per minute",
    "RATELIMIT_STORAGE_URI": None,
    "INVITATION_RATE_LIMIT": "20 per hour",
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_USE_TLS": False,
    "MAIL_DEFAULT_SENDER": "referrals@localhost",
    "LOG_FORMAT": "text",
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
}

#: Keys read from the environment, with the parser for each value.
_ENV_PARSERS: dict[str, t.Callable[[str], t.Any]] = {
    "SHOPIFY_API_KEY": str,
    "SHOPIFY_API_SECRET": str,
    "SHOPIFY_API_SECRET_OLD": str,
    "SHOPIFY_SCOPES": str,
    "SHOPIFY_API_VERSION": str,
    "APP_URL": str,
    "APP_PROXY_PREFIX": str,
    "SECRET_KEY": str,
    "DEFAULT_PHONE_REGION": str,
    "REWARD_TEST_ORDERS": lambda v: parse_bool(v),
    "TOKEN_ENCRYPTION_KEY": str,
    "HMAC_TIMESTAMP_TOLERANCE": int,
    "SHOPIFY_BASE_URL_TEMPLATE": str,
    "POINT_VALUE": str,
    "REDIS_URL": str,
    "HUEY_IMMEDIATE": lambda v: parse_bool(v),
    # Job queue tuning, read with defaults by referral_plugin.jobs / rewards.sweeper (README: jobs section).
    "HUEY_SQLITE_PATH": str,
    "DISCOUNT_REQUEUE_AFTER_MINUTES": float,
    "WEBHOOK_PROCESSING": str,
    "API_RATE_LIMIT": str,
    "RATELIMIT_STORAGE_URI": str,
    "INVITATION_RATE_LIMIT": str,
    "MAIL_SERVER": str,
    "MAIL_PORT": int,
    "MAIL_USERNAME": str,
    "MAIL_PASSWORD": str,
    "MAIL_USE_TLS": lambda v: parse_bool(v),
    "MAIL_DEFAULT_SENDER": str,
    "LOG_FORMAT": str,
}


def parse_bool(value: str | bool | None) -> bool:
    """Read a boolean written as ``1/0``, ``true/false``, ``yes/no`` or ``on/off``."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalize_database_url(url: str) -> str:
    """Point bare PostgreSQL URLs at psycopg 3, the driver this app ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def build_config(
    instance_path: str, test_config: Mapping[str, t.Any] | None, environ: Mapping[str, str] | None = None
) -> dict[str, t.Any]:
    """Return the merged configuration, with demo mode decided and required secrets checked.

    :raise ConfigurationError: when ``SECRET_KEY`` is missing outside demo mode and testing.
    """
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(instance_path, "referral_plugin.sqlite")
    for key, parse in _ENV_PARSERS.items():
        raw = environ.get(key)
        if raw not in (None, ""):
            config[key] = parse(raw)
    if environ.get("DATABASE_URL"):
        config["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    if test_config:
        config.update(test_config)
        if test_config.get("DATABASE_URL") and "SQLALCHEMY_DATABASE_URI" not in test_config:
            # The documented name works in test_config as in the environment; the SQLAlchemy key wins.
            config["SQLALCHEMY_DATABASE_URI"] = test_config["DATABASE_URL"]
        if test_config.get("TESTING") and "HUEY_IMMEDIATE" not in test_config and not environ.get("HUEY_IMMEDIATE"):
            # A test client has no job consumer beside it: run jobs at commit (discount codes, emails), unless
            # the test asks for the queue.
            config["HUEY_IMMEDIATE"] = True
    config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(config["SQLALCHEMY_DATABASE_URI"])
    config["REWARD_TEST_ORDERS"] = parse_bool(config["REWARD_TEST_ORDERS"])
    config["WEBHOOK_PROCESSING"] = str(config["WEBHOOK_PROCESSING"] or "inline").strip().lower()
    if config["WEBHOOK_PROCESSING"] not in WEBHOOK_PROCESSING_MODES:
        raise ConfigurationError(
            f"WEBHOOK_PROCESSING must be one of {', '.join(WEBHOOK_PROCESSING_MODES)}, "
            f"not {config['WEBHOOK_PROCESSING']!r}."
        )

    has_credentials = bool(config["SHOPIFY_API_KEY"] or config["SHOPIFY_API_SECRET"])
    config.setdefault("DEMO_MODE", not has_credentials)
    if config["DEMO_MODE"]:
        config["SHOPIFY_API_KEY"] = config["SHOPIFY_API_KEY"] or DEMO_API_KEY
        config["SHOPIFY_API_SECRET"] = config["SHOPIFY_API_SECRET"] or DEMO_API_SECRET
        # A fresh key per start: demo sessions and cookies need not survive a restart.
        config["SECRET_KEY"] = config["SECRET_KEY"] or secrets.token_hex(32)
    _require(config, "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "SECRET_KEY")
    # Written "a, b" or one per line in an env file, Shopify wants "a,b": spaces would reach its authorize URL.
    config["SHOPIFY_SCOPES"] = ",".join(s.strip() for s in str(config["SHOPIFY_SCOPES"]).split(",") if s.strip())
    config["APP_URL"] = str(config["APP_URL"]).rstrip("/")
    config["APP_PROXY_PREFIX"] = "/" + str(config["APP_PROXY_PREFIX"]).strip("/")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Wait for the writer lock instead of failing at once when webhooks arrive together.
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        connect_args = dict(options.get("connect_args", {}))
        connect_args.setdefault("timeout", 30)
        options["connect_args"] = connect_args
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    return config


def _require(config: Mapping[str, t.Any], *keys: str) -> None:
    """Fail fast, naming the first missing variable."""
    for key in keys:
        if not config.get(key):
            raise ConfigurationError(
                f"{key} is required: set the {key} environment variable "
                "(or unset SHOPIFY_API_KEY and SHOPIFY_API_SECRET to run the demo)."
            )
