"""Campaigns: tokens, validation, the default campaign of every shop, and the offer wording."""

from __future__ import annotations

import datetime as dt
import secrets
import typing as t
from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation

from sqlalchemy import select

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import CampaignStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals._db import insert_once

#: 32 symbols, no 0/O/1/I: readable aloud and typed without mistakes.
TOKEN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TOKEN_LENGTH = 5

DEFAULT_NAME = "Give and get"
DEFAULT_ADVOCATE_POINTS = Decimal(100)
DEFAULT_FRIEND_POINTS = Decimal(50)

_MAX_VALUE = Decimal("1000000")
#: The advocate cap is a 32-bit column (PostgreSQL ``integer``).
_MAX_CAP = 2**31 - 1


def new_token() -> str:
    """Return a fresh random campaign token."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def get_campaign(shop: Shop, token: str) -> Campaign | None:
    """Return the shop's campaign with this token (case-insensitive), or None."""
    wanted = (token or "").strip().upper()
    # No token holds control characters; PostgreSQL would refuse a NUL in the query itself.
    if not wanted or not wanted.isprintable():
        return None
    return db.session.scalar(select(Campaign).where(Campaign.shop_id == shop.id, Campaign.token == wanted))


def get_default_campaign(shop: Shop) -> Campaign | None:
    """Return the shop's default campaign, or None when it has none yet."""
    return db.session.scalar(select(Campaign).where(Campaign.shop_id == shop.id, Campaign.is_default.is_(True)))


def list_campaigns(shop: Shop) -> list[Campaign]:
    """Return the shop's campaigns, the default first, then newest first."""
    rows = db.session.scalars(
        select(Campaign).where(Campaign.shop_id == shop.id).order_by(Campaign.is_default.desc(), Campaign.id.desc())
    )
    return list(rows)


def ensure_default_campaign(shop: Shop) -> Campaign:
    """Return the shop's default campaign, creating the contract's default exactly once.

    The partial unique index on ``is_default`` decides races: a concurrent caller's insert fails in
    its savepoint and it reads the winner's row instead.
    """
    existing = get_default_campaign(shop)
    if existing is not None:
        return existing
    for _ in range(5):
        campaign = Campaign(
            shop_id=shop.id,
            token=new_token(),
            name=DEFAULT_NAME,
            status=CampaignStatus.ACTIVE,
            is_default=True,
            advocate_reward_kind=RewardKind.POINTS,
            advocate_reward_value=DEFAULT_ADVOCATE_POINTS,
            friend_reward_kind=RewardKind.POINTS,
            friend_reward_value=DEFAULT_FRIEND_POINTS,
            min_order_subtotal=Decimal(0),
            # The contract's default rewards a friend's first paid order; "new customers only" is opt-in.
            new_customers_only=False,
            advocate_cap=None,
            hold_days=0,
        )
        if insert_once(campaign):
            return campaign
        existing = get_default_campaign(shop)
        if existing is not None:
            return existing
        # Otherwise the token collided with another campaign of the shop: draw again.
    raise RuntimeError("could not create the default campaign")


def has_ended(campaign: Campaign, at: dt.datetime | None = None) -> bool:
    """Tell whether the campaign is over for good: archived, or past its end. Paused or scheduled is not over."""
    if campaign.status == CampaignStatus.ARCHIVED:
        return True
    return campaign.ends_at is not None and (at or utcnow()) >= campaign.ends_at


def is_running(campaign: Campaign, at: dt.datetime | None = None) -> bool:
    """Tell whether the campaign is active and inside its schedule at ``at`` (default now)."""
    at = at or utcnow()
    if campaign.status != CampaignStatus.ACTIVE:
        return False
    if campaign.starts_at is not None and at < campaign.starts_at:
        return False
    return not (campaign.ends_at is not None and at >= campaign.ends_at)


