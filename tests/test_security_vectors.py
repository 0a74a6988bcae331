"""Shopify's published vectors: OAuth hmac, shop-domain tables of the official libraries, session tokens."""

from __future__ import annotations

import time

import pytest

from referral_plugin.errors import InvalidSessionToken
from referral_plugin.errors import InvalidShopDomain
from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import StaleRequest
from referral_plugin.security.session_token import decode_session_token
from referral_plugin.security.shop_domain import require_shop_domain
from referral_plugin.security.shop_domain import sanitize_shop_domain
from referral_plugin.security.signatures import compute_admin_hmac
from referral_plugin.security.signatures import parse_query
from referral_plugin.security.signatures import verify_admin_query
from referral_plugin.security.signatures import verify_proxy_query
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import OLD_API_SECRET
from tests.shopify_actions import SHOP
from tests.shopify_actions import session_token

# --- OAuth / admin hmac (reference §1.2) -------------------------------------------------------

HMAC_VECTORS = [
    # Shopify docs example.
    ("hush", "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173",
     "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"),
    # shopify_python_api test_hmac_calculation.
    ("hush", "code=a94a110d86d2452eb3e2af4cfb8a3828&shop=some-shop.myshopify.com&timestamp=1337178173",
     "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"),
    # Spaces signed as %20 (shopify-app-js shape).
    ("my super secret key",
     "code=some%20code%20goes%20here&shop=the%20shop%20URL&state=some%20nonce%20passed%20from%20auth"
     "&timestamp=1700000000",
     "10207991f5c2c65c114b70a3c3544ce1d00a236ea4ab034793de0d6407be9165"),
]


@pytest.mark.parametrize(("secret", "message", "digest"), HMAC_VECTORS)
def test_admin_hmac_vectors_verify(secret: str, message: str, digest: str) -> None:
    """Shopify's published admin-hmac vectors verify (freshness disabled: the timestamps are old)."""
    pairs = parse_query(f"{message}&hmac={digest}")
    assert compute_admin_hmac(pairs, secret) == digest
    verify_admin_query(pairs, secret, tolerance=None)


@pytest.mark.parametrize(("secret", "message", "digest"), HMAC_VECTORS)
def test_admin_hmac_vectors_reject_tampering(secret: str, message: str, digest: str) -> None:
    """Changing any signed value, or the secret, breaks the vector."""
    tampered = parse_query(message.replace("shop=", "shop=x") + f"&hmac={digest}")
    with pytest.raises(InvalidSignature):
        verify_admin_query(tampered, secret, tolerance=None)
    with pytest.raises(InvalidSignature):
        verify_admin_query(parse_query(f"{message}&hmac={digest}"), secret + "x", tolerance=None)


def test_admin_hmac_python_vector_with_ampersand_and_equals() -> None:
    """shopify_python_api's ``&``/``=`` escaping vector verifies through its legacy canonical form."""
    pairs = [("a", "1&b=2"), ("c=3&d", "4"),
             ("hmac", "8de3c7e965d22fa21e059868e4004f5b6fbdcef293d1622ff9408edd6325bc6b")]
    verify_admin_query(pairs, "secret", tolerance=None)


def test_admin_hmac_python_vector_with_list_values() -> None:
    """shopify_python_api's ``ids[]`` vector (signed as ``ids=["2", "1"]``) verifies; reordering breaks it."""
    digest = "b93b9f82996f6f8bf9f1b7bbddec284c8fabacdc4e12dc80550b4705f3003b1e"
    pairs = parse_query(f"shop=some-shop.myshopify.com&ids[]=2&ids[]=1&hmac={digest}")
    verify_admin_query(pairs, "hush", tolerance=None)
    with pytest.raises(InvalidSignature):
        verify_admin_query(parse_query(f"shop=some-shop.myshopify.com&ids[]=1&ids[]=2&hmac={digest}"), "hush",
                           tolerance=None)


def test_admin_hmac_old_secret_accepted_during_rotation() -> None:
    """A query signed with the previous secret verifies while SHOPIFY_API_SECRET_OLD is set."""
    message, digest = HMAC_VECTORS[0][1], HMAC_VECTORS[0][2]
    pairs = parse_query(f"{message}&hmac={digest}")
    verify_admin_query(pairs, "new-secret", "hush", tolerance=None)
    with pytest.raises(InvalidSignature):
        verify_admin_query(pairs, "new-secret", tolerance=None)


def test_admin_hmac_vector_is_stale_with_freshness_on() -> None:
    """The 2012 vector is rejected as stale once the 90 s window applies."""
    message, digest = HMAC_VECTORS[0][1], HMAC_VECTORS[0][2]
    with pytest.raises(StaleRequest):
        verify_admin_query(parse_query(f"{message}&hmac={digest}"), "hush", tolerance=90)


# --- shop domains (reference §1.4) -------------------------------------------------------------

ACCEPTED = [
    # shopify_python_api test/utils/shop_url_test.py
    ("my-shop", "my-shop.myshopify.com"),
    ("my-shop.myshopify.com", "my-shop.myshopify.com"),
    ("http://my-shop.myshopify.com", "my-shop.myshopify.com"),
    ("https://my-shop.myshopify.com", "my-shop.myshopify.com"),
    # shopify-app-js shop-validator tests
    ("someshop.myshopify.com", "someshop.myshopify.com"),
    ("test-shop.myshopify.com", "test-shop.myshopify.com"),
    ("admin.shopify.com/store/my-shop", "my-shop.myshopify.com"),
    ("https://admin.shopify.com/store/my-shop", "my-shop.myshopify.com"),
    # shopify-api-ruby ShopValidator: scheme, trailing slash, whitespace and case are normalised
    ("  HTTPS://Test-Shop.myshopify.com/  ", "test-shop.myshopify.com"),
    ("test-shop.myshopify.com/", "test-shop.myshopify.com"),
]

