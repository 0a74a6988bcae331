"""Customers: normalized email and phone, the canonical email, and upserts."""

from __future__ import annotations

import threading

import pytest
from flask import Flask

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals import customers
from tests.conftest import run_at_once


def test_normalize_email_checks_syntax_and_lowercases() -> None:
    """Emails are syntax-checked without DNS and lower-cased."""
    assert customers.normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    for bad in ("", "not-an-email", "a@b", "two@@example.com"):
        with pytest.raises(ValidationError):
            customers.normalize_email(bad)


@pytest.mark.parametrize(("raw", "canonical"), [
    ("Jane.Doe+promo@gmail.com", "janedoe@gmail.com"),
    ("j.a.n.e.doe@googlemail.com", "janedoe@gmail.com"),
    ("Jane.Doe+x@example.com", "jane.doe@example.com"),
])
def test_canonical_email_folds_case_dots_and_tags(raw: str, canonical: str) -> None:
    """The canonical email folds case, ``+tags`` and gmail's dots and googlemail alias."""
    assert customers.canonical_email(raw) == canonical


def test_normalize_phone_gives_e164_with_the_region() -> None:
    """Numbers become E.164 using the region for national numbers; bad numbers are rejected."""
    assert customers.normalize_phone("7999836466", "IN") == "+917999836466"
    assert customers.normalize_phone("+1 (415) 555-2671", "IN") == "+14155552671"
    assert customers.normalize_phone("917999836466", "US") == "+917999836466"
    with pytest.raises(ValidationError):
        customers.normalize_phone("79998364", "IN")


def test_upsert_tolerates_missing_or_bad_contact_details(shop: Shop) -> None:
    """Null or unusable email and phone are left empty; later data fills them in."""
    customer = customers.upsert_customer(shop, 42, email=None, phone="not a phone")
    assert (customer.email, customer.phone) == (None, None)
    again = customers.upsert_customer(shop, "42", email="Ann+x@Gmail.com", phone="+14155552671",
                                      address={"address1": "1 Main St", "zip": "94105", "country_code": "US"})
    assert again.id == customer.id
    assert (again.email, again.email_canonical, again.phone) == ("ann+x@gmail.com", "ann@gmail.com",
                                                                 "+14155552671")
    assert again.address_hash and len(again.address_hash) == 64
    assert customers.find_customers(shop, "email", "ANN+X@gmail.com") == [again]
    assert customers.find_customers(shop, "mobile", "14155552671") == [again]
    assert customers.find_customers(shop, "id", "42") == [again]


def test_concurrent_upserts_of_one_customer_make_one_row(app: Flask, shop: Shop) -> None:
    """Concurrent creations of the same Shopify customer end in one row."""
    shop_id = shop.id
    db.session.commit()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                current = db.session.get(Shop, shop_id)
                assert current is not None
                barrier.wait()
                customers.upsert_customer(current, 777, email="same@example.com")
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_at_once(run, [()] * 6)
    assert errors == []
    assert db.session.query(Customer).filter_by(shop_id=shop_id, shopify_customer_id=777).count() == 1
