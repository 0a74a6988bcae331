"""Seed the demo shop through the app's public surface, so its data is exactly what the real engine makes.

The demo shop is installed with a dummy token, then Shopify is played through ``app.test_client()``:
signed ``customers/create`` and ``orders/paid`` webhooks built from copies of Shopify's sample
payloads, and signed app-proxy calls (invite-link clicks, invitations). Afterwards the timestamps
are spread over the last six weeks (demo only) so the dashboard's per-day chart has a shape.

Every step tolerates a route or service that is not built yet: it is skipped with a printed note.
Re-running is safe: webhooks carry fixed ids (repeats are deduplicated by the intake), clicks are
only sent to a shop that has none, and the engine refuses duplicate invitations.
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import functools
import importlib
import json
import logging
import random
import typing as t
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy import update

from referral_plugin.config import DEMO_SHOP_DOMAIN
from referral_plugin.demo.signing import signed_proxy_query
from referral_plugin.demo.signing import webhook_headers
from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import utcnow

SAMPLES = Path(__file__).parent / "samples"
DEMO_TOKEN = "shpat_demo_offline_token"
#: The demo campaign's minimum order, so one seeded order is rejected as below it.
DEMO_MIN_ORDER = "20.00"
#: The default campaign's reward history, oldest first: points, then discount codes, then points again
#: behind a 14-day return window. Each phase's orders are placed while the campaign reads that way.
PHASES: dict[str, dict[str, t.Any]] = {
    "points": {},
    "discounts": {"advocate_reward_kind": "fixed_amount", "advocate_reward_value": "10.00",
                  "friend_reward_kind": "percentage", "friend_reward_value": "10"},
    "hold": {"advocate_reward_kind": "points", "advocate_reward_value": "100",
             "friend_reward_kind": "percentage", "friend_reward_value": "10", "hold_days": 14},
}
#: Referrals per advocate a day beyond which review is asked, only while the velocity orders are placed.
DEMO_VELOCITY_LIMIT = 2
#: When (days ago) the merchant switched to each later phase; an order's date decides its phase.
PHASE_STARTS = (("hold", 3.5), ("discounts", 10.5))
_ID_BASE = 7_100_000_000_000
_ORDER_BASE = 5_100_000_000_000

_FIRST = ["Ava", "Noah", "Mia", "Liam", "Zoe", "Ethan", "Lena", "Omar", "Ines", "Jonas", "Priya", "Mateo",
          "Hana", "Leo", "Sofia", "Ravi", "Clara", "Felix", "Amara", "Theo", "Yuki", "Nora", "Diego", "Elsa",
          "Kofi", "Maya", "Arjun", "Lucia", "Tomas", "Ingrid", "Kenji"]
_LAST = ["Martin", "Okafor", "Rossi", "Chen", "Dubois", "Walsh", "Fischer", "Haddad", "Silva", "Berg", "Nair",
         "Lopez", "Sato", "Novak", "Greco", "Kumar", "Meyer", "Brandt", "Diallo", "Laurent", "Tanaka", "Quinn",
         "Ramos", "Lind", "Mensah", "Olsen", "Patel", "Moreau", "Horvat", "Eriksen", "Mori"]
_CITIES = [("Ottawa", "ON", "CA", "K2P 2L8"), ("Toronto", "ON", "CA", "M5V 2T6"), ("Austin", "TX", "US", "78701"),
           ("Denver", "CO", "US", "80202"), ("Seattle", "WA", "US", "98101"), ("Boston", "MA", "US", "02108")]


@dataclass
class Person:
    """One demo customer."""

    index: int
    first_name: str
    last_name: str
    email: str
    address: dict[str, t.Any]
    signed_up_days_ago: float

    @property
    def shopify_id(self) -> int:
        """Return the demo customer's Shopify id."""
        return _ID_BASE + self.index


@dataclass
class DemoOrder:
    """One demo order: who paid, how much, and which referral evidence it carries."""

    number: int
    buyer: Person
    subtotal: str
    days_ago: float
    code_of: Person | None = None
    via: str = "discount_code"
    cancelled_days_ago: float | None = None
    #: Which campaign phase (:data:`PHASES`) the order is placed in.
    phase: str = "points"
    #: Percent of the subtotal the referral code takes off at checkout; None for the old flat $5.
    percent_off: int | None = None
    refunded_days_ago: float | None = None
    refund_amount: str | None = None
    #: Place this order with ``REVIEW_VELOCITY_LIMIT`` lowered to :data:`DEMO_VELOCITY_LIMIT`.
    velocity: bool = False

    @property
    def order_id(self) -> int:
        """Return the demo order's Shopify id."""
        return _ORDER_BASE + self.number


