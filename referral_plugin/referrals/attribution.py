"""Attribution: which advocate an order belongs to, and why (the evidence is kept with the decision)."""

from __future__ import annotations

import re
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.codes import canonical_code
from referral_plugin.referrals.codes import find_code
from referral_plugin.referrals.codes import looks_like_code
from referral_plugin.referrals.customers import money


class Source:
    """How an order or a friend was tied to an advocate (stored in ``source`` columns)."""

    DISCOUNT_CODE = "discount_code"
    CART_ATTRIBUTE = "cart_attribute"
    LANDING_SITE = "landing_site"
    INVITATION = "invitation"
    CUSTOMER_NOTE = "customer_note"
    PENDING_REFERRAL = "pending_referral"


#: Cart attribute names the widget and themes use for the code, first match wins.
CART_ATTRIBUTE_NAMES = ("referral_code", "ref", "referralcode", "referral")


@dataclass
class Attribution:
    """The evidence that ties an order to an advocate: a code, or a referral bound earlier."""

    source: str
    code: ReferralCode | None = None
    referral: Referral | None = None
    evidence: dict[str, t.Any] = field(default_factory=dict)
    #: The discount the code itself gave at checkout (when it was used as a discount code).
    applied_amount: Decimal | None = None
    #: Shopify's type of that discount: ``fixed_amount``, ``percentage`` or ``shipping``.
    applied_type: str | None = None

    def subtotal_before_code(self, subtotal: Decimal | None) -> Decimal | None:
        """Return the order's subtotal before the referral code's own discount on the items.

        Shopify's ``subtotal_price`` is after discounts, while the code's minimum in Shopify is checked
        before it: a friend whose cart met the minimum must not fail it by using the code.
        """
        if subtotal is None or self.source != Source.DISCOUNT_CODE or not self.applied_amount:
            return subtotal
        if self.applied_type == "shipping" or self.applied_amount <= 0:
            return subtotal
        return subtotal + self.applied_amount


def attribute_order(shop: Shop, order: Mapping[str, t.Any], friend: Customer | None) -> Attribution | None:
    """Return the order's attribution: discount code, then cart attribute, then ``?ref=``, then a pending referral."""
    for entry in _list(order.get("discount_codes")):
        raw = entry.get("code") if isinstance(entry, Mapping) else None
        code = find_code(shop, raw) if isinstance(raw, str) else None
        if code is not None:
            kind = entry.get("type")
            return Attribution(Source.DISCOUNT_CODE, code=code, evidence={"discount_code": raw},
                               applied_amount=money(entry.get("amount")),
                               applied_type=kind if isinstance(kind, str) else None)
    for entry in _list(order.get("note_attributes")):
        if not isinstance(entry, Mapping):
            continue
        name = str(entry.get("name") or "").strip().lower()
        value = entry.get("value")
        if name in CART_ATTRIBUTE_NAMES and isinstance(value, str):
            code = find_code(shop, value)
            if code is not None:
                return Attribution(Source.CART_ATTRIBUTE, code=code, evidence={"cart_attribute": {name: value}})
    landing = order.get("landing_site")
    if isinstance(landing, str) and landing:
        raw_ref = ref_from_url(landing)
        code = find_code(shop, raw_ref) if raw_ref else None
        if code is not None:
            return Attribution(Source.LANDING_SITE, code=code, evidence={"landing_site": landing[:500]})
    if friend is not None:
        referral = db.session.scalar(select(Referral).where(
            Referral.shop_id == shop.id, Referral.friend_id == friend.id,
            Referral.status == ReferralStatus.PENDING))
        if referral is not None:
            code = db.session.get(ReferralCode, referral.referral_code_id) if referral.referral_code_id else None
            return Attribution(Source.PENDING_REFERRAL, code=code, referral=referral,
                               evidence={"pending_referral": referral.id, "bound_by": referral.source})
    return None


def ref_from_url(url: str) -> str | None:
    """Return the code a landing URL carries (absolute or a path), or None.

    ``?ref={code}`` (the invite link's landing when the code is not a discount), else the code of a
    ``/discount/{code}`` path: the landing when it is a live discount, which the friend may then not use.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    for key, values in parse_qs(parts.query).items():
        if key.lower() == "ref" and values:
            return values[0]
    segments = [unquote(segment) for segment in parts.path.split("/") if segment]
    if len(segments) == 2 and segments[0].lower() == "discount":
        return segments[1]
    return None


def code_from_note(shop: Shop, note: str | None) -> ReferralCode | None:
    """Return the first of the shop's codes written in a customer note ("ref: K7QM-2XPA" or just the code)."""
    if not isinstance(note, str) or not note.strip():
        return None
    candidates: list[str] = []
    for token in re.split(r"[\s,;:()\[\]\"'#/]+", note):
        if looks_like_code(token):
            candidates.append(canonical_code(token))
    # Codes written with a space in the middle ("K7QM 2XPA").
    words = [w for w in re.split(r"[\s,;:()\[\]\"'#/]+", note) if w]
    for first, second in zip(words, words[1:], strict=False):
        if looks_like_code(first + second):
            candidates.append(canonical_code(first + second))
    for candidate in candidates:
        code = find_code(shop, candidate)
        if code is not None:
            return code
    return None


def _list(value: t.Any) -> list[t.Any]:
    return value if isinstance(value, list) else []
