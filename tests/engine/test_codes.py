"""Referral codes: format, entropy, stability, case-insensitive matching, uniqueness and invite links."""

from __future__ import annotations

import math
import typing as t

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.referrals import codes
from referral_plugin.referrals.customers import upsert_customer
from tests.conftest import make_shop
from tests.shopify_actions import OTHER_SHOP


def test_code_format_carries_at_least_40_bits() -> None:
    """Codes are 8 symbols of a 32-symbol unambiguous alphabet (40 bits) and do not repeat."""
    assert codes.CODE_LENGTH * math.log2(len(set(codes.CODE_ALPHABET))) >= 40
    drawn = {codes.new_code() for _ in range(500)}
    assert len(drawn) == 500
    for code in drawn:
        assert len(code) == 8 and set(code) <= set(codes.CODE_ALPHABET)
        assert code == code.upper()


def test_code_is_stable_per_customer_and_campaign(shop: Shop) -> None:
    """Asking twice for a customer's code gives the same code."""
    customer = upsert_customer(shop, 1, email="a@example.com")
    first = codes.get_or_create_code(shop, customer)
    second = codes.get_or_create_code(shop, customer)
    assert first.id == second.id
    assert db.session.query(ReferralCode).count() == 1


@pytest.mark.parametrize("typed", ["{code}", "{lower}", " {code} ", "{dashed}", "{spaced}", "{dashed_lower}"])
def test_find_code_matches_what_people_type(shop: Shop, typed: str) -> None:
    """Codes match in any case, with the dash or space people add, and with surrounding blanks."""
    customer = upsert_customer(shop, 1, email="a@example.com")
    code = codes.get_or_create_code(shop, customer).code
    text = typed.format(code=code, lower=code.lower(), dashed=codes.format_code(code),
                        spaced=f"{code[:4]} {code[4:]}", dashed_lower=codes.format_code(code).lower())
    found = codes.find_code(shop, text)
    assert found is not None and found.code == code


def test_codes_are_scoped_to_their_shop(shop: Shop) -> None:
    """Another shop cannot find this shop's code."""
    customer = upsert_customer(shop, 1, email="a@example.com")
    code = codes.get_or_create_code(shop, customer).code
    other = make_shop(OTHER_SHOP)
    assert codes.find_code(other, code) is None
    assert codes.find_code(shop, "NOPE2345") is None


class _ScriptedSecrets:
    """Stand-in for the ``secrets`` module whose first draws collide."""

    def __init__(self, script: str) -> None:
        self.script = iter(script)

    def choice(self, alphabet: t.Sequence[str]) -> str:
        return next(self.script)


def test_a_colliding_random_code_is_drawn_again(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the random draw hits an existing code, the engine draws again instead of failing."""
    monkeypatch.setattr(codes, "secrets", _ScriptedSecrets("AAAAAAAA" + "AAAAAAAA" + "BBBBBBBB"))
    first = codes.get_or_create_code(shop, upsert_customer(shop, 1))
    second = codes.get_or_create_code(shop, upsert_customer(shop, 2))
    assert (first.code, second.code) == ("AAAAAAAA", "BBBBBBBB")


def test_invite_link_has_the_contract_format(shop: Shop) -> None:
    """The invite link is ``https://{shop}{APP_PROXY_PREFIX}/r/{code}``."""
    code = codes.get_or_create_code(shop, upsert_customer(shop, 1))
    assert codes.invite_link(shop, code) == f"https://test-shop.myshopify.com/apps/referrals/r/{code.code}"
    assert codes.invite_link(shop, code.code.lower()).endswith(f"/r/{code.code}")