@dataclass
class Story:
    """Everything the demo shop goes through, decided up front so every run seeds the same story."""

    advocates: list[Person]
    friends: list[Person]
    invitations: list[tuple[Person, str, str, float]]  # advocate, email, name, days ago
    orders: list[DemoOrder]
    clicks: dict[int, list[float]] = field(default_factory=dict)  # advocate index -> days ago

    @property
    def people(self) -> list[Person]:
        """Return every customer, advocates first."""
        return [*self.advocates, *self.friends]


@dataclass
class SeedReport:
    """What seeding did, and the notes about what it skipped."""

    shop_domain: str
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    advocate_ids: list[int] = field(default_factory=list)


def build_story(seed: int = 2026) -> Story:
    """Return the demo shop's story: 8 advocates, 23 friends, their invitations, clicks and orders."""
    rng = random.Random(seed)
    people: list[Person] = []
    for index in range(25):
        people.append(_person(index, None, 0.0))
    advocates, friends = people[:8], people[8:]
    for offset, advocate in enumerate(advocates):
        advocate.signed_up_days_ago = 42 - offset * 0.8 - rng.random() * 0.5
    # Friends join over the following weeks, more of them recently (the program is catching on).
    for offset, friend in enumerate(friends):
        friend.signed_up_days_ago = max(0.4, 32 - offset * 1.85 - rng.random())
    # One friend signs up with the advocate's own mailbox in disguise (self-referral); two use throwaway
    # inboxes, which the fraud rules hold for the merchant's review.
    friends[16].email = advocates[2].email.replace("@", "+deals@")  # the advocate again, behind a +tag
    friends[13].email = f"{friends[13].first_name.lower()}{friends[13].index}@mailinator.com"
    friends[11].email = f"{friends[11].first_name.lower()}{friends[11].index}@yopmail.com"
    advocate_of = {friend.index: advocates[i % len(advocates)] for i, friend in enumerate(friends)}

    invitations: list[tuple[Person, str, str, float]] = []
    for friend in friends[:10] + [friends[14]]:
        advocate = advocate_of[friend.index]
        days = min(advocate.signed_up_days_ago - 0.2, friend.signed_up_days_ago + 0.5 + rng.random() * 2)
        invitations.append((advocate, friend.email, friend.first_name, days))
    for n, advocate in enumerate(advocates[:3]):
        invitations.append((advocate, f"friend{n + 1}.never.joined@example.com", f"Friend {n + 1}",
                            advocate.signed_up_days_ago - 2 - n * 3))

    orders: list[DemoOrder] = []
    number = 1001

    def add(buyer: Person, subtotal: str, code_of: Person | None, via: str = "discount_code",
            cancelled_after: float | None = None) -> None:
        nonlocal number
        days = max(0.1, buyer.signed_up_days_ago - 0.1 - rng.random() * 1.5)
        cancelled = None if cancelled_after is None else max(0.05, days - cancelled_after)
        orders.append(DemoOrder(number, buyer, subtotal, days, code_of, via, cancelled))
        number += 1

    for i, friend in enumerate(friends[:10]):
        add(friend, f"{45 + (i * 17) % 80}.00", advocate_of[friend.index])
    for friend in friends[10:12]:
        add(friend, "64.00", advocate_of[friend.index], via="landing_site")
    add(friends[12], "12.00", advocate_of[friends[12].index])  # below the minimum
    add(friends[13], "88.00", advocates[5])  # a throwaway inbox: held for review
    add(friends[15], "72.00", advocate_of[friends[15].index], cancelled_after=2.0)  # cancelled: reversed
    add(friends[16], "55.00", advocates[2])  # the advocate's own mailbox
    add(advocates[0], "39.00", advocates[0])  # an advocate using their own code
    add(friends[0], "33.00", advocate_of[friends[0].index])  # a repeat order: no second reward
    orders.sort(key=lambda order: -order.days_ago)

    clicks: dict[int, list[float]] = {}
    for advocate in advocates:
        count = 4 + rng.randrange(11)
        clicks[advocate.index] = sorted((rng.random() * (advocate.signed_up_days_ago - 0.05) for _ in range(count)),
                                        reverse=True)
    _add_late_friends(advocates, friends, orders)
    return Story(advocates, friends, invitations, orders, clicks)