def create_campaign(shop: Shop, data: Mapping[str, t.Any], actor: str) -> Campaign:
    """Create a campaign from merchant input; raise ``ValidationError(field=...)`` on bad values."""
    values = _validate(data, partial=False)
    token = values.pop("token", None)
    if token is not None and get_campaign(shop, token) is not None:
        raise ValidationError("Another campaign already uses this token.", field="token", code="TOKEN_TAKEN")
    campaign: Campaign | None = None
    for _ in range(5):
        candidate = Campaign(shop_id=shop.id, token=token or new_token(), is_default=False, **values)
        if insert_once(candidate):
            campaign = candidate
            break
        if token is not None:
            raise ValidationError("Another campaign already uses this token.", field="token", code="TOKEN_TAKEN")
    if campaign is None:
        raise RuntimeError("could not draw a unique campaign token")
    _audit(shop, actor, "campaign.create", campaign, _snapshot(campaign))
    return campaign


def update_campaign(campaign: Campaign, data: Mapping[str, t.Any], actor: str) -> Campaign:
    """Change a campaign from merchant input; raise ``ValidationError(field=...)`` on bad values."""
    values = _validate(data, partial=True, current=campaign)
    if "token" in values:
        raise ValidationError("A campaign's token cannot change: it is printed on codes and links.", field="token")
    if campaign.is_default and values.get("status") == CampaignStatus.ARCHIVED:
        raise ValidationError("The default campaign cannot be archived; pause it instead.", field="status")
    before = _snapshot(campaign)
    for key, value in values.items():
        setattr(campaign, key, value)
    db.session.flush()
    after = _snapshot(campaign)
    changes = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
    shop = db.session.get(Shop, campaign.shop_id)
    assert shop is not None
    _audit(shop, actor, "campaign.update", campaign, changes)
    friend_discount = RewardKind.POINTS not in (before["friend_reward_kind"], after["friend_reward_kind"]) or (
        before["friend_reward_kind"] != after["friend_reward_kind"])
    if friend_discount and _DISCOUNT_FIELDS & changes.keys():
        _resync_codes(campaign)
    return campaign


#: Campaign fields carried by the advocates' codes when they are live Shopify discounts.
_DISCOUNT_FIELDS = {"friend_reward_kind", "friend_reward_value", "starts_at", "ends_at", "min_order_subtotal",
                    "status"}


def _resync_codes(campaign: Campaign) -> None:
    """Have JOBS bring every code of the campaign in line with the friend's offer in Shopify."""
    from referral_plugin.models import ReferralCode
    from referral_plugin.referrals.jobs_bridge import schedule_code_discount_sync

    ids = db.session.scalars(select(ReferralCode.id).where(ReferralCode.campaign_id == campaign.id,
                                                           ReferralCode.retired_at.is_(None)))
    for code_id in ids:
        schedule_code_discount_sync(code_id)


def describe_reward(kind: str, value: Decimal, currency: str = "USD") -> str:
    """Return a reward in words: ``100 points``, ``10% off``, ``$5 off``."""
    if kind == RewardKind.PERCENTAGE:
        return f"{_plain(value)}% off"
    if kind == RewardKind.FIXED_AMOUNT:
        return f"{_money(value, currency)} off"
    points = int(value)
    return f"{points} point" if points == 1 else f"{points} points"


def describe_offer(campaign: Campaign, currency: str | None = None) -> dict[str, t.Any]:
    """Return the widget's wording of the offer: "Give 50 points, get 100 points" and its parts."""
    if currency is None:
        shop = db.session.get(Shop, campaign.shop_id)
        currency = shop.currency if shop is not None else "USD"
    friend = describe_reward(campaign.friend_reward_kind, campaign.friend_reward_value, currency)
    advocate = describe_reward(campaign.advocate_reward_kind, campaign.advocate_reward_value, currency)
    conditions = []
    if campaign.min_order_subtotal and campaign.min_order_subtotal > 0:
        conditions.append(f"on a first order of {_money(campaign.min_order_subtotal, currency)} or more")
    if campaign.new_customers_only:
        conditions.append("for new customers")
    return {
        "headline": f"Give {friend}, get {advocate}",
        "friendReward": {"kind": campaign.friend_reward_kind, "value": _plain(campaign.friend_reward_value),
                         "text": friend},
        "advocateReward": {"kind": campaign.advocate_reward_kind, "value": _plain(campaign.advocate_reward_value),
                           "text": advocate},
        "conditions": conditions,
        "holdDays": campaign.hold_days,
    }


