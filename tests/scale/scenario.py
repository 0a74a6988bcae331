"""Build the data of a referral scenario and the Shopify payloads that drive it (tests/scale and bench/)."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"


def sample(name: str) -> dict[str, t.Any]:
    """Return a copy of one of Shopify's sample payloads."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def install(domain: str, token: str = "shpat_scale_token") -> Shop:
    """Install ``domain`` through AUTH's ``install_shop`` (which also creates the default campaign)."""
    from referral_plugin.installs import install_shop

    return install_shop(domain, token, SCOPES)


def advocate_with_code(shop: Shop, shopify_customer_id: int, email: str) -> tuple[Customer, ReferralCode]:
    """Create a customer with a referral code in the default campaign, and commit."""
    from referral_plugin.referrals.codes import get_or_create_code
    from referral_plugin.referrals.customers import upsert_customer

    customer = upsert_customer(shop, shopify_customer_id, email=email, first_name="Ada", last_name="Advocate")
    code = get_or_create_code(shop, customer)
    db.session.commit()
    return customer, code


def customer_payload(shopify_customer_id: int, email: str, *, first_name: str = "Fran") -> dict[str, t.Any]:
    """Return a ``customers/create`` payload for a new customer."""
    payload = sample("customers_create")
    payload.update(
        {
            "id": shopify_customer_id,
            "email": email,
            "first_name": first_name,
            "last_name": "Friend",
            "phone": None,
            "admin_graphql_api_id": f"gid://shopify/Customer/{shopify_customer_id}",
        }
    )
    if isinstance(payload.get("default_address"), dict):
        payload["default_address"]["customer_id"] = shopify_customer_id
    return payload


def paid_order_payload(
    order_id: int, friend_id: int, friend_email: str, code: str, *, subtotal: str = "120.00"
) -> dict[str, t.Any]:
    """Return an ``orders/paid`` payload: a friend's first order, paid, using the advocate's code."""
    order = sample("orders_paid")
    order.update(
        {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{order_id % 100000}",
            "order_number": order_id % 100000,
            "email": friend_email,
            "contact_email": friend_email,
            "financial_status": "paid",
            "test": False,
            "cancelled_at": None,
            "cancel_reason": None,
            "subtotal_price": subtotal,
            "current_subtotal_price": subtotal,
            "total_price": subtotal,
            "current_total_price": subtotal,
            "currency": "USD",
            "discount_codes": [{"code": code, "amount": "10.00", "type": "fixed_amount"}],
            "note_attributes": [],
            "landing_site": f"/?ref={code}",
        }
    )
    customer = order.get("customer") or {}
    customer.update(
        {
            "id": friend_id,
            "email": friend_email,
            "first_name": "Fran",
            "last_name": "Friend",
            "phone": None,
            "admin_graphql_api_id": f"gid://shopify/Customer/{friend_id}",
        }
    )
    order["customer"] = customer
    return order


def earning_rows_by_side(shop: Shop) -> dict[str, int]:
    """Count the shop's earning rows (grants and holds) per side: exactly-once means one per side per order."""
    db.session.expire_all()
    rows = db.session.execute(
        select(LedgerEntry.side, func.count())
        .where(LedgerEntry.shop_id == shop.id, LedgerEntry.entry_type.in_([EntryType.GRANT, EntryType.HOLD]))
        .group_by(LedgerEntry.side)
    ).all()
    return {str(side): int(count) for side, count in rows}


def count(model: type[t.Any], shop: Shop) -> int:
    """Count the shop's rows of ``model``."""
    return int(db.session.scalar(select(func.count()).select_from(model).where(model.shop_id == shop.id)) or 0)


__all__ = [
    "Customer",
    "OrderAttribution",
    "Referral",
    "ReferralCode",
    "advocate_with_code",
    "count",
    "customer_payload",
    "earning_rows_by_side",
    "install",
    "paid_order_payload",
]