def _person(index: int, address_of: Person | None, signed_up_days_ago: float) -> Person:
    """Return a friend who joins late; ``address_of`` is a customer whose shipping address they share."""
    city, province, country, zip_code = _CITIES[index % len(_CITIES)]
    first, last = _FIRST[index], _LAST[index]
    address = {"first_name": first, "last_name": last, "address1": f"{100 + index * 7} Demo Street",
               "address2": None, "city": city, "province_code": province, "province": province,
               "country_code": country, "country": country, "zip": zip_code, "phone": None,
               "name": f"{first} {last}", "company": None}
    if address_of is not None:
        address.update({key: address_of.address[key] for key in
                        ("address1", "city", "province_code", "province", "country_code", "country", "zip")})
    return Person(index, first, last, f"{first.lower()}.{last.lower()}@example.com", address, signed_up_days_ago)


def _add_late_friends(advocates: list[Person], friends: list[Person], orders: list[DemoOrder]) -> None:
    """Add the friends who order after the campaign changed (no randomness: earlier draws stay the same).

    Under discount rewards two friends order (one with the code, one through the link, so a percentage
    code is issued too); under the 14-day hold one friend's reward waits for the hold, one shares the
    address of another friend of the same advocate, and a third order for one advocate within a day
    trips the velocity rule. One early order is partly refunded.
    """
    number = 1001 + len(orders)
    late = [
        (_person(25, None, 10.0), advocates[1], 9.2, "discounts", "discount_code", False),
        (_person(26, None, 8.0), advocates[4], 7.1, "discounts", "landing_site", False),
        (_person(27, None, 3.0), advocates[5], 2.4, "hold", "discount_code", False),
        (_person(28, friends[3], 2.0), advocates[3], 1.5, "hold", "discount_code", False),
        (_person(29, None, 1.2), advocates[6], 0.9, "hold", "discount_code", True),
        (_person(30, None, 0.8), advocates[6], 0.5, "hold", "discount_code", True),
    ]
    for person, advocate, days, phase, via, velocity in late:
        friends.append(person)
        orders.append(DemoOrder(number, person, f"{60 + person.index}.00", days, advocate, via, phase=phase,
                                percent_off=10, velocity=velocity))
        number += 1
    for order in orders:
        order.phase = next((name for name, start in PHASE_STARTS if order.days_ago < start), "points")
        if order.phase != "points":
            order.percent_off = 10
    refunded = next(o for o in orders if o.buyer is friends[2])
    refunded.refunded_days_ago = max(0.05, refunded.days_ago - 3.0)
    refunded.refund_amount = "20.00"
    orders.sort(key=lambda order: -order.days_ago)


def _load_sample(name: str) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], copy.deepcopy(json.loads((SAMPLES / f"{name}.json").read_text())))


def _iso(days_ago: float, now: dt.datetime) -> str:
    return (now - dt.timedelta(days=days_ago)).replace(microsecond=0).isoformat()


def customer_payload(person: Person, now: dt.datetime) -> dict[str, t.Any]:
    """Return a ``customers/create`` payload for ``person``, from Shopify's sample."""
    payload = _load_sample("customers_create")
    address = dict(payload["default_address"], **person.address, id=person.shopify_id + 1,
                   customer_id=person.shopify_id, default=True)
    created = _iso(person.signed_up_days_ago, now)
    payload.update(id=person.shopify_id, email=person.email, first_name=person.first_name,
                   last_name=person.last_name, created_at=created, updated_at=created, state="enabled",
                   note=None, phone=None, addresses=[address], default_address=address,
                   admin_graphql_api_id=f"gid://shopify/Customer/{person.shopify_id}")
    return payload


def _money_set(amount: str, currency: str = "USD") -> dict[str, t.Any]:
    money = {"amount": amount, "currency_code": currency}
    return {"shop_money": dict(money), "presentment_money": dict(money)}


