"""Fixtures for the dashboard tests: session tokens for the shop and a builder of program history."""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from tests.shopify_actions import ShopifyActions

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """Return the aware UTC datetime written ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class History:
    """Write program history rows straight into the tables, for report tests that need exact times."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self._ids = itertools.count(1000)
        campaign = db.session.query(Campaign).filter_by(shop_id=shop.id, is_default=True).one_or_none()
        if campaign is None:
            campaign = Campaign(shop_id=shop.id, token="DEFLT", name="Default", is_default=True)
            db.session.add(campaign)
            db.session.flush()
        self.campaign = campaign

    def customer(self, email: str, first_name: str | None = None, *, created: str = "2026-10-01 00:00") -> Customer:
        """Add a customer."""
        customer = Customer(shop_id=self.shop.id, shopify_customer_id=next(self._ids), email=email,
                            email_canonical=email, first_name=first_name, created_at=at(created))
        db.session.add(customer)
        db.session.flush()
        return customer

    def advocate(self, email: str, first_name: str | None = None) -> tuple[Customer, ReferralCode]:
        """Add a customer with a referral code."""
        customer = self.customer(email, first_name)
        code = ReferralCode(shop_id=self.shop.id, campaign_id=self.campaign.id, customer_id=customer.id,
                            code=f"CODE{customer.id}")
        db.session.add(code)
        db.session.flush()
        return customer, code

    def click(self, code: ReferralCode, when: str) -> None:
        """Add a click on ``code``."""
        db.session.add(Click(shop_id=self.shop.id, referral_code_id=code.id, visitor_hash="x" * 64,
                             created_at=at(when)))

    def invite(self, advocate: Customer, email: str, when: str) -> None:
        """Add an invitation."""
        db.session.add(Invitation(shop_id=self.shop.id, campaign_id=self.campaign.id, advocate_id=advocate.id,
                                  channel="email", identifier=email, source="widget", invited_at=at(when)))

    def referral(self, advocate: Customer, code: ReferralCode, friend_email: str, when: str,
                 status: str = ReferralStatus.PENDING, **fields: t.Any) -> Referral:
        """Bind a new friend to ``advocate``."""
        friend = self.customer(friend_email, created=when)
        referral = Referral(shop_id=self.shop.id, campaign_id=self.campaign.id, referral_code_id=code.id,
                            advocate_id=advocate.id, friend_id=friend.id, source="discount_code", status=status,
                            created_at=at(when), **fields)
        db.session.add(referral)
        db.session.flush()
        return referral

    def order(self, referral: Referral, total: str, when: str, decision: str = "qualified",
              reason: str | None = None) -> OrderAttribution:
        """Attribute a paid order to ``referral``."""
        order_id = next(self._ids)
        referral.shopify_order_id = order_id
        referral.order_name = f"#{order_id}"
        referral.order_total = Decimal(total)
        referral.order_subtotal = Decimal(total)
        attribution = OrderAttribution(shop_id=self.shop.id, shopify_order_id=order_id, order_name=f"#{order_id}",
                                       referral_id=referral.id, referral_code_id=referral.referral_code_id,
                                       advocate_id=referral.advocate_id, friend_id=referral.friend_id,
                                       source=referral.source, decision=decision, reason=reason,
                                       evidence={"discount_codes": ["CODE"]}, subtotal=Decimal(total),
                                       total=Decimal(total), currency="USD", created_at=at(when))
        db.session.add(attribution)
        db.session.flush()
        return attribution

    def entry(self, referral: Referral | None, customer: Customer, entry_type: str, when: str, *,
              points: int = 0, amount: str = "0", kind: str = RewardKind.POINTS, side: str = Side.ADVOCATE,
              related: LedgerEntry | None = None, available_at: dt.datetime | None = None) -> LedgerEntry:
        """Add a ledger row."""
        row = LedgerEntry(shop_id=self.shop.id, customer_id=customer.id,
                          referral_id=referral.id if referral else None, campaign_id=self.campaign.id,
                          entry_type=entry_type, side=side, reward_kind=kind, points=points, amount=Decimal(amount),
                          idempotency_key=f"test:{next(self._ids)}", related_entry_id=related.id if related else None,
                          available_at=available_at, created_at=at(when))
        db.session.add(row)
        db.session.flush()
        return row

    def rewarded(self, referral: Referral, advocate: Customer, total: str, when: str) -> None:
        """Record a qualified order with 100 points to the advocate and 50 to the friend."""
        self.order(referral, total, when)
        referral.status = ReferralStatus.REWARDED
        friend = db.session.get(Customer, referral.friend_id)
        assert friend is not None
        self.entry(referral, advocate, EntryType.GRANT, when, points=100)
        self.entry(referral, friend, EntryType.GRANT, when, points=50, side=Side.FRIEND)


@pytest.fixture
def history(shop: Shop) -> History:
    """Return a history builder for the test shop."""
    return History(shop)


