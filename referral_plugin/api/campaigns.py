"""``GET /api/v1/campaigns``: the shop's campaigns for integrators (tokens for the Capillary routes)."""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal

from flask import Blueprint
from flask import jsonify
from flask.wrappers import Response

from referral_plugin.api.auth import current_shop
from referral_plugin.api.auth import no_store
from referral_plugin.api.auth import require_api_key
from referral_plugin.api.ratelimit import add_rate_limit_headers
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import is_running
from referral_plugin.referrals.campaigns import list_campaigns as engine_list_campaigns

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)
bp.after_request(add_rate_limit_headers)
bp.after_request(no_store)


def number(value: Decimal | int | float | None) -> int | float | None:
    """Return a decimal as a JSON number: an integer when it is whole."""
    if value is None:
        return None
    decimal = Decimal(value)
    return int(decimal) if decimal == decimal.to_integral_value() else float(decimal)


def iso(value: dt.datetime | None) -> str | None:
    """Return an aware datetime as ISO 8601 UTC with a ``Z``, or None."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def serialize_campaign(campaign: Campaign) -> dict[str, t.Any]:
    """Return a campaign in the API's camelCase shape."""
    return {
        "token": campaign.token,
        "name": campaign.name,
        "status": campaign.status,
        "running": is_running(campaign),
        "isDefault": campaign.is_default,
        "advocateReward": {"kind": campaign.advocate_reward_kind, "value": number(campaign.advocate_reward_value)},
        "friendReward": {"kind": campaign.friend_reward_kind, "value": number(campaign.friend_reward_value)},
        "minOrderSubtotal": number(campaign.min_order_subtotal),
        "newCustomersOnly": campaign.new_customers_only,
        "advocateCap": campaign.advocate_cap,
        "holdDays": campaign.hold_days,
        "startsAt": iso(campaign.starts_at),
        "endsAt": iso(campaign.ends_at),
    }


@bp.get("/campaigns", merge_slashes=False)
def list_campaigns() -> Response:
    """List the key's shop's campaigns, the default first."""
    shop = current_shop()
    # Every installed shop has a default campaign, also one installed before the engine made it.
    ensure_default_campaign(shop)
    db.session.commit()
    return jsonify({"data": [serialize_campaign(c) for c in engine_list_campaigns(shop)]})
