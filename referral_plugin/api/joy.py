"""Joy-compatible routes under ``/rest_api/v2/referrals`` (seed ``003``), in Joy's envelope."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from flask import request
from flask.wrappers import Response

from referral_plugin.api import joy_service as service
from referral_plugin.api.auth import current_shop
from referral_plugin.api.auth import no_store
from referral_plugin.api.auth import require_api_key
from referral_plugin.api.envelopes import joy_body
from referral_plugin.api.ratelimit import add_rate_limit_headers
from referral_plugin.extensions import db

bp = Blueprint("joy", __name__, url_prefix="/rest_api/v2/referrals")
bp.before_request(require_api_key)
bp.after_request(add_rate_limit_headers)
bp.after_request(no_store)


@bp.post("/invitations", merge_slashes=False)
def create_invitation() -> Response:
    """Return the invite link and referral code of the customer with the given email."""
    data = service.create_invitation(current_shop(), request.get_json(silent=True, force=True))
    db.session.commit()
    return jsonify(joy_body(data, message="Invitation generated successfully"))


@bp.get("/customers/<customer_id>/referrers", merge_slashes=False)
def customer_referrers(customer_id: str) -> Response:
    """List the customers who referred (or invited) this customer."""
    shop = current_shop()
    items = service.referrers(shop, service.customer_by_id(shop, customer_id))
    return jsonify(joy_body(items, meta={"count": len(items)}, message="List of referrers"))


@bp.get("/customers/<customer_id>/summary", merge_slashes=False)
def customer_summary(customer_id: str) -> Response:
    """Return this customer's referral statistics."""
    shop = current_shop()
    data = service.customer_summary(shop, service.customer_by_id(shop, customer_id))
    return jsonify(joy_body(data, message="Referral summary"))


@bp.get("/analytics", merge_slashes=False)
def referral_analytics() -> Response:
    """Return the program's analytics for a date range."""
    data = service.analytics(current_shop(), request.args.get("startDate"), request.args.get("endDate"))
    return jsonify(joy_body(data, meta={"startDate": data["startDate"], "endDate": data["endDate"]},
                            message="Referral analytics data"))