def order_payload(order: DemoOrder, now: dt.datetime, shop_domain: str, codes: dict[int, str],
                  *, cancelled: bool = False) -> dict[str, t.Any]:
    """Return an ``orders/paid`` (or ``orders/cancelled``) payload for ``order``, from Shopify's sample."""
    payload = _load_sample("orders_cancelled" if cancelled else "orders_paid")
    buyer = order.buyer
    created = _iso(order.days_ago, now)
    code = codes.get(order.code_of.index) if order.code_of is not None else None
    off = "5.00" if order.percent_off is None else f"{float(order.subtotal) * order.percent_off / 100:.2f}"
    discount = off if code and order.via == "discount_code" else "0.00"
    total = f"{float(order.subtotal) - float(discount):.2f}"
    line_item = dict(payload["line_items"][0], quantity=1, current_quantity=1, price=order.subtotal,
                     price_set=_money_set(order.subtotal), total_discount="0.00", discount_allocations=[])
    customer = dict(payload["customer"], id=buyer.shopify_id, email=buyer.email, first_name=buyer.first_name,
                    last_name=buyer.last_name, admin_graphql_api_id=f"gid://shopify/Customer/{buyer.shopify_id}",
                    default_address=dict(buyer.address, customer_id=buyer.shopify_id, default=True))
    payload.update(
        id=order.order_id, admin_graphql_api_id=f"gid://shopify/Order/{order.order_id}",
        name=f"#{order.number}", order_number=order.number, number=order.number - 1000,
        email=buyer.email, contact_email=buyer.email, customer=customer,
        billing_address=dict(buyer.address), shipping_address=dict(buyer.address),
        financial_status="paid", test=False, cancelled_at=None, cancel_reason=None, closed_at=None,
        created_at=created, processed_at=created, updated_at=created,
        subtotal_price=order.subtotal, current_subtotal_price=order.subtotal,
        subtotal_price_set=_money_set(order.subtotal), current_subtotal_price_set=_money_set(order.subtotal),
        total_line_items_price=order.subtotal, total_line_items_price_set=_money_set(order.subtotal),
        total_price=total, current_total_price=total, total_price_set=_money_set(total),
        current_total_price_set=_money_set(total), total_outstanding="0.00",
        total_discounts=discount, current_total_discounts=discount, total_discounts_set=_money_set(discount),
        current_total_discounts_set=_money_set(discount), total_tax="0.00", current_total_tax="0.00",
        tax_lines=[], shipping_lines=[], refunds=[], returns=[], fulfillments=[], line_items=[line_item],
        discount_codes=[], discount_applications=[], note_attributes=[], landing_site=None,
        landing_site_ref=None, referring_site=None, order_status_url=f"https://{shop_domain}/orders/demo",
        token=f"demo-order-{order.number}", cart_token=None, checkout_token=None,
        confirmation_number=f"DEMO{order.number}",
    )
    if code and order.via == "discount_code":
        kind = "fixed_amount" if order.percent_off is None else "percentage"
        value = discount if order.percent_off is None else f"{order.percent_off}.0"
        payload["discount_codes"] = [{"code": code, "amount": discount, "type": kind}]
        payload["discount_applications"] = [{"target_type": "line_item", "type": "discount_code",
                                             "value": value, "value_type": kind,
                                             "allocation_method": "across", "target_selection": "all",
                                             "code": code}]
    elif code:
        payload["landing_site"] = f"/?ref={code}"
        payload["referring_site"] = "https://www.instagram.com/"
    if cancelled:
        cancelled_at = _iso(order.cancelled_days_ago or 0.0, now)
        payload.update(cancelled_at=cancelled_at, updated_at=cancelled_at, cancel_reason="customer",
                       financial_status="refunded")
    return payload


def refund_payload(order: DemoOrder, now: dt.datetime) -> dict[str, t.Any]:
    """Return a ``refunds/create`` payload giving back ``order.refund_amount`` of ``order``, from Shopify's sample."""
    payload = _load_sample("refunds_create")
    amount = order.refund_amount or "0.00"
    created = _iso(order.refunded_days_ago or 0.0, now)
    refund_id = _ORDER_BASE + 900_000 + order.number
    item = dict(payload["refund_line_items"][0], id=refund_id + 1, quantity=1,
                line_item_id=order.order_id + 1, subtotal=float(amount), subtotal_set=_money_set(amount))
    transaction = dict(payload["transactions"][0], id=refund_id + 2, order_id=order.order_id, amount=amount,
                       currency="USD", created_at=created, processed_at=created, test=False,
                       admin_graphql_api_id=f"gid://shopify/OrderTransaction/{refund_id + 2}")
    payload.update(id=refund_id, order_id=order.order_id, created_at=created, processed_at=created,
                   note="One item arrived damaged", refund_line_items=[item], transactions=[transaction],
                   admin_graphql_api_id=f"gid://shopify/Refund/{refund_id}")
    return payload


