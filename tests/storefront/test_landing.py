"""GET /proxy/r/<code>: the click is counted without the visitor's IP, then the friend lands on the shop."""

from __future__ import annotations

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.security.crypto import keyed_hash
from referral_plugin.storefront.landing import client_ip
from referral_plugin.storefront.landing import mask_ip
from tests.shopify_actions import ShopifyActions

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)"


def _clicks() -> list[Click]:
    return list(db.session.scalars(db.select(Click).order_by(Click.id)))


def test_click_is_counted_and_lands_with_ref(shopify: ShopifyActions, advocate_code: ReferralCode) -> None:
    """A live code: one click, hashed from the masked IP and user agent, then 302 to the shop with ?ref=."""
    response = shopify.proxy_get(f"r/{advocate_code.code}",
                                 headers={"X-Forwarded-For": "203.0.113.77, 10.0.0.1", "User-Agent": UA})
    assert response.status_code == 302
    assert response.headers["Location"] == f"https://test-shop.myshopify.com/?ref={advocate_code.code}"
    [click] = _clicks()
    assert click.referral_code_id == advocate_code.id
    assert click.visitor_hash == keyed_hash("click", f"203.0.113.0/24|{UA}")
    stored = " ".join(str(getattr(click, column.key)) for column in Click.__table__.columns)
    assert "203.0.113" not in stored and "10.0.0.1" not in stored


def test_live_discount_code_lands_on_the_discount_link(shopify: ShopifyActions,
                                                       advocate_code: ReferralCode) -> None:
    """When the code is a live Shopify discount, the friend lands through /discount/{code} with it applied."""
    advocate_code.discount_node_id = "gid://shopify/DiscountCodeNode/1"
    db.session.commit()
    response = shopify.proxy_get(f"r/{advocate_code.code}")
    assert response.headers["Location"] == (
        f"https://test-shop.myshopify.com/discount/{advocate_code.code}?redirect=/")
    assert len(_clicks()) == 1


def test_codes_match_whatever_the_case(shopify: ShopifyActions, advocate_code: ReferralCode) -> None:
    """A lower-cased link still counts and lands with the canonical code."""
    response = shopify.proxy_get(f"r/{advocate_code.code.lower()}")
    assert response.headers["Location"].endswith(f"?ref={advocate_code.code}")
    assert len(_clicks()) == 1


def test_unknown_code_still_lands_on_the_shop(shopify: ShopifyActions, shop: Shop) -> None:
    """An unknown code goes to the shop's home page and counts nothing."""
    response = shopify.proxy_get("r/NOPE2345")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://test-shop.myshopify.com/"
    assert _clicks() == []


def test_retired_code_lands_on_the_shop_uncounted(shopify: ShopifyActions, advocate_code: ReferralCode) -> None:
    """A retired code lands on the shop without ?ref= and counts nothing."""
    advocate_code.retired_at = utcnow()
    db.session.commit()
    response = shopify.proxy_get(f"r/{advocate_code.code}")
    assert response.headers["Location"] == "https://test-shop.myshopify.com/"
    assert _clicks() == []


def test_hostile_code_in_the_path_cannot_redirect_elsewhere(shopify: ShopifyActions, shop: Shop) -> None:
    """Whatever follows /r/, a redirect stays on the shop (a path no route matches is a plain 404)."""
    for path in ("r/..%2F..%2Fevil", "r/" + "A" * 500, "r/https:%2F%2Fevil.example"):
        response = shopify.proxy_get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "https://test-shop.myshopify.com/"
    for path in ("r/%2F%2Fevil.example", "r/%0d%0aSet-Cookie:x=1"):
        response = shopify.proxy_get(path)
        assert response.status_code in (302, 404)
        assert response.headers.get("Location", "https://test-shop.myshopify.com/") == (
            "https://test-shop.myshopify.com/")
        assert "Set-Cookie" not in response.headers


def test_same_network_and_browser_share_a_hash(shopify: ShopifyActions, advocate_code: ReferralCode) -> None:
    """Two hosts of one /24 with one user agent hash alike; another agent or network does not."""
    for ip, agent in (("198.51.100.1", UA), ("198.51.100.200", UA), ("198.51.100.1", "curl/8"), ("192.0.2.1", UA)):
        shopify.proxy_get(f"r/{advocate_code.code}", headers={"X-Forwarded-For": ip, "User-Agent": agent})
    hashes = [click.visitor_hash for click in _clicks()]
    assert hashes[0] == hashes[1]
    assert len({hashes[0], hashes[2], hashes[3]}) == 3


def test_widget_counts_the_clicks(shopify: ShopifyActions, advocate_code: ReferralCode) -> None:
    """Clicks on the invite link show up in the advocate's widget."""
    shopify.proxy_get(f"r/{advocate_code.code}")
    shopify.proxy_get(f"r/{advocate_code.code}")
    assert shopify.proxy_get("widget.json", 7001).get_json()["stats"]["clicks"] == 2


@pytest.mark.parametrize(("raw", "masked"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("203.0.113.77:5123", "203.0.113.0/24"),
    ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
    ("[2001:db8:abcd:12::1]:443", "2001:db8:abcd::/48"),
    ("::ffff:198.51.100.9", "198.51.100.0/24"),
    ("not an ip", "unknown"),
    (None, "unknown"),
])
def test_mask_ip(raw: str | None, masked: str) -> None:
    """IPv4 keeps its /24, IPv6 its /48; anything else is 'unknown'."""
    assert mask_ip(raw) == masked


def test_client_ip_takes_the_first_forwarded_hop() -> None:
    """The visitor is the first hop of X-Forwarded-For, else the peer address."""
    assert client_ip("203.0.113.5, 10.1.1.1", "127.0.0.1") == "203.0.113.5"
    assert client_ip(None, "127.0.0.1") == "127.0.0.1"
    assert client_ip(" , 10.1.1.1", "127.0.0.1") == "127.0.0.1"
