"""The shop's program settings the merchant edits in the dashboard, validated and audited."""

from __future__ import annotations

import typing as t
from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation

import phonenumbers

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Shop

MAX_POINT_VALUE = Decimal(1000)


def settings_of(shop: Shop, defaults: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return the settings in effect: the shop's own, else the app's configuration."""
    return {
        "reward_test_orders": bool(shop.reward_test_orders if shop.reward_test_orders is not None
                                   else defaults.get("REWARD_TEST_ORDERS", False)),
        "reward_test_orders_inherited": shop.reward_test_orders is None,
        "phone_region": shop.phone_region or str(defaults.get("DEFAULT_PHONE_REGION", "US")),
        "phone_region_inherited": shop.phone_region is None,
        "point_value": Decimal(shop.point_value),
        "timezone": shop.timezone,
        "currency": shop.currency,
    }


def update_settings(shop: Shop, data: Mapping[str, t.Any], actor: str) -> dict[str, dict[str, t.Any]]:
    """Change the shop's program settings and write an audit event; return what changed.

    Keys: ``reward_test_orders`` (bool), ``phone_region`` (ISO 3166 alpha-2, e.g. ``US``),
    ``point_value`` (money per point, 0 to 1000, four decimals at most).

    :raise ValidationError: naming the field.
    """
    values: dict[str, t.Any] = {}
    if "reward_test_orders" in data:
        flag = data["reward_test_orders"]
        if not isinstance(flag, bool):
            raise ValidationError("Reward test orders is on or off.", field="reward_test_orders")
        values["reward_test_orders"] = flag
    if "phone_region" in data:
        region = str(data["phone_region"] or "").strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError("Choose a country code such as US, GB or DE.", field="phone_region",
                                  code="INVALID_PHONE_REGION")
        values["phone_region"] = region
    if "point_value" in data:
        try:
            point_value = Decimal(str(data["point_value"]).strip())
        except (InvalidOperation, ValueError):
            raise ValidationError("The point value is a number, e.g. 0.01.", field="point_value") from None
        if not point_value.is_finite() or not Decimal(0) <= point_value <= MAX_POINT_VALUE:
            raise ValidationError("The point value is from 0 to 1000.", field="point_value")
        if point_value != point_value.quantize(Decimal("0.0001")):
            raise ValidationError("The point value has at most four decimal places.", field="point_value")
        values["point_value"] = point_value
    changes: dict[str, dict[str, t.Any]] = {}
    for key, value in values.items():
        before = getattr(shop, key)
        if before != value:
            changes[key] = {"from": _plain(before), "to": _plain(value)}
            setattr(shop, key, value)
    if changes:
        db.session.add(AuditEvent(shop_id=shop.id, actor=actor, action="settings.update", subject_type="shop",
                                  subject_id=shop.id, details=changes))
        db.session.flush()
    return changes


def _plain(value: t.Any) -> t.Any:
    return str(value) if isinstance(value, Decimal) else value
