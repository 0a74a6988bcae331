"""The embedded merchant dashboard and its JSON endpoints.

Every route is behind ``embedded_required``: the App Bridge session token names the shop, and every
query below is scoped to that shop. Documents carry the token as ``?id_token=``; the page's script
swaps in a fresh one before each navigation or form post. Forms also carry a CSRF token; the JSON
endpoints take ``Authorization: Bearer`` and JSON bodies only.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from referral_plugin import apikeys
from referral_plugin.admin.context import CSRF_FIELD
from referral_plugin.admin.context import actor
from referral_plugin.admin.context import admin_url
from referral_plugin.admin.context import check_csrf
from referral_plugin.admin.context import csrf_token
from referral_plugin.admin.context import current_shop
from referral_plugin.admin.context import raw_session_token
from referral_plugin.admin.settings import settings_of
from referral_plugin.admin.settings import update_settings
from referral_plugin.auth.embedded import APP_BRIDGE_URL
from referral_plugin.auth.embedded import embedded_required
from referral_plugin.auth.embedded import frame_ancestors
from referral_plugin.errors import BadRequest
from referral_plugin.errors import NotFound
from referral_plugin.errors import ReferralPluginError
from referral_plugin.errors import ValidationError
from referral_plugin.errors import register_error_renderer
from referral_plugin.errors import wants_json
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import CampaignStatus
from referral_plugin.models import Customer
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.referrals import campaigns as campaign_service
from referral_plugin.reports import exports
from referral_plugin.reports.chart import series_svg
from referral_plugin.reports.log import SOURCE_LABELS
from referral_plugin.reports.log import STATUS_LABELS
from referral_plugin.reports.log import LogFilters
from referral_plugin.reports.log import describe_audit_action
from referral_plugin.reports.log import describe_audit_actor
from referral_plugin.reports.log import describe_audit_subject
from referral_plugin.reports.log import describe_field
from referral_plugin.reports.log import describe_reason
from referral_plugin.reports.log import held_referrals
from referral_plugin.reports.log import list_referrals
from referral_plugin.reports.log import referral_story
from referral_plugin.reports.log import review_queue
from referral_plugin.reports.summary import DEFAULT_RANGE_DAYS
from referral_plugin.reports.summary import REVIEW_REASON_CODES
from referral_plugin.reports.summary import parse_range
from referral_plugin.reports.summary import shop_summary
from referral_plugin.reports.summary import shop_today
from referral_plugin.reports.summary import shop_zone

bp = Blueprint("admin", __name__)

#: Messages shown after a redirect, by a fixed code (never free text from the URL).
NOTICES = {
    "campaign-created": "Campaign created.",
    "campaign-saved": "Campaign saved.",
    "settings-saved": "Settings saved.",
    "key-revoked": "API key revoked. Integrations using it stop working now.",
    "adjusted": "Points adjusted.",
    "approved": "Approved. Rewards are released now, or when their hold days end.",
    "rejected": "Rejected. The held rewards are voided.",
    "nothing-selected": "Select at least one referral first.",
}
RANGE_PRESETS = (7, 30, 90, 365)
#: Row ids are 64-bit: a larger number in a URL or form names no row (and would overflow the query).
MAX_ID = 2**63 - 1
MAX_BULK = 200
#: Amounts from this many digits before the point up are refused here: far beyond any reward, and past what
#: two-decimal arithmetic holds (28 digits), where the engine's rounding would raise instead of answering.
MAX_AMOUNT_DIGITS = 15
#: Campaign start and end years the form accepts (typed in the shop's zone).
MIN_YEAR = 1970
MAX_YEAR = 9998


@bp.context_processor
def _template_globals() -> dict[str, t.Any]:
    """Give every dashboard template its shop, links that carry the token, and the CSRF token."""
    shop: Shop | None = getattr(g, "shop", None)
    values: dict[str, t.Any] = {
        "admin_url": admin_url,
        "api_key": current_app.config["SHOPIFY_API_KEY"],
        "app_bridge_url": APP_BRIDGE_URL,
        "demo_mode": bool(current_app.config.get("DEMO_MODE")),
        "session_token": raw_session_token(),
        "csrf_field": CSRF_FIELD,
        "status_labels": STATUS_LABELS,
        "audit_action": describe_audit_action,
        "audit_actor": describe_audit_actor,
        "audit_subject": describe_audit_subject,
        "field_label": describe_field,
        "review_reasons": REVIEW_REASON_CODES,
        "pretty_json": pretty_json,
        "notice": NOTICES.get(request.args.get("notice", "")),
    }
    if shop is not None:
        values["shop"] = shop
        values["zone"] = shop_zone(shop)
        values["csrf_token"] = csrf_token()
        values["held_count"] = db.session.query(Referral.id).filter(
            Referral.shop_id == shop.id, Referral.status == ReferralStatus.HELD.value).count()
    return values


#: Where an error page sends the merchant back to, by the section the failed request was in.
_BACK = (
    ("/admin/referrals", "admin.referrals", "Back to referrals"),
    ("/admin/review", "admin.review", "Back to the review queue"),
    ("/admin/campaigns", "admin.campaigns", "Back to campaigns"),
    ("/admin/settings", "admin.settings", "Back to settings"),
)
_HEADINGS = {400: "Check what was asked", 403: "Not allowed", 404: "Not found", 409: "Already changed"}


def render_dashboard_error(error: ReferralPluginError) -> Response:
    """Answer a dashboard error: JSON for the JSON endpoints, else a page inside the dashboard with a way back.

    The generic error page has no navigation, so inside Shopify admin's frame it was a dead end; this one
    keeps the tabs, names the problem and links back to the section, with the frame-ancestors policy.
    """
    shop: Shop | None = getattr(g, "shop", None)
    if "/api/" in request.path or wants_json():
        return jsonify(error.to_dict())
    if shop is None or error.status_code >= 500:
        return Response(render_template("errors/error.html", status=error.status_code, code=error.code,
                                        message=error.message), mimetype="text/html")
    endpoint, label = "admin.overview", "Back to the overview"
    for prefix, section, words in _BACK:
        if request.path.startswith(prefix):
            endpoint, label = section, words
    body = render_template("admin/error.html", error=error, heading=_HEADINGS.get(error.status_code, "Error"),
                           back_url=admin_url(endpoint), back_label=label,
                           active=endpoint.removeprefix("admin."))
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = frame_ancestors(shop.shopify_domain)
    response.headers["Cache-Control"] = "no-store"
    return response


register_error_renderer(bp.name, render_dashboard_error)


def pretty_json(value: t.Any) -> str:
    """Return evidence as indented JSON text for a ``<pre>``: readable characters, escaped by the template.

    ``tojson`` is made for scripts: it writes ``<``, ``>``, ``&`` and every accent as ``\\u`` escapes, so a
    note "same <household>" or a name "José" read as code in the page.
    """
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _redirect(endpoint: str, **values: t.Any) -> BaseResponse:
    """Redirect within the dashboard (Post/Redirect/Get), keeping the session token."""
    return redirect(admin_url(endpoint, **values), code=303)


def _range(shop: Shop) -> tuple[dt.date, dt.date, ValidationError | None]:
    """Return the requested range, or the default one and the error when the request's is bad."""
    try:
        start, end = parse_range(shop, request.args.get("start"), request.args.get("end"))
    except ValidationError as error:
        start, end = parse_range(shop, None, None)
        return start, end, error
    return start, end, None


