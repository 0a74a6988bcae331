"""Audit as Shopify: the compliance topics' effects, in both processing modes, and their timing around reinstalls."""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import responses as responses_lib
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Customer
from referral_plugin.models import DataExport
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

ADVOCATE = 7101
FRIEND = 7102
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"


@pytest.fixture(params=["inline", "queued"])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run every scenario with handlers in the request and with handlers in a job (run at commit)."""
    return {**app_config, "WEBHOOK_PROCESSING": request.param}


def _ok(response: t.Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)


def _compliance(name: str, customer_id: int | None = None, email: str | None = None) -> dict[str, t.Any]:
    payload = load_payload(name)
    payload["shop_domain"] = SHOP
    if customer_id is not None:
        payload["customer"] = {"id": customer_id, "email": email, "phone": None}
    return payload


def _reinstall(client: FlaskClient) -> None:
    """Install the shop again through OAuth, with ``responses`` playing Shopify's token endpoint."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses_lib.POST, TOKEN_URL, json={"access_token": "shpat_again", "scope": "read_customers"})
        begin = client.get("/auth/install", query_string=signed_admin_query({"shop": SHOP}))
        assert begin.status_code == 302, begin.get_data(as_text=True)
        state = parse_qs(urlsplit(begin.headers["Location"]).query)["state"][0]
        done = client.get("/auth/callback", query_string=signed_admin_query({"shop": SHOP, "code": "c0de",
                                                                            "state": state}))
        assert done.status_code == 302, done.get_data(as_text=True)


def test_shop_redact_deletes_everything_and_later_deliveries_store_nothing(
        shopify: ShopifyActions, integrator: Integrator) -> None:
    """shop/redact after uninstall removes the shop and its customers; a late customers/create recreates nothing."""
    register(shopify, ADVOCATE, "ada@example.com")
    _ok(shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled")))
    _ok(shopify.post_webhook("shop/redact", _compliance("shop_redact")))
    assert db.session.execute(select(func.count(Shop.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 0
    register(shopify, FRIEND, "friend@example.com")
    _ok(shopify.post_webhook("shop/redact", _compliance("shop_redact")))
    assert db.session.execute(select(func.count(Shop.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 0


def test_late_shop_redact_does_not_wipe_a_reinstalled_shop(client: FlaskClient, shopify: ShopifyActions,
                                                           integrator: Integrator) -> None:
    """A shop/redact fired before the merchant reinstalled (a late retry) leaves the live shop and its data alone."""
    register(shopify, ADVOCATE, "ada@example.com")
    uninstalled_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=49)
    _ok(shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), triggered_at=uninstalled_at))
    _reinstall(client)
    fired = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    _ok(shopify.post_webhook("shop/redact", _compliance("shop_redact"), triggered_at=fired))
    shop = db.session.execute(select(Shop)).scalar_one()
    assert shop.is_installed
    assert db.session.execute(select(Customer.email)).scalars().all() == ["ada@example.com"]


def test_customers_redact_survives_a_late_order(shopify: ShopifyActions, integrator: Integrator) -> None:
    """After customers/redact, a late orders/paid naming the customer's email does not put personal data back."""
    register(shopify, ADVOCATE, "ada@example.com")
    register(shopify, FRIEND, "friend@example.com")
    code = integrator.code_of("ada@example.com")
    _ok(shopify.post_webhook("customers/redact", _compliance("customers_redact", FRIEND, "friend@example.com")))
    _ok(shopify.post_webhook("orders/paid", order_payload(880101, FRIEND, "friend@example.com", code=code)))
    friend = db.session.execute(select(Customer).where(Customer.shopify_customer_id == FRIEND)).scalar_one()
    assert (friend.email, friend.first_name, friend.last_name, friend.phone) == (None, None, None, None)
    assert friend.redacted_at is not None


def test_data_request_exports_once_per_request_and_changes_nothing(shopify: ShopifyActions,
                                                                   integrator: Integrator) -> None:
    """customers/data_request stores one export per data request id (new webhook ids too) and writes no rewards."""
    register(shopify, ADVOCATE, "ada@example.com")
    for _ in range(2):
        _ok(shopify.post_webhook("customers/data_request",
                                 _compliance("customers_data_request", ADVOCATE, "ada@example.com")))
    exports = db.session.execute(select(DataExport)).scalars().all()
    assert len(exports) == 1
    assert exports[0].payload["customer"]["email"] == "ada@example.com"
    assert exports[0].payload["data_request_id"] == "9999"
    assert db.session.execute(select(func.count(LedgerEntry.id))).scalar_one() == 0


def _csrf(client: FlaskClient) -> str:
    page = client.get("/admin/settings", query_string={"id_token": session_token(SHOP)}).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, "the dashboard names its CSRF token"
    return match.group(1)


def test_customers_redact_erases_staff_notes_naming_the_customer(client: FlaskClient, shopify: ShopifyActions,
                                                                 integrator: Integrator) -> None:
    """A staff point adjustment whose reason names the customer keeps its points but loses the text on redact."""
    register(shopify, ADVOCATE, "ada@example.com", first_name="Ada", last_name="Lovelace")
    reason = "Goodwill for Ada Lovelace (ada@example.com), parcel lost"
    response = client.post("/admin/settings/adjustments", query_string={"id_token": session_token(SHOP)},
                           data={"csrf_token": _csrf(client), "customer": "ada@example.com", "points": "25",
                                 "reason": reason})
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    assert integrator.summary(ADVOCATE)["totalPointEarnRefer"] == 0  # adjustments are not referral earnings
    _ok(shopify.post_webhook("customers/redact", _compliance("customers_redact", ADVOCATE, "ada@example.com")))
    notes = db.session.execute(select(LedgerEntry.note, LedgerEntry.points)).all()
    assert [points for _, points in notes] == [25]
    events = db.session.execute(select(AuditEvent.details)).scalars().all()
    stored = repr(notes) + repr(events)
    for fragment in ("ada@example.com", "Lovelace"):
        assert fragment not in stored, stored


def test_stored_data_requests_reach_the_merchant_through_the_cli(shopify: ShopifyActions, integrator: Integrator,
                                                                 runner: FlaskCliRunner) -> None:
    """``flask gdpr requests <shop>`` lists the stored data requests; ``--id`` prints the export to hand over."""
    register(shopify, ADVOCATE, "ada@example.com")
    empty = runner.invoke(args=["gdpr", "requests", SHOP])
    assert empty.exit_code == 0 and "No data requests" in empty.output
    _ok(shopify.post_webhook("customers/data_request",
                             _compliance("customers_data_request", ADVOCATE, "ada@example.com")))
    listed = runner.invoke(args=["gdpr", "requests", SHOP])
    assert listed.exit_code == 0, listed.output
    assert "9999" in listed.output and str(ADVOCATE) in listed.output
    shown = runner.invoke(args=["gdpr", "requests", SHOP, "--id", "9999"])
    assert shown.exit_code == 0, shown.output
    export = json.loads(shown.output)
    assert export["customer"]["email"] == "ada@example.com" and export["data_request_id"] == "9999"
    assert runner.invoke(args=["gdpr", "requests", SHOP, "--id", "nope"]).exit_code == 1
    assert runner.invoke(args=["gdpr", "requests", "evil.com"]).exit_code == 2
