"""Demo-mode shortcuts for the demo shop; registered only in demo mode.

They stand in for Shopify, which is not in front of the app in demo mode: a freshly signed widget URL
(the app proxy's job), and a fresh session token for the dashboard (App Bridge's job). They serve the
demo shop only, and with real credentials set the blueprint is not even registered (404).
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlencode

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from referral_plugin.demo.seed import demo_shop_domain
from referral_plugin.demo.signing import session_token
from referral_plugin.demo.signing import signed_proxy_query
from referral_plugin.errors import Forbidden
from referral_plugin.errors import NotFound
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.before_request
def demo_shop_only() -> None:
    """Refuse outside demo mode, and for any shop but the demo shop."""
    if not current_app.config.get("DEMO_MODE"):
        raise NotFound("demo shortcuts exist only in demo mode")
    requested = request.args.get("shop")
    if requested is not None and requested.strip().lower() != demo_shop_domain(current_app):
        raise Forbidden("demo shortcuts serve the demo shop only", code="NOT_DEMO_SHOP")


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@bp.get("/")
def index() -> BaseResponse:
    """List the demo's pages: the widget as a few customers, the dashboard, the health check."""
    domain = demo_shop_domain(current_app)
    shop = db.session.execute(select(Shop).where(Shop.shopify_domain == domain)).scalar_one_or_none()
    customers: list[dict[str, t.Any]] = []
    if shop is not None:
        rows = db.session.execute(
            select(Customer.shopify_customer_id, Customer.first_name, Customer.last_name, Customer.email,
                   ReferralCode.code)
            .outerjoin(ReferralCode, ReferralCode.customer_id == Customer.id)
            .where(Customer.shop_id == shop.id, Customer.shopify_customer_id.is_not(None))
            .order_by(Customer.id)
            .limit(12)
        ).all()
        customers = [
            {"id": shopify_id, "code": code,
             "name": " ".join(p for p in (first, last) if p) or (email or "").split("@")[0] or "Customer"}
            for shopify_id, first, last, email, code in rows
        ]
    return _no_store(Response(render_template("demo/index.html", shop_domain=domain, shop=shop,
                                              customers=customers, app_url=current_app.config["APP_URL"]),
                              mimetype="text/html"))


@bp.get("/widget")
def widget() -> BaseResponse:
    """Redirect to a freshly signed ``/proxy/widget`` URL, as the customer given (anonymous without one)."""
    raw = request.args.get("customer", "").strip()
    if raw and not raw.isdigit():
        raise ValidationError("customer must be a Shopify customer id", code="INVALID_CUSTOMER", field="customer")
    query = signed_proxy_query(
        demo_shop_domain(current_app),
        str(current_app.config["SHOPIFY_API_SECRET"]),
        customer_id=int(raw) if raw else None,
        path_prefix=str(current_app.config["APP_PROXY_PREFIX"]),
    )
    return _no_store(redirect(f"/proxy/widget?{query}", code=302))


def _token() -> str:
    return session_token(demo_shop_domain(current_app), str(current_app.config["SHOPIFY_API_KEY"]),
                         str(current_app.config["SHOPIFY_API_SECRET"]))


@bp.get("/admin")
def admin() -> BaseResponse:
    """Redirect to the dashboard with a fresh session token, as Shopify admin would load it."""
    query = urlencode({"shop": demo_shop_domain(current_app), "id_token": _token()})
    return _no_store(redirect(f"/admin?{query}", code=302))


@bp.get("/session-token")
def fresh_session_token() -> BaseResponse:
    """Return a fresh session token for the demo shop (the dashboard's stand-in for App Bridge)."""
    return _no_store(jsonify({"token": _token(), "shop": demo_shop_domain(current_app)}))