def _instant(iso: str | None) -> dt.datetime | None:
    """Return the summary's ISO instant as an aware datetime (shown in the shop's zone), or None."""
    if not iso:
        return None
    moment = dt.datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _presets(shop: Shop) -> list[dict[str, t.Any]]:
    today = shop_today(shop)
    return [{"days": days, "start": (today - dt.timedelta(days=days - 1)).isoformat(), "end": today.isoformat()}
            for days in RANGE_PRESETS]


@bp.get("/")
@bp.get("/admin")
@embedded_required
def overview() -> t.Any:
    """Show the program at a glance for a date range: KPIs, funnel, daily chart, top advocates, pending."""
    shop = current_shop()
    start, end, error = _range(shop)
    summary = shop_summary(shop, start, end)
    body = render_template(
        "admin/overview.html",
        summary=summary,
        chart=series_svg(summary["series"], shop.currency),
        start=start,
        end=end,
        presets=_presets(shop),
        range_error=error,
        waiting=review_queue(shop, limit=5),
        next_release=_instant(summary["pending"].get("nextReleaseAt")),
        active="overview",
    )
    return body, 400 if error else 200


@bp.get("/admin/api/summary")
@embedded_required
def api_summary() -> t.Any:
    """Return the summary JSON for ``start``..``end`` (shop days; default the last 30)."""
    shop = current_shop()
    start, end = parse_range(shop, request.args.get("start"), request.args.get("end"))
    return jsonify(shop_summary(shop, start, end))


