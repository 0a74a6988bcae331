"""The mandatory compliance webhooks and ``gdpr export``, driven as Shopify drives them."""

from __future__ import annotations

import json
import typing as t

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Base
from referral_plugin.models import Customer
from referral_plugin.models import DataExport
from referral_plugin.models import Invitation
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import Shop
from tests.privacy.conftest import ADA_ID
from tests.privacy.conftest import JOHN_EMAIL
from tests.privacy.conftest import JOHN_ID
from tests.privacy.conftest import ORDER_ID
from tests.privacy.conftest import World
from tests.privacy.conftest import ledger_totals
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload


def compliance_payload(name: str, shop: str = SHOP, **customer: t.Any) -> dict[str, t.Any]:
    """Return Shopify's sample compliance payload for ``shop``, with customer fields replaced."""
    payload = load_payload(name)
    payload["shop_domain"] = shop
    if customer:
        payload["customer"].update(customer)
    return payload


def all_json_text() -> str:
    """Return every stored JSON document (evidence, exports) as one string."""
    chunks: list[str] = []
    for column in (Referral.evidence, OrderAttribution.evidence, DataExport.payload):
        chunks += [json.dumps(value) for value in db.session.execute(select(column)).scalars()]
    return "\n".join(chunks)


def test_customers_redact_erases_personal_data_and_keeps_totals(world: World, shopify: ShopifyActions) -> None:
    """John's profile, the invitations naming him, evidence and exports lose his data; the ledger is unchanged."""
    before = ledger_totals(world.shop.id)
    response = shopify.post_webhook("customers/redact", compliance_payload("customers_redact"))
    assert response.status_code == 200
    db.session.expire_all()

    john = db.session.get(Customer, world.friend.id)
    assert john is not None and john.redacted_at is not None
    assert (john.email, john.email_canonical, john.phone, john.first_name, john.last_name, john.address_hash) == (
        None, None, None, None, None, None)
    assert john.shopify_customer_id == JOHN_ID  # the key stays so a later webhook finds nothing to add back
    identifiers = set(db.session.execute(select(Invitation.identifier)).scalars())
    assert JOHN_EMAIL not in identifiers and "14155552671" not in identifiers
    assert "zoe@example.org" in identifiers  # another friend's invitation is not his data
    names = set(db.session.execute(select(Invitation.name)).scalars())
    assert "Johnny" not in names and "Johnny mobile" not in names
    stored = all_json_text()
    assert JOHN_EMAIL not in stored and "John" not in stored
    assert world.code in stored  # the referral code is not personal data
    assert db.session.execute(select(DataExport)).first() is None
    assert ledger_totals(world.shop.id) == before

    ada = db.session.execute(select(Customer).where(Customer.shopify_customer_id == ADA_ID)).scalar_one()
    assert ada.email == "ada@example.com" and ada.redacted_at is None


def test_customers_redact_is_idempotent_and_tolerates_unknowns(world: World, shopify: ShopifyActions) -> None:
    """A repeat (new webhook id), an unknown customer and an unknown shop are all answered 200."""
    payload = compliance_payload("customers_redact")
    assert shopify.post_webhook("customers/redact", payload).status_code == 200
    db.session.expire_all()
    first = db.session.get(Customer, world.friend.id)
    assert first is not None
    redacted_at = first.redacted_at
    assert shopify.post_webhook("customers/redact", payload).status_code == 200
    db.session.expire_all()
    again = db.session.get(Customer, world.friend.id)
    assert again is not None and again.redacted_at == redacted_at
    unknown = compliance_payload("customers_redact", id=123456789, email="nobody@example.com")
    assert shopify.post_webhook("customers/redact", unknown).status_code == 200
    elsewhere = compliance_payload("customers_redact", shop="unknown-shop.myshopify.com")
    assert shopify.post_webhook("customers/redact", elsewhere, shop="unknown-shop.myshopify.com").status_code == 200


def test_redacting_the_advocate_removes_names_they_typed(world: World, shopify: ShopifyActions) -> None:
    """Ada's profile is erased and names she typed for friends go; her friends' identifiers stay for attribution."""
    payload = compliance_payload("customers_redact", id=ADA_ID, email="ada@example.com", phone=None)
    payload["orders_to_redact"] = []
    assert shopify.post_webhook("customers/redact", payload).status_code == 200
    db.session.expire_all()
    ada = db.session.get(Customer, world.advocate.id)
    assert ada is not None and ada.email is None and ada.first_name is None and ada.address_hash is None
    invitations = list(db.session.execute(select(Invitation)).scalars())
    assert {i.name for i in invitations} == {None}
    assert JOHN_EMAIL in {i.identifier for i in invitations}


def test_orders_to_redact_scrub_the_order_evidence(world: World, shopify: ShopifyActions) -> None:
    """Evidence stored for an order in ``orders_to_redact`` loses its personal data even for an unknown customer."""
    payload = compliance_payload("customers_redact", id=5550001, email=None, phone=None)
    payload["orders_to_redact"] = [ORDER_ID]
    assert shopify.post_webhook("customers/redact", payload).status_code == 200
    db.session.expire_all()
    evidence = db.session.execute(select(OrderAttribution.evidence)).scalar_one()
    assert evidence is not None
    assert evidence["customer"] == {"email": "[redacted]", "first_name": "[redacted]"}
    assert evidence["note"] == "[redacted]"
    assert evidence["discount_codes"] == [world.code]


