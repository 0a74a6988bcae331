"""Capillary-compatible routes: ``POST /v1.1/customer/referrals`` and ``GET /v2/customers/lookup/referrals``."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from flask import request
from flask.wrappers import Response

from referral_plugin.api import capillary_service as service
from referral_plugin.api.auth import current_shop
from referral_plugin.api.auth import no_store
from referral_plugin.api.auth import require_api_key
from referral_plugin.api.ratelimit import add_rate_limit_headers
from referral_plugin.extensions import db

refer_bp = Blueprint("capillary_refer", __name__)
refer_bp.before_request(require_api_key)
refer_bp.after_request(add_rate_limit_headers)
refer_bp.after_request(no_store)

lookup_bp = Blueprint("capillary_lookup", __name__)
lookup_bp.before_request(require_api_key)
lookup_bp.after_request(add_rate_limit_headers)
lookup_bp.after_request(no_store)


@refer_bp.post("/v1.1/customer/referrals", merge_slashes=False)
def refer_customer() -> Response:
    """Refer friends of one or more customers (Capillary "Refer Customer"); results per item."""
    body = request.get_json(silent=True, force=True)
    customers = service.refer_customers(current_shop(), body, request.args)
    db.session.commit()
    return jsonify({
        "response": {
            "status": {"success": "true", "code": 200, "message": "SUCCESS"},
            "customers": {"customer": customers},
        }
    })


@lookup_bp.get("/v2/customers/lookup/referrals", merge_slashes=False)
def lookup_referrals() -> Response:
    """Return a customer's referral code, invitees, referees and incentives (Capillary lookup)."""
    query = service.parse_lookup(request.args)
    answer = service.lookup_referrals(current_shop(), query)
    db.session.commit()
    return jsonify(answer)