@bp.get("/admin/referrals")
@embedded_required
def referrals() -> t.Any:
    """List every referral with filters, search and pages."""
    shop = current_shop()
    filters = LogFilters.parse(request.args)
    page = list_referrals(shop, filters)
    return render_template("admin/referrals.html", page=page, filters=filters, active="referrals")


@bp.get(f"/admin/referrals/<int(max={MAX_ID}):referral_id>")
@embedded_required
def referral_detail(referral_id: int) -> t.Any:
    """Show one referral's story: attribution evidence, decision, ledger history and audit trail."""
    shop = current_shop()
    story = referral_story(shop, referral_id)
    return render_template("admin/referral.html", story=story, describe_reason=describe_reason,
                           source_labels=SOURCE_LABELS, active="referrals")


@bp.get("/admin/review")
@embedded_required
def review() -> t.Any:
    """List the held referrals with their evidence, to approve or reject."""
    shop = current_shop()
    return render_template("admin/review.html", items=review_queue(shop), describe_reason=describe_reason,
                           active="review")


def _referral_id(value: t.Any) -> int:
    """Read one referral id: a whole number or its digits; ``true`` or ``1.9`` is no id (int() made them 1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ValidationError("Referral ids are whole numbers.", code="INVALID_IDS", field="ids")


def _decide(shop: Shop, action: str, ids: t.Iterable[t.Any], reason: str) -> dict[str, list[int]]:
    """Approve or reject the shop's held referrals among ``ids``; return the decided and skipped ids."""
    from referral_plugin.referrals import ledger

    if action not in ("approve", "reject"):
        raise ValidationError("The action is approve or reject.", code="INVALID_ACTION", field="action")
    wanted = [_referral_id(i) for i in ids]
    if len(wanted) > MAX_BULK:
        raise ValidationError(f"Decide at most {MAX_BULK} referrals at a time.", code="TOO_MANY", field="ids")
    found = held_referrals(shop, wanted)
    who = actor()
    for referral in found:
        if action == "approve":
            ledger.approve_held(referral, who)
        else:
            ledger.reject_held(referral, who, reason or "Rejected in the review queue.")
    db.session.commit()
    decided = [referral.id for referral in found]
    return {"decided": decided, "skipped": [i for i in wanted if i not in decided]}


@bp.post("/admin/review")
@embedded_required
def review_decide() -> t.Any:
    """Approve or reject the selected held referrals (one, or many at once)."""
    check_csrf()
    shop = current_shop()
    action = request.form.get("action", "")
    ids = request.form.getlist("ids")
    single = request.form.get("decide-one", "")
    if single:  # a row's own button: "approve:12"
        action, _, one = single.partition(":")
        ids = [one]
    if not ids:
        return _redirect("admin.review", notice="nothing-selected")
    _decide(shop, action, ids, request.form.get("reason", "").strip())
    back = request.form.get("back")
    if back and back.isascii() and back.isdigit():
        return _redirect("admin.referral_detail", referral_id=int(back),
                         notice="approved" if action == "approve" else "rejected")
    return _redirect("admin.review", notice="approved" if action == "approve" else "rejected")


@bp.post("/admin/api/review")
@embedded_required
def api_review() -> t.Any:
    """Decide held referrals from JSON ``{"action": "approve"|"reject", "ids": [...], "reason": "..."}``."""
    body = request.get_json(silent=True)
    if not isinstance(body, Mapping):
        raise BadRequest("Send a JSON object.", code="INVALID_JSON")
    ids = body.get("ids")
    if not isinstance(ids, list):
        raise ValidationError("ids is a list of referral ids.", code="INVALID_IDS", field="ids")
    result = _decide(current_shop(), str(body.get("action", "")), ids, str(body.get("reason") or ""))
    return jsonify(result)


