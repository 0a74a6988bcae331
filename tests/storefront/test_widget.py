"""The widget page and its JSON: a known, a new and an anonymous customer; progress; hostile names."""

from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.ledger import grant_referral_rewards
from referral_plugin.storefront.safety import liquid_escape
from referral_plugin.storefront.safety import neutralize_liquid
from tests.conftest import run_at_once
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import proxy_signature
from tests.storefront.conftest import ADVOCATE_ID

HOSTILE = "<script>alert(1)</script>{{ shop.metafields.x }}{% render 'evil' %}\"'><img src=x onerror=alert(2)>"


def _friend(shop: Shop, shopify_id: int, **fields: str) -> Customer:
    customer = upsert_customer(shop, shopify_id, **fields)
    db.session.flush()
    return customer


def _referral(shop: Shop, campaign: Campaign, advocate: Customer, friend: Customer, status: str,
              reason: str | None = None, **extra: object) -> Referral:
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, friend_id=friend.id,
                        source="cart_attribute", status=status, reason=reason, **extra)
    db.session.add(referral)
    db.session.flush()
    return referral


def test_known_customer_sees_code_link_share_and_form(shopify: ShopifyActions, advocate: Customer,
                                                       advocate_code: ReferralCode) -> None:
    """A logged-in customer gets their code, invite link, copy button, share links and the invite form."""
    response = shopify.proxy_get("widget", ADVOCATE_ID)
    assert response.status_code == 200
    assert response.mimetype == "application/liquid"
    html = response.get_data(as_text=True)
    link = f"https://test-shop.myshopify.com/apps/referrals/r/{advocate_code.code}"
    assert advocate_code.code in html
    assert f'value="{link}"' in html
    assert f'data-rp-copy="{link}"' in html
    assert "Give 50 points, get 100 points" in html
    for channel in ("email", "sms", "whatsapp", "x", "facebook"):
        assert f'data-rp-channel="{channel}"' in html
    assert "mailto:?subject=" in html and "https://wa.me/?text=" in html
    assert "https://x.com/intent/post?" in html and "https://www.facebook.com/sharer/sharer.php?u=" in html
    assert "data-rp-native-share" in html
    assert 'action="/apps/referrals/invitations"' in html
    assert re.search(r'name="token" value="[0-9a-f]{64}"', html)
    assert "https://referrals.example.test/static/widget.js" in html


def test_share_links_carry_the_invite_link(shopify: ShopifyActions, advocate: Customer,
                                           advocate_code: ReferralCode) -> None:
    """Each share URL, decoded, carries the advocate's invite link."""
    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    link = data["inviteLink"]
    for channel, url in data["share"].items():
        assert link in unquote(url), channel
    assert parse_qs(urlsplit(data["share"]["facebook"]).query)["u"] == [link]
    assert data["shareMessage"] == f"Get 50 points at test-shop with my code {advocate_code.code}:"


def test_new_customer_gets_a_code_on_first_visit(shopify: ShopifyActions, shop: Shop, campaign: Campaign) -> None:
    """A customer the app has never seen gets a customer row and a code, the same one on the next visit."""
    first = shopify.proxy_get("widget.json", 555123).get_json()
    customer = db.session.scalars(db.select(Customer).where(Customer.shopify_customer_id == 555123)).one()
    code = db.session.scalars(db.select(ReferralCode).where(ReferralCode.customer_id == customer.id)).one()
    assert first["code"] == code.code
    assert first["stats"] == {"clicks": 0, "invited": 0, "joined": 0, "purchased": 0, "notCredited": 0,
                              "pointsEarned": 0, "pointsBalance": 0}
    again = shopify.proxy_get("widget", 555123)
    assert code.code in again.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(ReferralCode.id))) == 1


def test_anonymous_visitor_sees_offer_and_login_link(shopify: ShopifyActions, shop: Shop, campaign: Campaign) -> None:
    """Without a logged-in customer: the offer and a login link back to the widget, no code, no form."""
    response = shopify.proxy_get("widget")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Give 50 points, get 100 points" in html
    assert 'href="/account/login?return_url=%2Fapps%2Freferrals%2Fwidget"' in html
    assert "data-rp-invite" not in html and "/r/" not in html
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0


