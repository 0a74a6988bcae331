"""Customers as the program knows them: upsert by Shopify id, normalized email and phone, lookups."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError
from email_validator import validate_email
from flask import current_app
from sqlalchemy import select

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals._db import insert_once
from referral_plugin.security import crypto

_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
#: Identifier types :func:`find_customers` understands (Capillary's names and ours).
IDENTIFIER_TYPES = ("email", "mobile", "phone", "id", "externalId", "customerId")


def normalize_email(raw: str | None) -> str:
    """Return the email lower-cased after a syntax check; raise ``ValidationError`` when invalid."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("An email address is required.", field="email", code="INVALID_EMAIL")
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"Not a valid email address: {exc}", field="email", code="INVALID_EMAIL") from None
    return info.normalized.lower()


def canonical_email(email: str) -> str:
    """Return the form used to spot one person behind several addresses: no case, no ``+tag``, no gmail dots."""
    local, _, domain = email.strip().lower().rpartition("@")
    if not local:
        return email.strip().lower()
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def phone_region(shop: Shop | None) -> str:
    """Return the region for numbers written without a country code: the shop's, else the app's default."""
    if shop is not None and shop.phone_region:
        return shop.phone_region.upper()
    return str(current_app.config.get("DEFAULT_PHONE_REGION") or "US").upper()


def normalize_phone(raw: str | None, region: str | None = None) -> str:
    """Return the number in E.164 (``+917999836466``); raise ``ValidationError`` when it is not a valid number."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("A mobile number is required.", field="mobile", code="INVALID_MOBILE")
    text = raw.strip()
    digits = re.sub(r"[^\d+]", "", text)
    try:
        number = phonenumbers.parse(text, (region or "US").upper())
    except phonenumbers.NumberParseException:
        number = None
    if (number is None or not phonenumbers.is_valid_number(number)) and digits and not digits.startswith("+"):
        # Integrators often send the country code without the "+" (Capillary's 917999836466).
        try:
            number = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError("Not a valid mobile number.", field="mobile", code="INVALID_MOBILE")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def address_hash(address: Mapping[str, t.Any] | None) -> str | None:
    """Return a keyed hash of the normalized address (address1, zip, country), or None when too sparse."""
    if not isinstance(address, Mapping):
        return None
    line = _squash(address.get("address1"))
    zip_code = _squash(address.get("zip"))
    country = _squash(address.get("country_code") or address.get("country"))
    if not line or not (zip_code or country):
        return None
    return crypto.keyed_hash("address", f"{line}|{zip_code}|{country}")


def _squash(value: t.Any) -> str:
    """Return a string lower-cased with only letters and digits kept."""
    return re.sub(r"[\W_]+", "", str(value or "")).lower()


def shopify_id(value: t.Any) -> int | None:
    """Return a Shopify id (a positive 64-bit integer, given as a number or digits) or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def money(value: t.Any) -> Decimal | None:
    """Read a Shopify money string; None when absent, unreadable or too large for a money column."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number.quantize(Decimal("0.01")) if number.is_finite() and abs(number) < Decimal("1e10") else None


def get_customer(shop: Shop, shopify_customer_id: int | str | None) -> Customer | None:
    """Return the shop's customer with this Shopify id, or None."""
    wanted = shopify_id(shopify_customer_id)
    if wanted is None:
        return None
    return db.session.scalar(
        select(Customer).where(Customer.shop_id == shop.id, Customer.shopify_customer_id == wanted)
    )