# Campaigns -------------------------------------------------------------------------------------------------


def _form_int(form: Mapping[str, str], field: str, *, blank: int | None) -> int | None:
    raw = (form.get(field) or "").strip()
    if not raw:
        return blank
    try:
        return int(raw)
    except ValueError:
        raise ValidationError("Enter a whole number.", field=field) from None


def _form_amount(form: Mapping[str, str], field: str, *, blank: str = "") -> str:
    """Return an amount field as typed, refusing a number too large to be an amount (a field error, not a 500)."""
    raw = (form.get(field) or "").strip() or blank
    try:
        number = Decimal(raw)
    except (InvalidOperation, ValueError):
        return raw  # the engine names what is wrong with it
    if number.is_finite() and number != 0 and number.adjusted() >= MAX_AMOUNT_DIGITS:
        raise ValidationError("The value is too large.", field=field)
    return raw


def _form_datetime(form: Mapping[str, str], field: str, shop: Shop) -> dt.datetime | None:
    raw = (form.get(field) or "").strip()
    if not raw:
        return None
    try:
        local = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError("Enter a date and time.", field=field) from None
    # Year 1 or 9999 in a zone off UTC has no UTC instant to store (or none to show back in the shop's zone).
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise ValidationError(f"Enter a year from {MIN_YEAR} to {MAX_YEAR}.", field=field)
    return local if local.tzinfo else local.replace(tzinfo=shop_zone(shop))


def campaign_input(form: Mapping[str, str], shop: Shop) -> dict[str, t.Any]:
    """Turn the campaign form into the engine's campaign data (times typed in the shop's zone)."""
    return {
        "name": form.get("name", ""),
        "status": form.get("status", CampaignStatus.ACTIVE.value),
        "advocate_reward_kind": form.get("advocate_reward_kind", RewardKind.POINTS.value),
        "advocate_reward_value": _form_amount(form, "advocate_reward_value"),
        "friend_reward_kind": form.get("friend_reward_kind", RewardKind.POINTS.value),
        "friend_reward_value": _form_amount(form, "friend_reward_value"),
        "min_order_subtotal": _form_amount(form, "min_order_subtotal", blank="0"),
        "new_customers_only": form.get("new_customers_only") in ("on", "true", "1"),
        "advocate_cap": _form_int(form, "advocate_cap", blank=None),
        "hold_days": _form_int(form, "hold_days", blank=0),
        "starts_at": _form_datetime(form, "starts_at", shop),
        "ends_at": _form_datetime(form, "ends_at", shop),
    }


