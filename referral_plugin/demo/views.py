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
from flask import session
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

#: The session key remembering which demo customer the local app proxy signs requests for.
_CUSTOMER_KEY = "demo_customer"


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
    customer_id = int(raw) if raw else None
    # The local app proxy (below) signs the widget's own follow-up calls for the same customer.
    session[_CUSTOMER_KEY] = customer_id
    return _no_store(redirect(_signed_proxy_url("widget", customer_id), code=302))


def _signed_proxy_url(subpath: str, customer_id: int | None, extra: t.Sequence[tuple[str, str]] = ()) -> str:
    query = signed_proxy_query(
        demo_shop_domain(current_app),
        str(current_app.config["SHOPIFY_API_SECRET"]),
        customer_id=customer_id,
        path_prefix=str(current_app.config["APP_PROXY_PREFIX"]),
        extra=extra,
    )
    return f"/proxy/{subpath}?{query}"


def local_app_proxy(subpath: str) -> BaseResponse:
    """Play Shopify's app proxy: re-sign ``{APP_PROXY_PREFIX}/<subpath>`` as ``/proxy/<subpath>`` and redirect.

    The widget's links and forms point at the proxy prefix, as on a real storefront. 307 keeps a
    POST a POST (with its body) through the redirect. The customer is the one last opened via
    ``/demo/widget`` in this browser session.
    """
    if not current_app.config.get("DEMO_MODE"):
        raise NotFound("the local app proxy exists only in demo mode")
    extra = [(key, value) for key, value in request.args.items(multi=True)
             if key not in ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")]
    target = _signed_proxy_url(subpath, session.get(_CUSTOMER_KEY), extra)
    return _no_store(redirect(target, code=307 if request.method == "POST" else 302))


@bp.record_once
def _mount_local_app_proxy(state: t.Any) -> None:
    """Mount the local app proxy at the storefront's proxy prefix (outside ``/demo``), in demo mode only."""
    prefix = str(state.app.config.get("APP_PROXY_PREFIX") or "/apps/referrals").rstrip("/")
    state.app.add_url_rule(f"{prefix}/<path:subpath>", endpoint="demo_local_app_proxy",
                           view_func=local_app_proxy, methods=["GET", "POST"])


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