REJECTED = [
    # shopify_python_api
    "myshop.com", "myshopify.com", "shopify.com", "two words", "store.myshopify.com.evil.com", "/foo/bar",
    "/foo.myshopify.io.evil.ru", "%0a123.myshopify.io ", "foo.bar.myshopify.io",
    # shopify-app-js
    "notshopify.com", "-invalid.myshopify.io", "not-admin.shopify.com/store/my-shop",
    # JS accepts *.myshopify.io (Shopify's own dev hosts); we store myshopify.com shops only.
    "dev-shop-.myshopify.io",
    # shopify-api-ruby
    "attacker.example", "evil.com", "myshopify.com.evil.com", "test-shop.notmyshopify.com",
    "attacker.com/.myshopify.com", "shop.myshopify.com@evil.com",
    # and a few more of the same family
    "", "   ", "-shop.myshopify.com", "shop-.myshopify.com", "shop.myshopify.com:443", "shop.myshopify.com/admin",
    "shop.myshopify.com?x=1", "shop.myshopify.com#x", "javascript:alert(1)//x.myshopify.com",
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_shop_domain_accepted(raw: str, expected: str) -> None:
    """The official libraries' valid shops sanitize to the canonical ``{handle}.myshopify.com``."""
    assert sanitize_shop_domain(raw) == expected
    assert require_shop_domain(raw) == expected


@pytest.mark.parametrize("raw", REJECTED)
def test_shop_domain_rejected(raw: str) -> None:
    """The official libraries' invalid shops are rejected."""
    assert sanitize_shop_domain(raw) is None
    with pytest.raises(InvalidShopDomain):
        require_shop_domain(raw)


# --- session tokens (reference §2) ---------------------------------------------------------------


def _decode(token: str, **kwargs: object) -> dict[str, object]:
    return decode_session_token(token, API_KEY, API_SECRET, **kwargs)  # type: ignore[arg-type]


def test_session_token_valid() -> None:
    """A fresh App Bridge token decodes to its claims plus the canonical shop."""
    claims = _decode(session_token())
    assert claims["shop"] == SHOP
    assert claims["aud"] == API_KEY
    assert claims["sub"] == "42"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": -30}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"alg": "none"}, "algorithm"),
        ({"alg": "HS512"}, "algorithm"),
        ({"secret": "wrong-secret"}, "signature"),
        ({"dest": "https://other-shop.myshopify.com"}, "different shops"),
        ({"iss": "https://evil.example/admin", "dest": "https://evil.example"}, "valid shop"),
        ({"iss": "http://test-shop.myshopify.com/admin"}, "https"),
        ({"nbf": 60}, "not yet valid"),
        ({"sub": None}, "sub"),
        ({"dest": None}, "dest"),
        ({"exp": None}, "exp"),
        ({"nbf": None}, "nbf"),
    ],
    ids=["expired", "wrong-audience", "alg-none", "alg-hs512", "wrong-secret", "iss-dest-mismatch",
         "not-a-shop", "http-issuer", "nbf-far-future", "no-sub", "no-dest", "no-exp", "no-nbf"],
)
def test_session_token_rejected(overrides: dict[str, object], message: str) -> None:
    """Each way a session token can be wrong is rejected with a message naming it."""
    now = int(time.time())
    # Times are offsets from now, computed when the test runs rather than when it is collected.
    claims = {k: now + v if k in ("exp", "nbf") and isinstance(v, int) else v for k, v in overrides.items()}
    with pytest.raises(InvalidSessionToken) as info:
        _decode(session_token(**claims))  # type: ignore[arg-type]
    assert message in info.value.message


def test_session_token_nbf_slightly_in_future_accepted() -> None:
    """``nbf`` 5 s ahead (App Bridge clock skew) is inside the 10 s leeway."""
    assert _decode(session_token(nbf=int(time.time()) + 5))["shop"] == SHOP


def test_session_token_expired_within_leeway_accepted() -> None:
    """A token that expired 5 s ago is still inside the leeway; without leeway it is not."""
    token = session_token(exp=int(time.time()) - 5)
    assert _decode(token)["shop"] == SHOP
    with pytest.raises(InvalidSessionToken):
        _decode(token, leeway=0)


def test_session_token_old_secret_accepted_during_rotation() -> None:
    """A token signed with the previous secret verifies only while the old secret is configured."""
    token = session_token(secret=OLD_API_SECRET)
    assert _decode(token, old_secret=OLD_API_SECRET)["shop"] == SHOP
    with pytest.raises(InvalidSessionToken):
        _decode(token)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "a.b", "..."])
def test_session_token_garbage_rejected(garbage: str) -> None:
    """Malformed tokens are an InvalidSessionToken, never a crash."""
    with pytest.raises(InvalidSessionToken):
        _decode(garbage)


def test_non_ascii_signatures_are_a_mismatch_not_an_error() -> None:
    """A signature with non-ASCII characters is refused as InvalidSignature (compare_digest would raise)."""
    message = HMAC_VECTORS[0][1]
    with pytest.raises(InvalidSignature):
        verify_admin_query(parse_query(f"{message}&hmac={'é' * 64}"), "hush", tolerance=None)
    with pytest.raises(InvalidSignature):
        verify_proxy_query(parse_query(f"shop={SHOP}&timestamp=1&signature={'é' * 64}"), "hush", tolerance=None)