def _campaign_values(campaign: Campaign | None, shop: Shop) -> dict[str, t.Any]:
    """Return a campaign's values as the form shows them."""
    zone = shop_zone(shop)

    def local(value: dt.datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if value else ""

    def plain(value: t.Any) -> str:
        text = f"{value}"
        return text[:-3] if text.endswith(".00") else text

    if campaign is None:
        return {"name": "", "status": "active", "advocate_reward_kind": "points", "advocate_reward_value": "100",
                "friend_reward_kind": "points", "friend_reward_value": "50", "min_order_subtotal": "0",
                "new_customers_only": False, "advocate_cap": "", "hold_days": "0", "starts_at": "", "ends_at": ""}
    return {
        "name": campaign.name,
        "status": str(campaign.status),
        "advocate_reward_kind": str(campaign.advocate_reward_kind),
        "advocate_reward_value": plain(campaign.advocate_reward_value),
        "friend_reward_kind": str(campaign.friend_reward_kind),
        "friend_reward_value": plain(campaign.friend_reward_value),
        "min_order_subtotal": plain(campaign.min_order_subtotal),
        "new_customers_only": campaign.new_customers_only,
        "advocate_cap": "" if campaign.advocate_cap is None else str(campaign.advocate_cap),
        "hold_days": str(campaign.hold_days),
        "starts_at": local(campaign.starts_at),
        "ends_at": local(campaign.ends_at),
    }


def _campaign_form(campaign: Campaign | None, values: Mapping[str, t.Any], error: ValidationError | None,
                   history: list[AuditEvent] | None = None) -> tuple[str, int]:
    status = 400 if error else 200
    return render_template(
        "admin/campaign_form.html",
        campaign=campaign,
        values=values,
        error=error,
        history=history or [],
        reward_kinds=[("points", "Points"), ("percentage", "Percentage discount"),
                      ("fixed_amount", "Fixed amount discount")],
        statuses=[("active", "Active"), ("paused", "Paused"), ("archived", "Archived")],
        active="campaigns",
    ), status


@bp.get("/admin/campaigns")
@embedded_required
def campaigns() -> t.Any:
    """List the shop's campaigns with their offers."""
    shop = current_shop()
    found = campaign_service.list_campaigns(shop)
    if not found:
        found = [campaign_service.ensure_default_campaign(shop)]
        db.session.commit()
    rows = [
        {"campaign": campaign, "offer": campaign_service.describe_offer(campaign, shop.currency),
         "running": campaign_service.is_running(campaign)}
        for campaign in found
    ]
    return render_template("admin/campaigns.html", rows=rows, active="campaigns")


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@embedded_required
def campaign_new() -> t.Any:
    """Create a campaign."""
    shop = current_shop()
    if request.method == "GET":
        return _campaign_form(None, _campaign_values(None, shop), None)
    check_csrf()
    try:
        campaign_service.create_campaign(shop, campaign_input(request.form, shop), actor())
    except ValidationError as error:
        db.session.rollback()
        return _campaign_form(None, _form_echo(request.form), error)
    db.session.commit()
    return _redirect("admin.campaigns", notice="campaign-created")


@bp.route("/admin/campaigns/<token>", methods=["GET", "POST"])
@embedded_required
def campaign_edit(token: str) -> t.Any:
    """Edit a campaign (the default one included)."""
    shop = current_shop()
    campaign = campaign_service.get_campaign(shop, token)
    if campaign is None:
        raise NotFound("No such campaign in this shop.")
    if request.method == "GET":
        return _campaign_form(campaign, _campaign_values(campaign, shop), None, _campaign_history(shop, campaign))
    check_csrf()
    try:
        campaign_service.update_campaign(campaign, campaign_input(request.form, shop), actor())
    except ValidationError as error:
        db.session.rollback()
        return _campaign_form(campaign, _form_echo(request.form), error, _campaign_history(shop, campaign))
    db.session.commit()
    return _redirect("admin.campaign_edit", token=campaign.token, notice="campaign-saved")


def _campaign_history(shop: Shop, campaign: Campaign) -> list[AuditEvent]:
    """Return the campaign's latest audit events, newest first (only for pages that show them)."""
    return list(db.session.scalars(
        db.select(AuditEvent)
        .where(AuditEvent.shop_id == shop.id, AuditEvent.subject_type == "campaign",
               AuditEvent.subject_id == campaign.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(20)
    ))


def _form_echo(form: MultiDict[str, str]) -> dict[str, t.Any]:
    """Return what the merchant typed, to show it back next to the error."""
    values: dict[str, t.Any] = {key: form.get(key, "") for key in _campaign_values(None, current_shop())}
    values["new_customers_only"] = form.get("new_customers_only") in ("on", "true", "1")
    return values


# Settings, API keys, adjustments -------------------------------------------------------------------------


def _settings_page(error: ValidationError | None = None, new_key: apikeys.NewApiKey | None = None,
                   form: Mapping[str, t.Any] | None = None, status: int = 200) -> tuple[str, int]:
    shop = current_shop()
    audit = list(db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.shop_id == shop.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(25)
    ))
    return render_template(
        "admin/settings.html",
        settings=settings_of(shop, current_app.config),
        keys=apikeys.list_keys(shop),
        new_key=new_key,
        error=error,
        form=form or {},
        audit=audit,
        active="settings",
    ), status


@bp.get("/admin/settings")
@embedded_required
def settings() -> t.Any:
    """Show the program settings, API keys, manual adjustments and the audit log."""
    return _settings_page()


@bp.post("/admin/settings")
@embedded_required
def settings_save() -> t.Any:
    """Save the program settings."""
    check_csrf()
    data: dict[str, t.Any] = {
        "reward_test_orders": request.form.get("reward_test_orders") in ("on", "true", "1"),
        "phone_region": request.form.get("phone_region", ""),
        "point_value": request.form.get("point_value", ""),
    }
    return _settings_change(lambda: update_settings(current_shop(), data, actor()), notice="settings-saved")


@bp.post("/admin/settings/api-keys")
@embedded_required
def api_key_create() -> t.Any:
    """Create an API key and show it once."""
    check_csrf()
    name = (request.form.get("name") or "").strip() or None
    try:
        created = apikeys.create_key(current_shop(), name, actor=actor())
    except ValidationError as error:
        db.session.rollback()
        return _settings_page(error=error, form=request.form, status=400)
    db.session.commit()
    body, status = _settings_page(new_key=created)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/settings/api-keys/<prefix>/revoke")
@embedded_required
def api_key_revoke(prefix: str) -> t.Any:
    """Revoke one of the shop's API keys."""
    check_csrf()
    api_key = apikeys.find_key(prefix, current_shop())
    if api_key is None:
        raise NotFound("No such API key in this shop.")
    apikeys.revoke_key(api_key, actor=actor())
    db.session.commit()
    return _redirect("admin.settings", notice="key-revoked")


@bp.post("/admin/settings/adjustments")
@embedded_required
def adjust_points() -> t.Any:
    """Add or take away a customer's points by hand, with a reason (a ledger row)."""
    from referral_plugin.referrals import ledger

    check_csrf()
    shop = current_shop()

    def adjust() -> None:
        customer = _find_customer(shop, request.form.get("customer", ""))
        points = _form_int(request.form, "points", blank=None)
        if not points:
            raise ValidationError("Enter a number of points other than 0.", field="points")
        reason = (request.form.get("reason") or "").strip()
        if not reason:
            raise ValidationError("Say why, for the customer's history.", field="reason")
        ledger.record_adjustment(shop, customer, points, reason[:500], actor())

    return _settings_change(adjust, notice="adjusted")


def _settings_change(change: t.Callable[[], object], *, notice: str) -> t.Any:
    """Run one settings-page change: commit and redirect with ``notice``, or roll back and show the error (400)."""
    try:
        change()
    except ValidationError as error:
        db.session.rollback()
        return _settings_page(error=error, form=request.form, status=400)
    db.session.commit()
    return _redirect("admin.settings", notice=notice)


def _find_customer(shop: Shop, identifier: str) -> Customer:
    """Return the one customer named by an email or a Shopify customer id."""
    from referral_plugin.referrals.customers import find_customers

    value = identifier.strip()
    if not value:
        raise ValidationError("Enter the customer's email or Shopify customer id.", field="customer")
    kind = "email" if "@" in value else "id"
    found = find_customers(shop, kind, value)
    if not found:
        raise ValidationError("No customer with that email or id in this shop.", field="customer",
                              code="CUSTOMER_NOT_FOUND")
    return found[0]


# Exports ---------------------------------------------------------------------------------------------------


def _csv(kind: str, build: t.Callable[[Shop, dt.date, dt.date], t.Iterator[str]]) -> Response:
    """Stream the shop's ``kind`` export for the requested date range as a CSV download."""
    shop = current_shop()
    start, end = parse_range(shop, request.args.get("start"), request.args.get("end"))
    response = Response(stream_with_context(build(shop, start, end)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{kind}-{start}-{end}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/exports/referrals.csv")
@embedded_required
def export_referrals() -> t.Any:
    """Download the referrals of the date range as CSV."""
    return _csv("referrals", exports.referrals_csv)


@bp.get("/admin/exports/ledger.csv")
@embedded_required
def export_ledger() -> t.Any:
    """Download the ledger rows of the date range as CSV."""
    return _csv("ledger", exports.ledger_csv)


__all__ = ["DEFAULT_RANGE_DAYS", "bp", "campaign_input"]
