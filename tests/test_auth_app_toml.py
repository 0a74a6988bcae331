"""``shopify.app.toml`` declares what the app does: scopes, callback, webhook topics, app proxy."""

from __future__ import annotations

import tomllib
import typing as t
from pathlib import Path

import pytest

from referral_plugin.config import DEFAULTS

TOML = Path(__file__).resolve().parent.parent / "shopify.app.toml"
HANDLED_TOPICS = {"customers/create", "orders/paid", "orders/cancelled", "refunds/create", "app/uninstalled"}
COMPLIANCE_TOPICS = {"customers/data_request", "customers/redact", "shop/redact"}


@pytest.fixture(scope="module")
def toml() -> dict[str, t.Any]:
    """Return the parsed app configuration."""
    with TOML.open("rb") as handle:
        return tomllib.load(handle)


def test_embedded_managed_install(toml: dict[str, t.Any]) -> None:
    """The app is embedded and uses managed installation, with a client id placeholder to fill in."""
    assert toml["embedded"] is True
    assert toml["client_id"]
    assert toml["application_url"].startswith("https://")
    assert toml["access_scopes"]["use_legacy_install_flow"] is False


def test_scopes_match_config(toml: dict[str, t.Any]) -> None:
    """The declared scopes are exactly the ones the app requests (SHOPIFY_SCOPES)."""
    declared = set(toml["access_scopes"]["scopes"].split(","))
    assert declared == set(DEFAULTS["SHOPIFY_SCOPES"].split(","))


def test_redirect_url_is_the_callback(toml: dict[str, t.Any]) -> None:
    """The OAuth redirect URL is the app's /auth/callback on the application URL."""
    base = toml["application_url"].rstrip("/")
    assert toml["auth"]["redirect_urls"] == [f"{base}/auth/callback"]


def test_webhook_topics(toml: dict[str, t.Any]) -> None:
    """Every handled topic and every compliance topic is delivered to /webhooks, at the configured API version."""
    webhooks = toml["webhooks"]
    assert webhooks["api_version"] == DEFAULTS["SHOPIFY_API_VERSION"]
    topics: set[str] = set()
    compliance: set[str] = set()
    for subscription in webhooks["subscriptions"]:
        assert subscription["uri"] == "/webhooks"
        topics.update(subscription.get("topics", []))
        compliance.update(subscription.get("compliance_topics", []))
    assert topics == HANDLED_TOPICS
    assert compliance == COMPLIANCE_TOPICS


def test_app_proxy(toml: dict[str, t.Any]) -> None:
    """The storefront path /apps/referrals is proxied to /proxy, matching APP_PROXY_PREFIX."""
    proxy = toml["app_proxy"]
    assert proxy["url"] == "/proxy"
    assert f"/{proxy['prefix']}/{proxy['subpath']}" == DEFAULTS["APP_PROXY_PREFIX"]
