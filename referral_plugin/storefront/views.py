"""The storefront through the Shopify app proxy: widget, invitations, invite-link landing.

Every route sits behind :func:`verify_proxy`: the signed query string is the only source of the shop and
the customer. Pages are served as ``application/liquid`` so Shopify renders them inside the shop's theme.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import redirect
from flask import request
from werkzeug.wrappers import Response as WerkzeugResponse

from referral_plugin.errors import Forbidden
from referral_plugin.errors import ReferralPluginError
from referral_plugin.errors import Unauthorized
from referral_plugin.errors import ValidationError
from referral_plugin.errors import register_error_renderer
from referral_plugin.security.signatures import parse_query
from referral_plugin.storefront import invites
from referral_plugin.storefront.landing import client_ip
from referral_plugin.storefront.landing import land
from referral_plugin.storefront.proxy import ProxyContext
from referral_plugin.storefront.proxy import verify_proxy_request
from referral_plugin.storefront.safety import render_liquid_safe
from referral_plugin.storefront.tokens import check_form_token
from referral_plugin.storefront.tokens import form_token
from referral_plugin.storefront.tokens import json_origin_ok
from referral_plugin.storefront.widget import widget_data

bp = Blueprint("storefront", __name__, url_prefix="/proxy")

LIQUID = "application/liquid"


def render_storefront_error(error: ReferralPluginError) -> Response:
    """Answer errors as JSON, except a verified no-JavaScript form post, which gets a page with a way back."""
    ctx = g.get("proxy")
    wants_page = (
        isinstance(ctx, ProxyContext)
        and request.method == "POST"
        and not request.is_json
        and request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"
    )
    if isinstance(ctx, ProxyContext) and request.method == "GET" and request.path.endswith("/widget"):
        # The widget page sits inside the shop's theme: a JSON error there reads as code to a shopper.
        return _page(_render("storefront/error.html", heading="We couldn't load your referrals",
                             message="Please try again in a moment.", back_url=None, retry=None),
                     fragment=request.args.get("view") == "fragment")
    if not wants_page:
        return jsonify(error.to_dict())
    retry = None
    if ctx.customer_id is not None and error.status_code not in (401, 403):
        # What the shopper typed comes back in the form, to fix and send again (never after a refused
        # cross-site post: that text is not theirs).
        retry = {
            "action": f"{ctx.path_prefix}/invitations",
            "token": form_token(ctx.shop.shopify_domain, ctx.customer_id),
            "friends": "\n".join(v for k, v in request.form.items(multi=True) if k != "token")[:4000],
        }
    return _page(_render("storefront/error.html", message=error.message, back_url=f"{ctx.path_prefix}/widget",
                         retry=retry))


def _render(template: str, **context: t.Any) -> str:
    """Render a storefront template (Liquid-safe) with the app's URL for its assets."""
    return render_liquid_safe(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        template,
        app_url=current_app.config["APP_URL"],
        **context,
    )


register_error_renderer(bp.name, render_storefront_error)


@bp.before_request
def verify_proxy() -> None:
    """Reject any request whose app-proxy signature, timestamp or shop does not hold."""
    # Cleared first: ``g`` outlives a request when an app context was already pushed (tests, CLI), and a
    # refused request must never render as the previous request's verified shop and customer.
    g.proxy = None
    g.proxy = verify_proxy_request(parse_query(request.query_string), current_app.config)


def _proxy() -> ProxyContext:
    return t.cast(ProxyContext, g.proxy)


def _page(body: str, *, fragment: bool = False) -> Response:
    """Serve a storefront page: Liquid inside the theme, or bare HTML where no Shopify sits in front (demo)."""
    demo_direct = bool(current_app.config.get("DEMO_MODE"))
    if fragment and not demo_direct:
        body = "{% layout none %}" + body
    response = Response(body, mimetype="text/html" if demo_direct else LIQUID)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    # A shopper's own referral page: nothing for search engines to index.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/widget")
def widget() -> Response:
    """Render the referral widget for the logged-in customer, or the offer and a login link."""
    fragment = request.args.get("view") == "fragment"
    body = _render("storefront/widget.html", data=_widget_data(_proxy()), fragment=fragment)
    return _page(body, fragment=fragment)


@bp.get("/widget.json")
def widget_json() -> Response:
    """Return the widget's data as JSON, for theme blocks that render it themselves."""
    return _no_store(jsonify(_widget_data(_proxy())))


def _widget_data(ctx: ProxyContext) -> dict[str, t.Any]:
    """Return the widget's data, with the invite form's settings for a logged-in customer."""
    data = widget_data(ctx.shop, ctx.customer_id, ctx.path_prefix)
    if ctx.customer_id is not None:
        data["invite"] = _invite_settings(ctx)
    return data


def _invite_settings(ctx: ProxyContext) -> dict[str, t.Any]:
    from referral_plugin.mail import mail_configured

    assert ctx.customer_id is not None
    return {
        "action": f"{ctx.path_prefix}/invitations",
        "token": form_token(ctx.shop.shopify_domain, ctx.customer_id),
        "emailDelivery": mail_configured(),
        "maxFriends": invites.MAX_FRIENDS_PER_REQUEST,
    }


@bp.post("/invitations")
def invitations() -> Response | tuple[Response, int]:
    """Invite friends by email or mobile for the logged-in customer; answer per-item results."""
    ctx = _proxy()
    if ctx.customer_id is None:
        raise Unauthorized("log in to invite friends", code="LOGIN_REQUIRED")
    payload: t.Mapping[str, t.Any] | None = None
    form_values: list[tuple[str, str]] = []
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object", code="INVALID_JSON")
        payload = body
        token = body.get("token") if isinstance(body.get("token"), str) else request.headers.get("X-Referral-Token")
        trusted = check_form_token(ctx.shop.shopify_domain, ctx.customer_id, token) or json_origin_ok(
            request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), ctx.shop.shopify_domain
        )
    else:
        form_values = list(request.form.items(multi=True))
        token = request.form.get("token") or request.headers.get("X-Referral-Token")
        trusted = check_form_token(ctx.shop.shopify_domain, ctx.customer_id, token)
    if not trusted:
        raise Forbidden("reload the page and try again", code="CROSS_SITE_REQUEST")
    friends = invites.parse_friends(payload, [(k, v) for k, v in form_values if k != "token"])
    invites.charge_rate_limit(ctx.shop, ctx.customer_id, len(friends))
    outcome = invites.invite_friends(ctx.shop, ctx.customer_id, friends)
    if payload is None and request.accept_mimetypes.best_match(["text/html", "application/json"]) == "text/html":
        return _page(_render("storefront/invite_results.html", outcome=outcome,
                             back_url=f"{ctx.path_prefix}/widget"))
    return _no_store(jsonify(outcome))


@bp.get("/r/<path:code>", merge_slashes=False)
def landing(code: str) -> WerkzeugResponse:
    """Count an invite-link click and send the visitor to the shop with the offer applied."""
    ctx = _proxy()
    target = land(
        ctx.shop,
        code.strip("/")[:64],
        ip=client_ip(request.headers.get("X-Forwarded-For"), request.remote_addr),
        user_agent=request.headers.get("User-Agent"),
        visitor_customer_id=ctx.customer_id,
    )
    response = redirect(target, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
