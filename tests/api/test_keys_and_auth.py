"""API keys (CLI and services) and the three ways to authenticate with one."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from referral_plugin import apikeys
from referral_plugin.extensions import db
from referral_plugin.models import ApiKey
from referral_plugin.models import Shop
from tests.api.conftest import ApiClient

CAMPAIGNS = "/api/v1/campaigns"


def test_cli_create_prints_the_key_on_its_last_line_and_stores_only_its_hash(
        runner: FlaskCliRunner, client: FlaskClient, api_shop: Shop) -> None:
    """`api-key create` prints a working key last; the database holds its SHA-256 and prefix, never the key."""
    result = runner.invoke(args=["api-key", "create", api_shop.shopify_domain, "--name", "erp"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("rpk_") and len(key) >= 40
    row = db.session.scalars(select(ApiKey)).one()
    assert row.key_hash == apikeys.hash_key(key) and row.name == "erp"
    assert key.startswith(row.prefix + "_")
    assert key not in {row.key_hash, row.prefix, row.name}
    assert client.get(CAMPAIGNS, headers={"X-Api-Key": key}).status_code == 200


def test_cli_list_and_revoke(runner: FlaskCliRunner, client: FlaskClient, api_shop: Shop) -> None:
    """`api-key list` shows prefixes (not keys); `api-key revoke <prefix>` makes the key answer 401."""
    key = runner.invoke(args=["api-key", "create", api_shop.shopify_domain]).output.strip().splitlines()[-1]
    prefix = "_".join(key.split("_")[:2])
    listing = runner.invoke(args=["api-key", "list", api_shop.shopify_domain])
    assert prefix in listing.output and key not in listing.output and "active" in listing.output
    revoked = runner.invoke(args=["api-key", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in runner.invoke(args=["api-key", "list", api_shop.shopify_domain]).output
    assert client.get(CAMPAIGNS, headers={"X-Api-Key": key}).status_code == 401


def test_cli_refuses_unknown_shops_and_prefixes(runner: FlaskCliRunner, api_shop: Shop) -> None:
    """Unknown or malformed shops and unknown prefixes fail with a message, not a traceback."""
    assert runner.invoke(args=["api-key", "create", "nope.myshopify.com"]).exit_code != 0
    assert runner.invoke(args=["api-key", "create", "https://evil.example"]).exit_code != 0
    result = runner.invoke(args=["api-key", "revoke", "rpk_zzzzzzzz"])
    assert result.exit_code != 0 and "No API key" in result.output
    too_long = runner.invoke(args=["api-key", "create", api_shop.shopify_domain, "--name", "x" * 256])
    assert too_long.exit_code == 2 and "255 characters at most" in too_long.output
    assert too_long.exception is None or isinstance(too_long.exception, SystemExit)
    assert db.session.scalars(select(ApiKey)).all() == []


def test_keys_are_unguessable_and_distinct(api_shop: Shop) -> None:
    """Two keys differ in prefix and secret; the secret carries far more than 128 bits."""
    first = apikeys.create_key(api_shop).key
    second = apikeys.create_key(api_shop).key
    assert first != second and first.split("_")[1] != second.split("_")[1]
    assert len(first.split("_")[2]) * 5 > 128


@pytest.mark.parametrize("form", ["x-api-key", "bearer", "basic", "basic-username", "joy-header"])
def test_all_three_auth_forms_are_accepted(client: FlaskClient, api_key: str, form: str) -> None:
    """X-Api-Key, Bearer, HTTP Basic with the key as password (any username), and Joy's header authenticate."""
    headers = {
        "x-api-key": {"X-Api-Key": api_key},
        "bearer": {"Authorization": f"Bearer {api_key}"},
        "basic": {"Authorization": "Basic " + base64.b64encode(f"anyone:{api_key}".encode()).decode()},
        "basic-username": {"Authorization": "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()},
        "joy-header": {"X-Joy-Loyalty-App-Key": api_key},
    }[form]
    response = client.get(CAMPAIGNS, headers=headers)
    assert response.status_code == 200, response.get_json()


ENVELOPE_CHECKS = {
    "/v1.1/customer/referrals": lambda body: body["response"]["status"] == {
        "success": "false", "code": 401, "message": body["response"]["status"]["message"]},
    "/v2/customers/lookup/referrals?source=INSTORE&identifierName=mobile&identifierValue=1":
        lambda body: body["errors"][0]["code"] == 401 and body["data"] == [],
    "/rest_api/v2/referrals/analytics": lambda body: body["success"] is False
        and body["error"]["code"] == "INVALID_API_KEY",
    "/api/v1/campaigns": lambda body: body["error"]["code"] == "INVALID_API_KEY",
}


@pytest.mark.parametrize("path", list(ENVELOPE_CHECKS))
@pytest.mark.parametrize("headers", [
    {},
    {"X-Api-Key": "rpk_abcdefgh_wrongwrongwrongwrongwrongwrongwrong"},
    {"X-Api-Key": "not-a-key"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic !!!notbase64"},
])
def test_missing_or_wrong_key_is_401_in_the_routes_envelope(
        client: FlaskClient, api_key: str, path: str, headers: dict[str, str]) -> None:
    """Without a valid key every route answers 401 JSON in its own documented envelope."""
    method = client.post if path.startswith("/v1.1") else client.get
    response = method(path, headers=headers, json={"root": {"customer": []}})
    assert response.status_code == 401
    assert ENVELOPE_CHECKS[path](response.get_json())


def test_a_valid_key_with_a_mangled_secret_is_refused(client: FlaskClient, api_key: str) -> None:
    """The right prefix with a wrong secret is refused (the hash must match)."""
    mangled = api_key[:-1] + ("a" if api_key[-1] != "a" else "b")
    assert client.get(CAMPAIGNS, headers={"X-Api-Key": mangled}).status_code == 401


def test_revoked_key_is_401(client: FlaskClient, api_shop: Shop) -> None:
    """A revoked key stops working at once."""
    created = apikeys.create_key(api_shop)
    db.session.commit()
    assert client.get(CAMPAIGNS, headers={"X-Api-Key": created.key}).status_code == 200
    apikeys.revoke_key(created.api_key)
    db.session.commit()
    assert client.get(CAMPAIGNS, headers={"X-Api-Key": created.key}).status_code == 401


def test_uninstalled_shops_key_is_401(api: ApiClient, api_shop: Shop) -> None:
    """A key of a shop that uninstalled the app (or whose token was revoked) authenticates nothing."""
    assert api.get(CAMPAIGNS).status_code == 200
    api_shop.uninstalled_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    response = api.get(CAMPAIGNS)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "INVALID_API_KEY"


def test_last_used_at_is_recorded(api: ApiClient) -> None:
    """A successful call stamps the key's last use."""
    assert db.session.scalars(select(ApiKey)).one().last_used_at is None
    api.get(CAMPAIGNS)
    db.session.expire_all()
    assert db.session.scalars(select(ApiKey)).one().last_used_at is not None


def test_find_key_is_scoped_to_a_shop(api_shop: Shop, other_shop: Shop) -> None:
    """The dashboard's lookup by prefix never finds another shop's key."""
    created = apikeys.create_key(other_shop)
    db.session.commit()
    assert apikeys.find_key(created.api_key.prefix, other_shop) is not None
    assert apikeys.find_key(created.api_key.prefix, api_shop) is None