class Dashboard:
    """Call the dashboard as the embedded admin does: documents with ``id_token``, XHR with a bearer token."""

    def __init__(self, client: FlaskClient, shopify: ShopifyActions) -> None:
        self.client = client
        self.shopify = shopify

    def get(self, path: str, shop: str | None = None, **params: t.Any) -> t.Any:
        """Load a dashboard document."""
        token = self.shopify.session_token(shop) if shop else self.shopify.session_token()
        return self.client.get(path, query_string={"id_token": token, **params})

    def api(self, path: str, shop: str | None = None, **params: t.Any) -> t.Any:
        """Call a dashboard JSON endpoint."""
        token = self.shopify.session_token(shop) if shop else self.shopify.session_token()
        return self.client.get(path, query_string=params, headers={"Authorization": f"Bearer {token}"})

    def post(self, path: str, data: dict[str, t.Any] | list[tuple[str, str]], shop: str | None = None,
             csrf: bool = True) -> t.Any:
        """Submit a dashboard form with a fresh token and the CSRF token the pages embed."""
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            page = self.get("/admin/settings", shop)
            fields.append(("csrf_token", csrf_from(page.get_data(as_text=True))))
        token = self.shopify.session_token(shop) if shop else self.shopify.session_token()
        return self.client.post(path, query_string={"id_token": token}, data=MultiDict(fields))

    def post_json(self, path: str, body: t.Any, shop: str | None = None) -> t.Any:
        """Send a JSON write as the page's fetch does, with a bearer token."""
        token = self.shopify.session_token(shop) if shop else self.shopify.session_token()
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def csrf_from(html: str) -> str:
    """Return the CSRF token a dashboard page embeds."""
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


@pytest.fixture
def dashboard(client: FlaskClient, shopify: ShopifyActions) -> Dashboard:
    """Return a dashboard caller."""
    return Dashboard(client, shopify)


_webhook_ids = itertools.count(5001)


def customer_payload(email: str, first_name: str = "Pat") -> dict[str, t.Any]:
    """Return a copy of Shopify's ``customers/create`` sample for a new customer."""
    from tests.shopify_actions import load_payload

    payload = load_payload("customers_create")
    payload["id"] = next(_webhook_ids)
    payload.update({"email": email, "first_name": first_name, "note": None, "phone": None})
    address = dict(payload.get("default_address") or {})
    address.update({"customer_id": payload["id"], "address1": f"{payload['id']} Main Street"})
    payload["default_address"] = address
    return payload


def paid_order(customer: dict[str, t.Any], total: str, code: str | None = None) -> dict[str, t.Any]:
    """Return a copy of Shopify's ``orders/paid`` sample: paid, not a test, for ``customer``."""
    from tests.shopify_actions import load_payload

    order = load_payload("orders_paid")
    order.update({"id": next(_webhook_ids) * 1000, "test": False, "financial_status": "paid", "cancelled_at": None,
                  "cancel_reason": None, "note_attributes": [], "landing_site": None,
                  "total_price": total, "subtotal_price": total, "current_total_price": total,
                  "current_subtotal_price": total, "total_line_items_price": total,
                  "discount_codes": [{"code": code, "amount": "0.00", "type": "fixed_amount"}] if code else []})
    buyer = dict(order["customer"])
    buyer.update({"id": customer["id"], "email": customer["email"], "first_name": customer["first_name"],
                  "default_address": customer["default_address"], "phone": None})
    order.update({"customer": buyer, "email": customer["email"], "contact_email": customer["email"], "phone": None})
    return order


class Storefront:
    """Drive the test shop through signed webhooks and app-proxy calls, as Shopify would."""

    def __init__(self, shopify: ShopifyActions) -> None:
        self.shopify = shopify

    def register(self, email: str, first_name: str = "Pat") -> dict[str, t.Any]:
        """Send ``customers/create``."""
        payload = customer_payload(email, first_name)
        response = self.shopify.post_webhook("customers/create", payload)
        assert response.status_code == 200, response.get_data(as_text=True)
        return payload

    def code_of(self, payload: dict[str, t.Any]) -> str:
        """Return the customer's referral code."""
        db.session.expire_all()
        customer = db.session.query(Customer).filter_by(shopify_customer_id=payload["id"]).one()
        return db.session.query(ReferralCode).filter_by(customer_id=customer.id).one().code

    def click(self, code: str) -> None:
        """Follow an invite link through the app proxy."""
        response = self.shopify.proxy_get(f"r/{code}")
        assert response.status_code == 302, response.get_data(as_text=True)

    def pay(self, order: dict[str, t.Any]) -> None:
        """Send ``orders/paid``."""
        response = self.shopify.post_webhook("orders/paid", order)
        assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def storefront(shop: Shop, shopify: ShopifyActions) -> Storefront:
    """Return the Shopify-side driver for the installed test shop (with its default campaign)."""
    from referral_plugin.referrals.campaigns import ensure_default_campaign

    ensure_default_campaign(shop)
    db.session.commit()
    return Storefront(shopify)