class Seeder:
    """Play Shopify and the shoppers against the app to fill the demo shop."""

    def __init__(self, app: Flask, echo: t.Callable[[str], None] = print, *, now: dt.datetime | None = None) -> None:
        self.app = app
        self.echo = echo
        self.client = app.test_client()
        self.now = now or utcnow()
        self.shop_domain = demo_shop_domain(app)
        self.secret = str(app.config["SHOPIFY_API_SECRET"])
        self.prefix = str(app.config.get("APP_PROXY_PREFIX") or "/apps/referrals")
        self.report = SeedReport(self.shop_domain)
        self.story = build_story()
        #: Failed calls by what failed, reported once per kind at the end instead of once per call.
        self.failures: collections.Counter[str] = collections.Counter()

    def note(self, message: str) -> None:
        """Print and keep a note about a skipped or partial step."""
        self.report.notes.append(message)
        self.echo(f"  demo seed: {message}")

    def run(self) -> SeedReport:
        """Seed every step, in order, skipping what the app cannot do yet."""
        self.report.advocate_ids = [person.shopify_id for person in self.story.advocates]
        if not self.step("install the demo shop", self.install_shop):
            return self.report
        self.step("configure the campaign", self.configure_campaign)
        self.step("sign up advocates", lambda: self.sign_up(self.story.advocates, "advocates"))
        codes: dict[int, str] = {}

        def read_codes() -> None:
            codes.update(self.codes())

        # Invitations first: the widget visits they take also show each advocate their code.
        self.step("invite friends", self.invite_friends)
        self.step("read referral codes", read_codes)
        self.step("click invite links", lambda: self.click_links(codes))
        self.step("sign up friends", lambda: self.sign_up(self.story.friends, "friends"))
        self.step("place orders", lambda: self.place_orders(codes))
        for phase in ("discounts", "hold"):
            if self.step(f"change the campaign's rewards ({phase})", functools.partial(self.change_rewards, phase)):
                self.step(f"place orders ({phase})", functools.partial(self.place_orders, codes, phase))
        self.step("refund part of an order", self.refund_orders)
        self.step("spread timestamps", self.spread_timestamps)

        def count() -> None:
            self.report.counts = self.counts()

        self.step("count rows", count)
        for failure, times in sorted(self.failures.items()):
            self.note(f"{failure} ({times}x; the app's log has the details)")
        return self.report

    def step(self, name: str, action: t.Callable[[], None]) -> bool:
        """Run one seeding step; a failure (another owner's piece mid-build) is a note, not a crash."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the demo must start whatever state the other pieces are in
            with self.app.app_context():
                db.session.rollback()
            self.note(f"{name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            return False
        return True

    # --- steps ---------------------------------------------------------------------------------

    def install_shop(self) -> None:
        """Install the demo shop with a dummy offline token (it never reaches Shopify)."""
        with self.app.app_context():
            installs = _optional_module("referral_plugin.installs")
            if installs is not None and hasattr(installs, "install_shop"):
                installs.install_shop(self.shop_domain, DEMO_TOKEN, str(self.app.config["SHOPIFY_SCOPES"]))
            else:
                self.note("installs.install_shop is not built yet: creating the shop row directly")
                if db.session.execute(select(Shop).where(Shop.shopify_domain == self.shop_domain)).scalar() is None:
                    db.session.add(Shop(shopify_domain=self.shop_domain, installed_at=utcnow(),
                                        scopes=str(self.app.config["SHOPIFY_SCOPES"])))
                    db.session.commit()
            shop = db.session.execute(select(Shop).where(Shop.shopify_domain == self.shop_domain)).scalar_one()
            shop.name = "Demo Shop"
            shop.email = "owner@demo-shop.example.com"
            db.session.commit()

    def configure_campaign(self) -> None:
        """Give the default campaign a minimum order, the way a merchant would in the dashboard."""
        with self.app.app_context():
            campaigns = _optional_module("referral_plugin.referrals.campaigns")
            if campaigns is None or not hasattr(campaigns, "ensure_default_campaign"):
                self.note("campaigns are not built yet: no default campaign")
                return
            shop = self._shop()
            campaign = campaigns.ensure_default_campaign(shop)
            if str(campaign.min_order_subtotal) != DEMO_MIN_ORDER and hasattr(campaigns, "update_campaign"):
                campaigns.update_campaign(campaign, {"min_order_subtotal": DEMO_MIN_ORDER}, actor="demo")
            db.session.commit()

    def sign_up(self, people: list[Person], label: str) -> None:
        """Send a signed ``customers/create`` for each person."""
        statuses = [self.webhook("customers/create", customer_payload(p, self.now), f"demo-customer-{p.index}")
                    for p in people]
        if "ignored" in statuses:
            self.note(f"customers/create has no handler yet: {label} recorded as webhook deliveries only")

    def codes(self) -> dict[int, str]:
        """Return each advocate's referral code, as the engine made it."""
        with self.app.app_context():
            shop = self._shop()
            rows = db.session.execute(
                select(Customer.shopify_customer_id, ReferralCode.code)
                .join(ReferralCode, ReferralCode.customer_id == Customer.id)
                .where(Customer.shop_id == shop.id, ReferralCode.shop_id == shop.id)
            ).all()
        by_id = {int(shopify_id): code for shopify_id, code in rows if shopify_id is not None}
        codes = {p.index: by_id[p.shopify_id] for p in self.story.advocates if p.shopify_id in by_id}
        if not codes:
            self.note("no referral codes yet (engine not built): skipping clicks and referred orders")
        return codes

    def click_links(self, codes: dict[int, str]) -> None:
        """Visit each advocate's invite link a few times, as distinct anonymous visitors."""
        if not codes:
            return
        with self.app.app_context():
            shop = self._shop()
            if db.session.execute(select(Click.id).where(Click.shop_id == shop.id).limit(1)).first():
                return
        visitor = 0
        for advocate in self.story.advocates:
            code = codes.get(advocate.index)
            if code is None:
                continue
            for _ in self.story.clicks[advocate.index]:
                visitor += 1
                response = self.client.get(
                    f"/proxy/r/{code}?{signed_proxy_query(self.shop_domain, self.secret, path_prefix=self.prefix)}",
                    headers={"User-Agent": f"Mozilla/5.0 (demo visitor {visitor})"},
                    environ_base={"REMOTE_ADDR": f"198.51.{visitor // 200}.{visitor % 200 + 1}"},
                )
                if response.status_code == 404:
                    self.note("/proxy/r/<code> is not built yet: skipping clicks")
                    return

    def invite_friends(self) -> None:
        """Have advocates invite friends by email through the widget's invitation form."""
        for advocate, email, name, _days in self.story.invitations:
            query = signed_proxy_query(self.shop_domain, self.secret, customer_id=advocate.shopify_id,
                                       path_prefix=self.prefix)
            widget = self.client.get(f"/proxy/widget.json?{query}")
            if widget.status_code == 404:
                self.note("/proxy/widget.json is not built yet: skipping invitations")
                return
            token = ((widget.get_json(silent=True) or {}).get("invite") or {}).get("token")
            response = self.client.post(f"/proxy/invitations?{query}",
                                        json={"friends": [{"email": email, "name": name}], "token": token})
            if response.status_code == 404:
                self.note("/proxy/invitations is not built yet: skipping invitations")
                return
            if response.status_code >= 400:
                self.failures[f"POST /proxy/invitations answered {response.status_code}"] += 1

    def change_rewards(self, phase: str) -> None:
        """Edit the default campaign's rewards to ``phase``, as the merchant did over the weeks.

        Once the campaign reads as the last phase the history is done: a re-run changes nothing.
        """
        with self.app.app_context():
            campaigns = _optional_module("referral_plugin.referrals.campaigns")
            if campaigns is None or not hasattr(campaigns, "update_campaign"):
                raise LookupError("campaigns.update_campaign is not built yet")
            campaign = campaigns.ensure_default_campaign(self._shop())
            if _reads_as(campaign, PHASES["hold"]):
                return
            if not _reads_as(campaign, PHASES[phase]):
                campaigns.update_campaign(campaign, PHASES[phase], actor="demo")
            db.session.commit()

    def place_orders(self, codes: dict[int, str], phase: str = "points") -> None:
        """Send a signed ``orders/paid`` per order of ``phase`` (and ``orders/cancelled`` where the story says so)."""
        ignored = False
        for order in self.story.orders:
            if order.phase != phase or (order.code_of is not None and order.code_of.index not in codes):
                continue
            payload = order_payload(order, self.now, self.shop_domain, codes)
            if order.velocity:
                # The rule's default (20 a day) is far above a demo shop; lower it for these orders only.
                previous = self.app.config.get("REVIEW_VELOCITY_LIMIT")
                self.app.config["REVIEW_VELOCITY_LIMIT"] = DEMO_VELOCITY_LIMIT
                try:
                    status = self.webhook("orders/paid", payload, f"demo-order-paid-{order.number}")
                finally:
                    if previous is None:
                        self.app.config.pop("REVIEW_VELOCITY_LIMIT", None)
                    else:
                        self.app.config["REVIEW_VELOCITY_LIMIT"] = previous
                ignored |= status == "ignored"
                continue
            ignored |= self.webhook("orders/paid", payload, f"demo-order-paid-{order.number}") == "ignored"
            if order.cancelled_days_ago is not None:
                cancelled = order_payload(order, self.now, self.shop_domain, codes, cancelled=True)
                ignored |= self.webhook("orders/cancelled", cancelled,
                                        f"demo-order-cancelled-{order.number}") == "ignored"
        if ignored:
            self.note("orders/paid or orders/cancelled has no handler yet: orders recorded as deliveries only")

    def refund_orders(self) -> None:
        """Send a signed ``refunds/create`` for each order the story partly refunds."""
        for order in self.story.orders:
            if order.refund_amount is not None:
                self.webhook("refunds/create", refund_payload(order, self.now), f"demo-refund-{order.number}")

    def webhook(self, topic: str, payload: dict[str, t.Any], webhook_id: str) -> str:
        """Deliver one signed webhook to ``POST /webhooks``; return the intake's status."""
        body = json.dumps(payload).encode()
        headers = webhook_headers(topic, body, self.shop_domain, self.secret, webhook_id=webhook_id,
                                  api_version=str(self.app.config["SHOPIFY_API_VERSION"]))
        response = self.client.post("/webhooks", data=body, headers=headers)
        status = str((response.get_json(silent=True) or {}).get("status", response.status_code))
        if response.status_code >= 400:
            self.failures[f"{topic} webhook answered {response.status_code}"] += 1
        return status

    # --- timestamps ------------------------------------------------------------------------------

    def spread_timestamps(self) -> None:
        """Move what seeding made onto the story's dates over the last six weeks (demo data only).

        Customers and codes date from sign-up, clicks and invitations from after the advocate's
        sign-up, referrals from the friend's sign-up, and decisions and ledger rows from the order.
        """
        story, now = self.story, self.now

        def at(days_ago: float) -> dt.datetime:
            return now - dt.timedelta(days=days_ago)

        with self.app.app_context():
            shop = self._shop()
            customers = {
                int(c.shopify_customer_id): c
                for c in db.session.execute(select(Customer).where(Customer.shop_id == shop.id)).scalars()
                if c.shopify_customer_id is not None
            }
            signed_up: dict[int, dt.datetime] = {}
            for person in story.people:
                customer = customers.get(person.shopify_id)
                if customer is None:
                    continue
                signed_up[customer.id] = at(person.signed_up_days_ago)
                customer.created_at = customer.shopify_created_at = signed_up[customer.id]
            index_of = {customers[p.shopify_id].id: p.index for p in story.people if p.shopify_id in customers}

            for code in db.session.execute(select(ReferralCode).where(ReferralCode.shop_id == shop.id)).scalars():
                if code.customer_id in signed_up:
                    code.created_at = signed_up[code.customer_id]
                    clicks = db.session.execute(select(Click).where(Click.referral_code_id == code.id)
                                                .order_by(Click.id)).scalars().all()
                    days = story.clicks.get(index_of.get(code.customer_id, -1), [])
                    for click, days_ago in zip(clicks, days, strict=False):
                        click.created_at = at(days_ago)

            invited = {(a.shopify_id, email): days for a, email, _n, days in story.invitations}
            by_customer_id = {c.id: c for c in customers.values()}
            for invitation in db.session.execute(select(Invitation).where(Invitation.shop_id == shop.id)).scalars():
                advocate = by_customer_id.get(invitation.advocate_id)
                key = (int(advocate.shopify_customer_id or 0), invitation.identifier) if advocate else None
                if key in invited:
                    invitation.invited_at = at(invited[key])
                if invitation.friend_id in signed_up and invitation.joined_at is not None:
                    invitation.joined_at = signed_up[invitation.friend_id]

            order_at = {o.order_id: at(o.days_ago) for o in story.orders}
            cancelled_at = {o.order_id: at(o.cancelled_days_ago) for o in story.orders
                            if o.cancelled_days_ago is not None}
            # Reversals date from the cancellation or the refund that caused them.
            cancelled_at.update({o.order_id: at(o.refunded_days_ago) for o in story.orders
                                 if o.refunded_days_ago is not None})
            for invitation in db.session.execute(select(Invitation).where(Invitation.shop_id == shop.id,
                                                                          Invitation.purchased_at.is_not(None))
                                                 ).scalars():
                first = [o for o in story.orders if invitation.friend_id is not None
                         and index_of.get(invitation.friend_id) == o.buyer.index]
                if first:
                    invitation.purchased_at = at(max(o.days_ago for o in first))

            for referral in db.session.execute(select(Referral).where(Referral.shop_id == shop.id)).scalars():
                start = signed_up.get(referral.friend_id or -1)
                decided = order_at.get(referral.shopify_order_id or -1)
                if start is None and decided is not None:
                    start = decided
                if start is not None:
                    advocate_start = signed_up.get(referral.advocate_id)
                    referral.created_at = max(start, advocate_start) if advocate_start else start
                if decided is not None and referral.decided_at is not None:
                    shift = decided - referral.decided_at
                    referral.decided_at = decided
                    if referral.hold_until is not None:
                        referral.hold_until = referral.hold_until + shift

            for attribution in db.session.execute(select(OrderAttribution)
                                                  .where(OrderAttribution.shop_id == shop.id)).scalars():
                if attribution.shopify_order_id in order_at:
                    attribution.created_at = order_at[attribution.shopify_order_id]

            for entry in db.session.execute(select(LedgerEntry).where(LedgerEntry.shop_id == shop.id)).scalars():
                order_id = entry.shopify_order_id or -1
                target = cancelled_at.get(order_id) if entry.entry_type == "reversal" else order_at.get(order_id)
                if target is None:
                    continue
                shift = target - entry.created_at
                entry.created_at = target
                if entry.available_at is not None:
                    entry.available_at = entry.available_at + shift
            db.session.commit()
            # Deliveries read as if Shopify sent them over the weeks too.
            db.session.execute(update(Shop).where(Shop.id == shop.id).values(installed_at=at(43)))
            db.session.commit()

    # --- helpers ---------------------------------------------------------------------------------

    def _shop(self) -> Shop:
        return db.session.execute(select(Shop).where(Shop.shopify_domain == self.shop_domain)).scalar_one()

    def counts(self) -> dict[str, int]:
        """Return how many rows of each kind the demo shop has."""
        from sqlalchemy import func

        with self.app.app_context():
            shop = self._shop()
            out: dict[str, int] = {}
            for label, model in (("customers", Customer), ("codes", ReferralCode), ("clicks", Click),
                                 ("invitations", Invitation), ("referrals", Referral),
                                 ("orders", OrderAttribution), ("ledger entries", LedgerEntry)):
                column = t.cast(t.Any, model).shop_id
                out[label] = int(db.session.execute(select(func.count()).select_from(model)
                                                    .where(column == shop.id)).scalar_one())
            return out