def reward_to_dict(kind: str, value: Decimal) -> dict[str, t.Any]:
    """Return one side's reward as JSON-ready data."""
    return {"kind": kind, "value": _plain(value)}


def _plain(value: Decimal) -> int | float:
    """Return a Decimal as an int when whole, else a float, for wording and JSON."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def _money(value: Decimal, currency: str) -> str:
    """Return an amount with its currency symbol (or code), without needless decimals."""
    plain = _plain(value)
    text = f"{plain}" if isinstance(plain, int) else f"{Decimal(value):.2f}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


_FIELDS = {
    "name", "status", "starts_at", "ends_at", "advocate_reward_kind", "advocate_reward_value",
    "friend_reward_kind", "friend_reward_value", "min_order_subtotal", "new_customers_only",
    "advocate_cap", "hold_days", "token",
}
_ALIASES = {
    "startsAt": "starts_at", "endsAt": "ends_at", "minOrderSubtotal": "min_order_subtotal",
    "newCustomersOnly": "new_customers_only", "advocateCap": "advocate_cap", "holdDays": "hold_days",
}


def _validate(data: Mapping[str, t.Any], *, partial: bool, current: Campaign | None = None) -> dict[str, t.Any]:
    """Return clean column values from merchant input (snake_case or the API's camelCase)."""
    if not isinstance(data, Mapping):
        raise ValidationError("Campaign data must be an object.")
    raw: dict[str, t.Any] = {}
    for key, value in data.items():
        name = _ALIASES.get(key, key)
        if name in ("advocateReward", "friendReward", "advocate_reward", "friend_reward"):
            side = "advocate" if name.startswith("advocate") else "friend"
            if not isinstance(value, Mapping):
                raise ValidationError("A reward is an object with kind and value.", field=f"{side}_reward")
            if "kind" in value:
                raw[f"{side}_reward_kind"] = value["kind"]
            if "value" in value:
                raw[f"{side}_reward_value"] = value["value"]
            continue
        if name in _FIELDS:
            raw[name] = value
    out: dict[str, t.Any] = {}
    if "name" in raw or not partial:
        title = raw.get("name")
        if not isinstance(title, str) or not title.strip():
            raise ValidationError("A campaign needs a name.", field="name")
        if len(title.strip()) > 255:
            raise ValidationError("The name is longer than 255 characters.", field="name")
        out["name"] = title.strip()
    if "token" in raw and raw["token"] not in (None, ""):
        token = str(raw["token"]).strip().upper()
        if len(token) != TOKEN_LENGTH or any(ch not in TOKEN_ALPHABET for ch in token):
            raise ValidationError(
                f"A token is {TOKEN_LENGTH} characters from {TOKEN_ALPHABET}.", field="token")
        out["token"] = token
    if "status" in raw or not partial:
        status = raw.get("status", CampaignStatus.ACTIVE)
        if status not in {s.value for s in CampaignStatus}:
            raise ValidationError("Status is active, paused or archived.", field="status")
        out["status"] = CampaignStatus(status)
    for field in ("starts_at", "ends_at"):
        if field in raw:
            out[field] = _datetime(raw[field], field)
    starts = out.get("starts_at", current.starts_at if current else None)
    ends = out.get("ends_at", current.ends_at if current else None)
    if starts is not None and ends is not None and ends <= starts:
        raise ValidationError("The end must be after the start.", field="ends_at")
    for side, default_value in (("advocate", DEFAULT_ADVOCATE_POINTS), ("friend", DEFAULT_FRIEND_POINTS)):
        kind_field, value_field = f"{side}_reward_kind", f"{side}_reward_value"
        if kind_field in raw or not partial:
            kind = raw.get(kind_field, RewardKind.POINTS)
            if kind not in {k.value for k in RewardKind}:
                raise ValidationError("A reward is points, percentage or fixed_amount.", field=kind_field)
            out[kind_field] = RewardKind(kind)
        if value_field in raw or not partial:
            out[value_field] = _decimal(raw.get(value_field, default_value), value_field)
        kind = out.get(kind_field, getattr(current, kind_field, RewardKind.POINTS))
        value = out.get(value_field, getattr(current, value_field, default_value))
        if kind_field in out or value_field in out:
            _check_reward(kind, value, value_field)
    if "min_order_subtotal" in raw:
        minimum = _decimal(raw["min_order_subtotal"] or 0, "min_order_subtotal")
        if minimum < 0:
            raise ValidationError("The minimum cannot be negative.", field="min_order_subtotal")
        out["min_order_subtotal"] = minimum
    if "new_customers_only" in raw:
        if not isinstance(raw["new_customers_only"], bool):
            raise ValidationError("new_customers_only is true or false.", field="new_customers_only")
        out["new_customers_only"] = raw["new_customers_only"]
    if "advocate_cap" in raw:
        cap = raw["advocate_cap"]
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= _MAX_CAP):
            raise ValidationError(f"The cap is a whole number from 1 to {_MAX_CAP}, or null.", field="advocate_cap")
        out["advocate_cap"] = cap
    if "hold_days" in raw:
        days = raw["hold_days"]
        if days is None:
            days = 0
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
            raise ValidationError("Hold days are a whole number from 0 to 365.", field="hold_days")
        out["hold_days"] = days
    return out