def test_login_link_follows_a_renamed_proxy_path(client: FlaskClient, shop: Shop, campaign: Campaign) -> None:
    """Merchants can rename the proxy subpath; links use the signed ``path_prefix``."""
    pairs = [("shop", shop.shopify_domain), ("logged_in_customer_id", ""), ("path_prefix", "/a/friends"),
             ("timestamp", str(int(time.time())))]
    pairs.append(("signature", proxy_signature(pairs)))
    data = client.get(f"/proxy/widget.json?{urlencode(pairs)}").get_json()
    assert data["loginUrl"] == "/account/login?return_url=%2Fa%2Ffriends%2Fwidget"


def test_progress_counts_and_reasons(shopify: ShopifyActions, shop: Shop, campaign: Campaign, advocate: Customer,
                                     advocate_code: ReferralCode) -> None:
    """Clicks, invited, joined, purchased, points and a plain-words reason for a friend not credited."""
    for n in range(3):
        db.session.add(Click(shop_id=shop.id, referral_code_id=advocate_code.id, visitor_hash=f"{n:064x}"))
    for n in range(4):
        db.session.add(Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel="email",
                                  identifier=f"friend{n}@example.com", source="widget"))
    bo = _friend(shop, 8001, first_name="Bo", last_name="Chen", email="bo@example.com")
    cy = _friend(shop, 8002, first_name="Cy", email="cy@example.com")
    di = _friend(shop, 8003, email="dina@example.org")
    rewarded = _referral(shop, campaign, advocate, bo, ReferralStatus.REWARDED, "QUALIFIED", shopify_order_id=1)
    grant_referral_rewards(shop, rewarded, campaign, order_id=1, hold=False, available_at=None)
    _referral(shop, campaign, advocate, cy, ReferralStatus.REJECTED, "BELOW_MINIMUM", shopify_order_id=2)
    _referral(shop, campaign, advocate, di, ReferralStatus.PENDING)
    db.session.commit()

    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    assert data["stats"] == {"clicks": 3, "invited": 4, "joined": 3, "purchased": 1, "notCredited": 1,
                             "pointsEarned": 100, "pointsBalance": 100}
    by_name = {friend["name"]: friend for friend in data["friends"]}
    assert by_name["Bo C."]["status"] == "rewarded"
    assert by_name["Cy"]["reason"] == "BELOW_MINIMUM"
    assert by_name["Cy"]["reasonText"] == "The order was below the minimum amount for a reward."
    assert by_name["d•••@example.org"]["status"] == "pending"
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert "The order was below the minimum amount for a reward." in html
    assert "<dt>Link clicks</dt><dd>3</dd>" in html
    assert "<dt>Points earned</dt><dd>100</dd>" in html


def test_pending_rewards_show_their_release_date(shopify: ShopifyActions, shop: Shop, campaign: Campaign,
                                                 advocate: Customer) -> None:
    """A held reward is listed with the day it releases."""
    friend = _friend(shop, 8101, first_name="Eve", email="eve@example.com")
    release = dt.datetime(2031, 3, 14, 12, tzinfo=dt.UTC)
    referral = _referral(shop, campaign, advocate, friend, ReferralStatus.HELD, "HOLD_PERIOD", shopify_order_id=9,
                         hold_until=release)
    grant_referral_rewards(shop, referral, campaign, order_id=9, hold=True, available_at=release)
    db.session.commit()
    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    assert data["pendingRewards"] == [{"description": "100 points", "kind": "points", "points": 100,
                                       "status": "held", "statusText": "Held until the return window closes",
                                       "releasesOn": "2031-03-14"}]
    assert data["stats"]["pointsBalance"] == 0
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert "releases Mar 14, 2031" in html
    assert "Rewards wait until the return window closes" in html


