"""Fixtures for the integrator API: shops with keys, customers, and a client that sends the key."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from referral_plugin.apikeys import create_key
from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.customers import upsert_customer
from tests.conftest import make_shop
from tests.shopify_actions import OTHER_SHOP


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Use India as the default phone region, as Capillary's seed numbers are Indian."""
    return {**app_config, "DEFAULT_PHONE_REGION": "IN"}


class ApiClient:
    """A test client that authenticates every call with one API key."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.key = key

    def headers(self, extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the auth header plus ``extra``."""
        return {"X-Api-Key": self.key, **(extra or {})}

    def get(self, path: str, **kwargs: t.Any) -> TestResponse:
        """GET with the key."""
        return self.client.get(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, **kwargs: t.Any) -> TestResponse:
        """POST with the key."""
        return self.client.post(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)


def add_customer(shop: Shop, shopify_id: int, *, email: str | None = None, phone: str | None = None,
                 first_name: str | None = None, last_name: str | None = None) -> Customer:
    """Create a customer of ``shop`` through the engine and commit."""
    customer = upsert_customer(shop, shopify_id, email=email, phone=phone, first_name=first_name,
                               last_name=last_name)
    db.session.commit()
    return customer


@pytest.fixture
def api_shop(shop: Shop) -> Shop:
    """Return the installed test shop with its default campaign."""
    ensure_default_campaign(shop)
    db.session.commit()
    return shop


@pytest.fixture
def api_key(api_shop: Shop) -> str:
    """Return a live API key of the test shop."""
    created = create_key(api_shop, "tests")
    db.session.commit()
    return created.key


@pytest.fixture
def api(client: FlaskClient, api_key: str) -> ApiClient:
    """Return a client authenticated as the test shop."""
    return ApiClient(client, api_key)


@pytest.fixture
def other_shop(app: Flask) -> Shop:
    """Return a second installed shop with its default campaign."""
    shop = make_shop(OTHER_SHOP)
    ensure_default_campaign(shop)
    db.session.commit()
    return shop


@pytest.fixture
def other_api(client: FlaskClient, other_shop: Shop) -> ApiClient:
    """Return a client authenticated as the second shop."""
    created = create_key(other_shop, "other")
    db.session.commit()
    return ApiClient(client, created.key)


@pytest.fixture
def advocate(api_shop: Shop) -> Customer:
    """Return the seed's referring customer: mobile 7999836466 (India), first name ``shikar``."""
    return add_customer(api_shop, 5001, phone="+917999836466", first_name="shikar", last_name="",
                        email=None)