def _check_reward(kind: str, value: Decimal, field: str) -> None:
    """Check one reward's value against its kind."""
    if kind == RewardKind.PERCENTAGE:
        if not Decimal(1) <= value <= Decimal(100):
            raise ValidationError("A percentage discount is from 1 to 100.", field=field)
    elif kind == RewardKind.POINTS:
        if value <= 0 or value != value.to_integral_value():
            raise ValidationError("Points are a whole number above 0.", field=field)
    elif value <= 0:
        raise ValidationError("A fixed amount is above 0.", field=field)
    if value > _MAX_VALUE:
        raise ValidationError("The value is too large.", field=field)


def _decimal(value: t.Any, field: str) -> Decimal:
    """Read a number (int, float or numeric string) as a Decimal with two places at most."""
    if isinstance(value, bool) or value is None:
        raise ValidationError("A number is required.", field=field)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError("A number is required.", field=field) from None
    if not number.is_finite():
        raise ValidationError("A number is required.", field=field)
    # Size first: quantize raises InvalidOperation past the context's 28 digits (1e309, thirty nines).
    if abs(number) > _MAX_VALUE:
        raise ValidationError("The value is too large.", field=field)
    if number != number.quantize(Decimal("0.01")):
        raise ValidationError("At most two decimal places.", field=field)
    return number


def _datetime(value: t.Any, field: str) -> dt.datetime | None:
    """Read an ISO 8601 datetime (naive means UTC), or None."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("Use an ISO 8601 date and time.", field=field) from None
    else:
        raise ValidationError("Use an ISO 8601 date and time.", field=field)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _snapshot(campaign: Campaign) -> dict[str, t.Any]:
    """Return the campaign's editable fields as JSON-ready values for the audit log."""
    return {
        "token": campaign.token,
        "name": campaign.name,
        "status": str(campaign.status),
        "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else None,
        "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
        "advocate_reward_kind": str(campaign.advocate_reward_kind),
        "advocate_reward_value": str(campaign.advocate_reward_value),
        "friend_reward_kind": str(campaign.friend_reward_kind),
        "friend_reward_value": str(campaign.friend_reward_value),
        "min_order_subtotal": str(campaign.min_order_subtotal),
        "new_customers_only": campaign.new_customers_only,
        "advocate_cap": campaign.advocate_cap,
        "hold_days": campaign.hold_days,
    }


def _audit(shop: Shop, actor: str, action: str, campaign: Campaign, details: dict[str, t.Any]) -> None:
    """Write one audit event about a campaign."""
    db.session.add(AuditEvent(shop_id=shop.id, actor=actor, action=action, subject_type="campaign",
                              subject_id=campaign.id, details=details))
    db.session.flush()