@pytest.mark.parametrize("where", ["advocate", "friend", "invitee", "shop"])
def test_hostile_names_are_escaped_and_cannot_run_as_liquid(shopify: ShopifyActions, shop: Shop, campaign: Campaign,
                                                            advocate: Customer, where: str) -> None:
    """HTML and Liquid in any stored name reach the page as inert text."""
    if where == "advocate":
        advocate.first_name = HOSTILE
    elif where == "friend":
        friend = _friend(shop, 8201, first_name=HOSTILE, email="f@example.com")
        _referral(shop, campaign, advocate, friend, ReferralStatus.PENDING)
    elif where == "invitee":
        db.session.add(Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id,
                                  channel="email", identifier="x@example.com", name=HOSTILE, source="widget"))
    else:
        shop.name = HOSTILE
    db.session.commit()
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "{{" not in html and "{%" not in html
    if where in ("friend", "invitee"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#123;&#123; shop.metafields.x &#125;&#125;" in html
    if where == "shop":
        assert "&#123;&#123;" in html  # the share message carries the shop's name, neutralized


def test_the_fragment_view_skips_the_theme_layout(shopify: ShopifyActions, advocate: Customer) -> None:
    """``view=fragment`` (for theme blocks) starts with the one Liquid tag we emit: ``{% layout none %}``."""
    response = shopify.proxy_get("widget", ADVOCATE_ID, extra=[("view", "fragment")])
    body = response.get_data(as_text=True)
    assert body.startswith("{% layout none %}")
    assert body.count("{%") == 1 and "{{" not in body


def test_liquid_escape_breaks_every_delimiter() -> None:
    """The filter escapes HTML and turns braces into character references."""
    escaped = "&#123;&#123; x &#125;&#125; &#123;% if %&#125; &lt;b&gt;&amp;"
    assert str(liquid_escape("{{ x }} {% if %} <b>&")) == escaped
    assert str(liquid_escape(None)) == ""
    assert neutralize_liquid("a {{ b }} {% c %} {d}") == "a &#123;{ b }} &#123;% c %} {d}"


def test_widget_json_matches_the_page(shopify: ShopifyActions, advocate: Customer,
                                      advocate_code: ReferralCode) -> None:
    """widget.json carries the same code, link, offer and invite settings the page renders."""
    response = shopify.proxy_get("widget.json", ADVOCATE_ID)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "private, no-store"
    data = response.get_json()
    assert data["loggedIn"] is True
    assert data["code"] == advocate_code.code
    assert data["offer"]["headline"] == "Give 50 points, get 100 points"
    assert data["offer"]["friend"] == "50 points" and data["offer"]["advocate"] == "100 points"
    assert data["invite"]["action"] == "/apps/referrals/invitations"
    assert data["invite"]["emailDelivery"] is False
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert data["invite"]["token"] in html and data["inviteLink"] in html


def test_paused_program_says_so(shopify: ShopifyActions, campaign: Campaign, advocate: Customer) -> None:
    """When the campaign is paused the widget still works and says the program is paused."""
    campaign.status = "paused"
    db.session.commit()
    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    assert data["campaign"]["running"] is False
    assert "paused" in shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)


def test_demo_mode_serves_plain_html(app: Flask, shopify: ShopifyActions, advocate: Customer) -> None:
    """Without Shopify in front (demo mode) the page is text/html so a browser can open it directly."""
    app.config["DEMO_MODE"] = True
    response = shopify.proxy_get("widget", ADVOCATE_ID)
    assert response.mimetype == "text/html"


def test_concurrent_first_visits_share_one_customer_and_code(app: Flask, shop: Shop, campaign: Campaign) -> None:
    """Eight first visits at once (file SQLite, threads) create one customer and one code, and all see it."""

    codes: list[str] = []
    errors: list[BaseException] = []

    def visit() -> None:
        try:
            response = ShopifyActions(app.test_client()).proxy_get("widget.json", 424242)
            assert response.status_code == 200, response.get_data(as_text=True)
            codes.append(response.get_json()["code"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_at_once(visit, [()] * 8)
    assert errors == []
    assert len(codes) == 8 and len(set(codes)) == 1
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1
    assert db.session.scalar(db.select(db.func.count(ReferralCode.id))) == 1