def test_data_request_stores_everything_held_once(world: World, shopify: ShopifyActions) -> None:
    """The export holds John's profile, invitations received, referral, ledger and balance; repeats add nothing."""
    payload = compliance_payload("customers_data_request")
    assert shopify.post_webhook("customers/data_request", payload).status_code == 200
    assert shopify.post_webhook("customers/data_request", payload).status_code == 200

    [export] = db.session.execute(select(DataExport).where(DataExport.data_request_id == "9999")).scalars()
    data = export.payload
    assert export.shopify_customer_id == JOHN_ID and data["data_request_id"] == "9999"
    assert data["orders_requested"] == [299938, 280263, 220458]
    assert data["customer"]["email"] == JOHN_EMAIL and data["customer"]["first_name"] == "John"
    assert {i["identifier"] for i in data["invitations_received"]} == {JOHN_EMAIL, "14155552671"}
    assert all(i["advocate_shopify_customer_id"] == ADA_ID for i in data["invitations_received"])
    [as_friend] = data["referrals_as_friend"]
    assert as_friend["advocate_shopify_customer_id"] == ADA_ID and as_friend["order_name"] == "#1001"
    assert [(e["type"], e["side"], e["points"]) for e in data["ledger"]] == [("grant", "friend", 50)]
    assert data["points_balance"] == 50
    [order] = data["order_attributions"]
    assert order["shopify_order_id"] == ORDER_ID and order["decision"] == "qualified"
    assert data["referral_codes"] == [] and data["referrals_as_advocate"] == [] and data["invitations_sent"] == []


def test_data_request_for_the_advocate_lists_codes_clicks_and_invitations(world: World,
                                                                           shopify: ShopifyActions) -> None:
    """Ada's export lists her code with its clicks, the friends she invited and the referral she made."""
    payload = compliance_payload("customers_data_request", id=ADA_ID, email="ada@example.com")
    payload["data_request"] = {"id": 10001}
    assert shopify.post_webhook("customers/data_request", payload).status_code == 200
    data = db.session.execute(select(DataExport.payload).where(DataExport.data_request_id == "10001")).scalar_one()
    assert data["referral_codes"] == [{**data["referral_codes"][0], "code": world.code, "clicks": 1}]
    assert {i["identifier"] for i in data["invitations_sent"]} == {JOHN_EMAIL, "14155552671", "zoe@example.org"}
    [as_advocate] = data["referrals_as_advocate"]
    assert as_advocate["friend_shopify_customer_id"] == JOHN_ID and as_advocate["status"] == "rewarded"
    assert data["points_balance"] == 100


def shop_rows(shop_id: int, domain: str) -> dict[str, int]:
    """Count, per table, the rows that belong to the shop (by id or by domain)."""
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        conditions = []
        if "shop_id" in table.c:
            conditions.append(table.c.shop_id == shop_id)
        if "shop_domain" in table.c:
            conditions.append(table.c.shop_domain == domain)
        if table.name == "shops":
            conditions.append(table.c.id == shop_id)
        for condition in conditions:
            counts[table.name] = counts.get(table.name, 0) + int(
                db.session.execute(select(func.count()).select_from(table).where(condition)).scalar_one())
    return counts


def test_shop_redact_deletes_every_row_of_the_shop_only(world: World, other_world: World,
                                                        shopify: ShopifyActions) -> None:
    """Every table loses the shop's rows (deliveries and API keys too); the other shop keeps all of its rows."""
    shop_id, other_id = world.shop.id, other_world.shop.id
    other_before = shop_rows(other_id, OTHER_SHOP)
    assert shop_rows(shop_id, SHOP)["ledger_entries"] == 2 and shop_rows(shop_id, SHOP)["api_keys"] == 1

    response = shopify.post_webhook("shop/redact", compliance_payload("shop_redact"))
    assert response.status_code == 200
    db.session.expire_all()

    assert sum(shop_rows(shop_id, SHOP).values()) == 0
    assert shop_rows(other_id, OTHER_SHOP) == other_before
    assert db.session.execute(select(Shop.shopify_domain)).scalars().all() == [OTHER_SHOP]


def test_shop_redact_is_idempotent_and_tolerates_an_unknown_shop(world: World, shopify: ShopifyActions) -> None:
    """A repeat of shop/redact and one for a shop never seen are both answered 200 and change nothing else."""
    assert shopify.post_webhook("shop/redact", compliance_payload("shop_redact")).status_code == 200
    assert shopify.post_webhook("shop/redact", compliance_payload("shop_redact")).status_code == 200
    unknown = "never-installed.myshopify.com"
    assert shopify.post_webhook("shop/redact", compliance_payload("shop_redact", shop=unknown),
                                shop=unknown).status_code == 200
    assert db.session.execute(select(Shop)).first() is None


def test_gdpr_export_cli_prints_the_customers_json(app: Flask, world: World, runner: FlaskCliRunner) -> None:
    """``flask gdpr export <shop> <customer-id>`` prints the same export as JSON; unknown shops fail cleanly."""
    result = runner.invoke(args=["gdpr", "export", SHOP, str(JOHN_ID)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shop"] == SHOP and data["customer"]["email"] == JOHN_EMAIL and data["points_balance"] == 50

    missing = runner.invoke(args=["gdpr", "export", "nope.myshopify.com", "1"])
    assert missing.exit_code != 0 and "nope.myshopify.com" in missing.output
    bad = runner.invoke(args=["gdpr", "export", "https://evil.example.com", "1"])
    assert bad.exit_code != 0
