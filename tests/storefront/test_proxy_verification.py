"""App-proxy verification: Shopify's published vectors, and every way a proxied request is refused."""

from __future__ import annotations

import time
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import StaleRequest
from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.security.signatures import parse_query
from referral_plugin.security.signatures import verify_proxy_query
from tests.conftest import make_shop
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import proxy_query
from tests.shopify_actions import proxy_signature

DOCS_QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
    "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
)
RAILS_QUERY = "shop=some-random-store.myshopify.com&path_prefix=%2Fapps%2Fmy-app&timestamp=1466106083"
RAILS_BRACKETS = RAILS_QUERY + "&foo=bar&baz[1]&baz[2]=b&baz[c[0]]=whatup&baz[c[1]]=notmuch"

VECTORS = [
    ("hush", DOCS_QUERY, "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"),
    ("secret", RAILS_QUERY, "f5cd7233558b1c50102a6f33c0b63ad1e1072a2fc126cb58d4500f75223cefcd"),
    ("secret", RAILS_BRACKETS, "bbf3aa60e098f08919a2ea4c64a388414f164e6a117a63b03479ac7aa9464b4f"),
    (
        "hush",
        DOCS_QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id="),
        "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb",
    ),
]


@pytest.mark.parametrize(("secret", "query", "signature"), VECTORS)
def test_published_vectors_verify(secret: str, query: str, signature: str) -> None:
    """Shopify's and the Rails gem's vectors verify: blank values kept, repeats comma-joined, bracket keys literal."""
    verify_proxy_query(parse_query(f"{query}&signature={signature}"), secret, tolerance=None)


@pytest.mark.parametrize(("secret", "query", "signature"), VECTORS)
def test_published_vectors_fail_with_an_extra_parameter(secret: str, query: str, signature: str) -> None:
    """Adding ``evil=1`` after signing breaks every vector."""
    with pytest.raises(InvalidSignature):
        verify_proxy_query(parse_query(f"{query}&evil=1&signature={signature}"), secret, tolerance=None)


def test_dropping_the_blank_customer_breaks_the_signature() -> None:
    """The empty ``logged_in_customer_id`` is signed too: a parser that drops blank values cannot verify."""
    query = DOCS_QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id=")
    pairs = [pair for pair in parse_query(query) if pair[0] != "logged_in_customer_id"]
    pairs.append(("signature", "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb"))
    with pytest.raises(InvalidSignature):
        verify_proxy_query(pairs, "hush", tolerance=None)


def test_vector_is_stale_today() -> None:
    """The docs vector is from 2011: with the freshness check on, it is stale."""
    query = f"{DOCS_QUERY}&signature={VECTORS[0][2]}"
    with pytest.raises(StaleRequest):
        verify_proxy_query(parse_query(query), "hush")


def _signed(pairs: list[tuple[str, str]], secret: str = "hush") -> str:
    return urlencode([*pairs, ("signature", proxy_signature(pairs, secret))], quote_via=quote)


def _base(customer: str = "", *, shop: str = SHOP, timestamp: int | None = None) -> list[tuple[str, str]]:
    return [
        ("shop", shop),
        ("logged_in_customer_id", customer),
        ("path_prefix", "/apps/referrals"),
        ("timestamp", str(int(time.time()) if timestamp is None else timestamp)),
    ]


def _assert_refused(response: TestResponse, status: int = 401) -> None:
    assert response.status_code == status
    body = response.get_json()
    assert body is not None and "error" in body
    text = response.get_data(as_text=True)
    assert "inviteLink" not in text and "rp-widget" not in text