def _reads_as(campaign: t.Any, settings: t.Mapping[str, t.Any]) -> bool:
    """Return whether the campaign already has every setting of a reward phase."""
    for name, wanted in settings.items():
        current = getattr(campaign, name, None)
        current = getattr(current, "value", current)
        if isinstance(wanted, str) and not wanted.replace(".", "").isdigit():
            if str(current) != wanted:
                return False
        elif current is None or float(current) != float(wanted):
            return False
    return True


def _optional_module(name: str) -> t.Any:
    """Import another owner's module if it exists yet."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def demo_shop_domain(app: Flask) -> str:
    """Return the demo shop's domain (config ``DEMO_SHOP_DOMAIN``)."""
    return str(app.config.get("DEMO_SHOP_DOMAIN") or DEMO_SHOP_DOMAIN)


def seed_demo(app: Flask, echo: t.Callable[[str], None] = print, *, now: dt.datetime | None = None,
              quiet: bool = True) -> SeedReport:
    """Seed the demo shop (idempotently) and return what was done.

    Call it with no application context pushed: requests through the test client get their own.
    ``quiet`` keeps the per-request INFO logs of the seeding traffic off the console.
    """
    app_logger = logging.getLogger("referral_plugin")
    previous = app_logger.level
    if quiet:
        app_logger.setLevel(logging.WARNING)
    try:
        return Seeder(app, echo, now=now).run()
    finally:
        app_logger.setLevel(previous)