def upsert_customer(
    shop: Shop,
    shopify_customer_id: int | str,
    *,
    email: str | None = None,
    phone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    address: Mapping[str, t.Any] | None = None,
    created_at: dt.datetime | None = None,
) -> Customer:
    """Create or update the shop's customer with this Shopify id; unusable email or phone is left out.

    A concurrent creation of the same customer loses its insert to the unique constraint and
    updates the winner's row instead.
    """
    customer_id = shopify_id(shopify_customer_id)
    if customer_id is None:
        raise ValidationError("A Shopify customer id is a positive whole number.", field="customer_id")
    fields: dict[str, t.Any] = {}
    if email:
        try:
            fields["email"] = normalize_email(email)
            fields["email_canonical"] = canonical_email(fields["email"])
        except ValidationError:
            pass
    if phone:
        try:
            fields["phone"] = normalize_phone(phone, phone_region(shop))
        except ValidationError:
            pass
    if first_name:
        fields["first_name"] = str(first_name)[:255]
    if last_name:
        fields["last_name"] = str(last_name)[:255]
    hashed = address_hash(address)
    if hashed:
        fields["address_hash"] = hashed
    if created_at is not None:
        fields["shopify_created_at"] = created_at
    customer = get_customer(shop, customer_id)
    if customer is None:
        candidate = Customer(shop_id=shop.id, shopify_customer_id=customer_id, **fields)
        if insert_once(candidate):
            return candidate
        customer = get_customer(shop, customer_id)
        if customer is None:  # pragma: no cover - the constraint said it exists
            raise RuntimeError("customer vanished after a unique violation")
    if customer.redacted_at is not None:
        # Erased on the shop's request: never put personal data back.
        return customer
    for key, value in fields.items():
        if key == "shopify_created_at" and customer.shopify_created_at is not None:
            continue
        setattr(customer, key, value)
    db.session.flush()
    return customer


def upsert_from_payload(shop: Shop, payload: Mapping[str, t.Any]) -> Customer | None:
    """Upsert a customer from a Shopify customer object (webhook ``customers/create`` or ``order.customer``)."""
    if not isinstance(payload, Mapping) or shopify_id(payload.get("id")) is None:
        return None
    address = payload.get("default_address")
    if not isinstance(address, Mapping):
        addresses = payload.get("addresses")
        address = addresses[0] if isinstance(addresses, list) and addresses and isinstance(addresses[0], Mapping) \
            else None
    return upsert_customer(
        shop,
        payload["id"],
        email=_str_or_none(payload.get("email")),
        phone=_str_or_none(payload.get("phone")),
        first_name=_str_or_none(payload.get("first_name")),
        last_name=_str_or_none(payload.get("last_name")),
        address=address,
        created_at=parse_datetime(payload.get("created_at")),
    )


def find_customers(shop: Shop, identifier_type: str, value: str) -> list[Customer]:
    """Return the shop's customers matching one identifier (email, mobile/phone, or Shopify id)."""
    kind = (identifier_type or "").strip()
    if kind == "email":
        try:
            email = normalize_email(value)
        except ValidationError:
            return []
        return list(db.session.scalars(
            select(Customer).where(Customer.shop_id == shop.id, Customer.email == email).order_by(Customer.id)))
    if kind in ("mobile", "phone"):
        try:
            phone = normalize_phone(value, phone_region(shop))
        except ValidationError:
            return []
        return list(db.session.scalars(
            select(Customer).where(Customer.shop_id == shop.id, Customer.phone == phone).order_by(Customer.id)))
    if kind in ("id", "externalId", "customerId", "shopify_customer_id"):
        customer = get_customer(shop, value)
        return [customer] if customer is not None else []
    raise ValidationError(f"Unknown identifier type {identifier_type!r}.", field="identifierName")


def mobile_digits(phone_e164: str | None) -> str | None:
    """Return an E.164 number without its ``+`` (Capillary's form), or None."""
    return phone_e164[1:] if phone_e164 and phone_e164.startswith("+") else phone_e164


def parse_datetime(value: t.Any) -> dt.datetime | None:
    """Read Shopify's ISO 8601 timestamps as aware UTC; None when absent, unreadable or beyond the calendar in UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Converted here, not when stored: 0001-01-01T00:00:00+14:00 has no UTC form (OverflowError), and a
        # handler failing on it would fail the same way on every retry.
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None


def _str_or_none(value: t.Any) -> str | None:
    """Return a non-empty string, or None."""
    return value if isinstance(value, str) and value.strip() else None