PROTECTED = [("GET", "widget"), ("GET", "widget.json"), ("POST", "invitations"), ("GET", "r/ABCD2345")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_unsigned_requests_are_refused_on_every_route(client: FlaskClient, shop: Shop, method: str, path: str) -> None:
    """Every /proxy route answers 401 JSON to a request without a signature."""
    query = urlencode(_base("7001"))
    response = client.open(f"/proxy/{path}?{query}", method=method)
    _assert_refused(response)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_secret_is_refused_on_every_route(client: FlaskClient, shop: Shop, method: str, path: str) -> None:
    """A signature made with another secret is refused."""
    response = client.open(f"/proxy/{path}?{_signed(_base('7001'), 'not-the-secret')}", method=method)
    _assert_refused(response)


def test_a_signed_request_is_accepted(client: FlaskClient, shop: Shop) -> None:
    """A fresh, correctly signed request gets the widget's data."""
    response = client.get(f"/proxy/widget.json?{_signed(_base())}")
    assert response.status_code == 200
    assert response.get_json()["loggedIn"] is False


def test_the_old_secret_still_works_during_rotation(app_config: dict[str, object], shop: Shop,
                                                    client: FlaskClient, app: Flask) -> None:
    """A request signed with ``SHOPIFY_API_SECRET_OLD`` verifies while the secret rotates."""
    app.config["SHOPIFY_API_SECRET_OLD"] = "old-hush"
    response = client.get(f"/proxy/widget.json?{_signed(_base(), 'old-hush')}")
    assert response.status_code == 200


def test_stale_timestamp_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A correctly signed request older than 90 seconds is refused."""
    response = client.get(f"/proxy/widget.json?{_signed(_base(timestamp=int(time.time()) - 120))}")
    _assert_refused(response)
    assert response.get_json()["error"]["code"] == "STALE_REQUEST"


def test_future_timestamp_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A timestamp far in the future is refused too."""
    response = client.get(f"/proxy/widget.json?{_signed(_base(timestamp=int(time.time()) + 600))}")
    _assert_refused(response)


def test_non_integer_timestamp_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A signed but non-numeric timestamp is refused."""
    pairs = _base()
    pairs[3] = ("timestamp", "soon")
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(pairs)}"))


@pytest.mark.parametrize("key", ["shop", "timestamp", "logged_in_customer_id"])
def test_duplicate_security_keys_are_refused(client: FlaskClient, shop: Shop, key: str) -> None:
    """``shop``, ``timestamp`` or ``logged_in_customer_id`` given twice is refused even when signed."""
    pairs = _base("7001")
    value = dict(pairs)[key]
    pairs.append((key, value))
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(pairs)}"))


def test_duplicate_signature_is_refused(client: FlaskClient, shop: Shop) -> None:
    """Two ``signature`` parameters are refused, even when one of them is right."""
    signed = _signed(_base("7001"))
    _assert_refused(client.get(f"/proxy/widget.json?{signed}&signature=00"))
    good = signed.rsplit("signature=", 1)[1]
    _assert_refused(client.get(f"/proxy/widget.json?{signed}&signature={good}"))


def test_tampering_with_the_customer_after_signing_fails(client: FlaskClient, shop: Shop, advocate: Customer) -> None:
    """Changing ``logged_in_customer_id`` in a signed anonymous URL does not log anyone in."""
    signed = _signed(_base(""))
    tampered = signed.replace("logged_in_customer_id=", "logged_in_customer_id=7001")
    response = client.get(f"/proxy/widget.json?{tampered}")
    _assert_refused(response)
    signed_other = _signed(_base("9999"))
    response = client.get(f"/proxy/widget.json?{signed_other.replace('id=9999', 'id=7001')}")
    _assert_refused(response)


def test_a_customer_id_from_the_body_or_headers_is_ignored(client: FlaskClient, shop: Shop,
                                                            advocate: Customer) -> None:
    """Only the signed query names the customer: an anonymous request stays anonymous whatever else it says."""
    query = _signed(_base(""))
    response = client.get(f"/proxy/widget.json?{query}&customer_id=7001",
                          headers={"X-Customer-Id": "7001", "Cookie": "customer_id=7001"})
    _assert_refused(response)  # the unsigned extra parameter breaks the signature
    response = client.get(f"/proxy/widget.json?{query}", headers={"X-Customer-Id": "7001"})
    assert response.status_code == 200
    assert response.get_json()["loggedIn"] is False
    assert "code" not in response.get_json()


def test_unknown_shop_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A correctly signed request for a shop that never installed the app is refused."""
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(_base(shop=OTHER_SHOP))}"))


def test_uninstalled_shop_is_refused(client: FlaskClient, shop: Shop) -> None:
    """After uninstall, the shop's storefront gets nothing."""
    other = make_shop(OTHER_SHOP)
    assert client.get(f"/proxy/widget.json?{_signed(_base(shop=OTHER_SHOP))}").status_code == 200
    other.access_token_ciphertext = None
    db.session.commit()
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(_base(shop=OTHER_SHOP))}"))


def test_invalid_shop_domain_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A signed ``shop`` that is not a myshopify.com domain is refused."""
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(_base(shop='evil.example.com'))}"))


def test_non_numeric_customer_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A signed customer id that is not a number is refused rather than guessed at."""
    _assert_refused(client.get(f"/proxy/widget.json?{_signed(_base('7001 OR 1=1'))}"))


def test_unicode_digit_customer_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A signed customer id of digits Python's int() rejects ("²") is refused, not a server error."""
    query = _signed(_base("\u00b2"))
    _assert_refused(client.get(f"/proxy/widget.json?{query}"))


def test_repeated_extra_parameters_verify(shopify: ShopifyActions, shop: Shop) -> None:
    """Repeated ordinary parameters (``extra=1&extra=2``) are signed comma-joined and accepted."""
    response = shopify.proxy_get("widget.json", extra=[("extra", "1"), ("extra", "2")])
    assert response.status_code == 200


def test_bracket_and_blank_parameters_verify(client: FlaskClient, shop: Shop) -> None:
    """Bracket keys and blank values of the original query keep the signature valid."""
    query = proxy_query(None, extra=[("baz[1]", ""), ("baz[c[0]]", "whatup"), ("foo", "")])
    assert client.get(f"/proxy/widget.json?{query}").status_code == 200


def test_no_customer_row_is_written_for_refused_requests(client: FlaskClient, shop: Shop) -> None:
    """A refused request writes nothing, not even the customer it names."""
    signed = _signed(_base("8123"), "not-the-secret")
    client.get(f"/proxy/widget?{signed}")
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0


def test_non_ascii_signature_is_refused(client: FlaskClient, shop: Shop) -> None:
    """A signature with non-ASCII characters is a 401, not a server error."""
    query = urlencode(_base("7001") + [("signature", "é" * 64)])
    _assert_refused(client.get(f"/proxy/widget?{query}"))
