"""Demo mode: the shortcuts exist only for the demo shop without credentials; seeding is idempotent."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterator
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from referral_plugin import create_app
from referral_plugin.config import DEMO_API_KEY
from referral_plugin.config import DEMO_API_SECRET
from referral_plugin.config import DEMO_SHOP_DOMAIN
from referral_plugin.demo.seed import build_story
from referral_plugin.demo.seed import seed_demo
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.models import utcnow
from referral_plugin.security.signatures import verify_proxy_query

#: Orderings the spread timestamps must keep; each query counts violations.
CONSISTENCY_CHECKS = {
    "referral before its code": "SELECT count(*) FROM referrals r JOIN referral_codes c ON c.id = r.referral_code_id "
                                "WHERE r.created_at < c.created_at",
    "referral before the friend signed up": "SELECT count(*) FROM referrals r JOIN customers f ON f.id = r.friend_id "
                                            "WHERE r.created_at < f.created_at",
    "decision before the referral": "SELECT count(*) FROM referrals WHERE decided_at < created_at",
    "ledger row before its referral": "SELECT count(*) FROM ledger_entries l JOIN referrals r ON r.id = l.referral_id "
                                      "WHERE l.created_at < r.created_at",
    "joined before invited": "SELECT count(*) FROM invitations WHERE joined_at < invited_at",
    "invited before the advocate signed up": "SELECT count(*) FROM invitations i JOIN customers a "
                                             "ON a.id = i.advocate_id WHERE i.invited_at < a.created_at",
    "order before the friend signed up": "SELECT count(*) FROM order_attributions o JOIN customers f "
                                         "ON f.id = o.friend_id WHERE o.created_at < f.created_at",
    "reversal before its order": "SELECT count(*) FROM ledger_entries l JOIN order_attributions o "
                                 "ON o.shopify_order_id = l.shopify_order_id AND o.shop_id = l.shop_id "
                                 "WHERE l.entry_type = 'reversal' AND l.created_at <= o.created_at",
    "hold ends before its decision": "SELECT count(*) FROM referrals WHERE hold_until < decided_at",
}
#: Row kinds a second seeding must not add to.
SEEDED_MODELS = (WebhookDelivery, Customer, Click, Referral, OrderAttribution, LedgerEntry, AuditEvent)


@pytest.fixture
def demo_app(tmp_path: t.Any) -> Iterator[Flask]:
    """Build an app without Shopify credentials (demo mode) on a fresh SQLite file; no context pushed."""
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.sqlite'}",
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    assert app.config["DEMO_MODE"] is True
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _count(app: Flask, model: t.Any, *where: t.Any) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_demo_widget_redirects_to_a_freshly_signed_proxy_url(demo_app: Flask) -> None:
    """/demo/widget?customer= answers 302 to /proxy/widget with a valid app-proxy signature for that customer."""
    response = demo_app.test_client().get("/demo/widget?customer=7100000000000")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/proxy/widget"
    pairs = parse_qsl(target.query, keep_blank_values=True)
    verify_proxy_query(pairs, DEMO_API_SECRET)
    assert dict(pairs)["logged_in_customer_id"] == "7100000000000"
    assert dict(pairs)["shop"] == DEMO_SHOP_DOMAIN


def test_demo_widget_without_customer_is_anonymous(demo_app: Flask) -> None:
    """/demo/widget without a customer signs an anonymous visit (empty logged_in_customer_id)."""
    response = demo_app.test_client().get("/demo/widget")
    pairs = dict(parse_qsl(urlsplit(response.headers["Location"]).query, keep_blank_values=True))
    assert pairs["logged_in_customer_id"] == ""


def test_demo_widget_rejects_a_non_numeric_customer(demo_app: Flask) -> None:
    """A customer that is not a Shopify id is 400, not a signed URL."""
    assert demo_app.test_client().get("/demo/widget?customer=1%26shop%3Devil").status_code == 400


def test_demo_shortcuts_refuse_other_shops(demo_app: Flask) -> None:
    """Asking a shortcut for any shop but the demo shop is refused."""
    client = demo_app.test_client()
    for path in ("/demo/widget", "/demo/admin", "/demo/session-token"):
        response = client.get(f"{path}?shop=victim.myshopify.com")
        assert response.status_code == 403, path


def test_demo_session_token_is_a_valid_session_token_for_the_demo_shop(demo_app: Flask) -> None:
    """/demo/session-token returns an HS256 session token the app's own decoder accepts for the demo shop."""
    session_token = pytest.importorskip("referral_plugin.security.session_token")
    response = demo_app.test_client().get("/demo/session-token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    claims = session_token.decode_session_token(response.get_json()["token"], DEMO_API_KEY, DEMO_API_SECRET)
    assert claims["dest"] == f"https://{DEMO_SHOP_DOMAIN}"
    assert claims["aud"] == DEMO_API_KEY


def test_demo_admin_redirects_with_a_fresh_token(demo_app: Flask) -> None:
    """/demo/admin answers 302 to /admin with the demo shop and an id_token."""
    response = demo_app.test_client().get("/demo/admin")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    query = dict(parse_qsl(target.query))
    assert target.path == "/admin"
    assert query["shop"] == DEMO_SHOP_DOMAIN
    assert query["id_token"].count(".") == 2


def test_demo_index_links_the_shortcuts(demo_app: Flask) -> None:
    """/demo is an HTML page linking the dashboard, the widget and the health check."""
    response = demo_app.test_client().get("/demo")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for link in ("/demo/admin", "/demo/widget", "/healthz"):
        assert link in page


@pytest.mark.parametrize("path", ["/demo", "/demo/widget", "/demo/admin", "/demo/session-token"])
def test_shortcuts_do_not_exist_with_real_credentials(client: t.Any, path: str) -> None:
    """With real Shopify credentials set, every demo shortcut is 404."""
    assert client.get(path).status_code == 404


def test_story_is_consistent() -> None:
    """The demo story has 31 customers, 8 advocates, and no friend joins or orders before their advocate."""
    story = build_story()
    assert len(story.people) == 31 and len(story.advocates) == 8
    assert len({p.shopify_id for p in story.people}) == 31
    first_advocate = max(a.signed_up_days_ago for a in story.advocates)
    for order in story.orders:
        assert order.days_ago <= order.buyer.signed_up_days_ago
        if order.code_of is not None:
            assert order.days_ago < order.code_of.signed_up_days_ago
        if order.cancelled_days_ago is not None:
            assert order.cancelled_days_ago < order.days_ago
        if order.refunded_days_ago is not None:
            assert 0 < order.refunded_days_ago < order.days_ago
    # The campaign's phases follow each other: every discount-phase order after every points order, and so on.
    phases = ["points", "discounts", "hold"]
    for earlier, later in zip(story.orders, story.orders[1:], strict=False):
        assert phases.index(earlier.phase) <= phases.index(later.phase)
    for friend in story.friends:
        assert friend.signed_up_days_ago < first_advocate
    for advocate, _email, _name, days in story.invitations:
        assert days < advocate.signed_up_days_ago
    assert sum(len(c) for c in story.clicks.values()) >= 30


def test_seeding_goes_through_webhooks_and_is_idempotent(demo_app: Flask) -> None:
    """Seeding installs the demo shop and sends signed webhooks; a second run adds nothing."""
    notes: list[str] = []
    report = seed_demo(demo_app, notes.append)
    assert report.shop_domain == DEMO_SHOP_DOMAIN
    with demo_app.app_context():
        shop = db.session.execute(select(Shop).where(Shop.shopify_domain == DEMO_SHOP_DOMAIN)).scalar_one()
        assert shop.uninstalled_at is None and shop.access_token_ciphertext is not None
    signups = _count(demo_app, WebhookDelivery, WebhookDelivery.topic == "customers/create")
    assert signups == 31
    before = {model.__name__: _count(demo_app, model) for model in SEEDED_MODELS}

    seed_demo(demo_app, notes.append)
    after = {model.__name__: _count(demo_app, model) for model in SEEDED_MODELS}
    assert after == before
    assert not [note for note in notes if "failed" in note or "answered" in note]


def _held(app: Flask, reason: str) -> list[Referral]:
    with app.app_context():
        return list(db.session.execute(select(Referral).where(Referral.status == "held",
                                                              Referral.reason == reason)).scalars())


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_seeded_shop_fills_every_dashboard_panel(demo_app: Flask) -> None:
    """After seeding, the summary has coupons, discount costs, a future release and a partly reversed referral."""
    summary = pytest.importorskip("referral_plugin.reports.summary")
    seed_demo(demo_app, lambda _note: None)
    with demo_app.app_context():
        shop = db.session.execute(select(Shop).where(Shop.shopify_domain == DEMO_SHOP_DOMAIN)).scalar_one()
        today = utcnow().date()
        figures = summary.shop_summary(shop, today - dt.timedelta(days=60), today)
    assert figures["couponsIssued"] >= 2
    assert figures["rewardsCostBreakdown"]["fixedDiscounts"] > 0
    assert figures["rewardsCostBreakdown"]["percentageDiscounts"] > 0
    assert figures["pending"]["heldReferrals"] >= 4 and figures["pending"]["pointsOnHold"] > 0
    assert dt.datetime.fromisoformat(figures["pending"]["nextReleaseAt"]) > utcnow()
    assert all(figures[key] > 0 for key in ("clicks", "invites", "signups", "referredOrders", "pointsAwarded"))
    assert [step["count"] for step in figures["funnel"]] == [step["count"] or 1 for step in figures["funnel"]]
    assert figures["topAdvocates"]


def test_seeded_holds_cover_each_reason_and_release_in_the_future(demo_app: Flask) -> None:
    """Referrals wait for the hold days, a shared address and the velocity rule; each hold ends after now."""
    seed_demo(demo_app, lambda _note: None)
    for reason in ("HOLD_PERIOD", "REVIEW_SHARED_ADDRESS", "REVIEW_VELOCITY", "REVIEW_DISPOSABLE_EMAIL"):
        assert _held(demo_app, reason), reason
    for reason in ("HOLD_PERIOD", "REVIEW_SHARED_ADDRESS", "REVIEW_VELOCITY"):
        for referral in _held(demo_app, reason):
            assert referral.hold_until is not None and _aware(referral.hold_until) > utcnow(), reason
            assert referral.decided_at is not None and _aware(referral.decided_at) < utcnow(), reason
    # The velocity limit was lowered only while its orders were placed.
    assert "REVIEW_VELOCITY_LIMIT" not in demo_app.config or demo_app.config["REVIEW_VELOCITY_LIMIT"] != 2


def test_seeded_self_referral_behind_a_plus_tag_is_rejected(demo_app: Flask) -> None:
    """The friend who orders with the advocate's own mailbox plus a +tag is rejected as a self-referral."""
    seed_demo(demo_app, lambda _note: None)
    with demo_app.app_context():
        rejected = db.session.execute(select(Referral).where(Referral.reason == "SELF_REFERRAL")).scalars().all()
    assert rejected and all(referral.status == "rejected" for referral in rejected)
    assert any((referral.evidence or {}).get("match") == "email" for referral in rejected)


def test_seeded_partial_refund_reverses_part_of_the_points(demo_app: Flask) -> None:
    """A refunds/create for part of an order leaves its referral partly reversed with a later reversal row."""
    seed_demo(demo_app, lambda _note: None)
    assert _count(demo_app, WebhookDelivery, WebhookDelivery.topic == "refunds/create") == 1
    with demo_app.app_context():
        referral = db.session.execute(select(Referral).where(Referral.status == "partially_reversed")).scalar_one()
        reversals = list(db.session.execute(select(LedgerEntry).where(
            LedgerEntry.referral_id == referral.id, LedgerEntry.entry_type == "reversal")).scalars())
        grants = list(db.session.execute(select(LedgerEntry).where(
            LedgerEntry.referral_id == referral.id, LedgerEntry.entry_type == "grant")).scalars())
        assert reversals and all(r.reason == "PARTIAL_REFUND" for r in reversals)
        assert 0 < sum(-r.points if r.points < 0 else r.points for r in reversals) < sum(g.points for g in grants)
        assert min(r.created_at for r in reversals) > max(g.created_at for g in grants)


def test_seeded_history_is_spread_and_never_precedes_its_code(demo_app: Flask) -> None:
    """After seeding, clicks and referrals fall within six weeks and never before the code they use."""
    seed_demo(demo_app, lambda _note: None)
    with demo_app.app_context():
        codes = {c.id: c for c in db.session.execute(select(ReferralCode)).scalars()}
        if not codes:
            pytest.skip("the engine does not make referral codes yet")
        clicks = list(db.session.execute(select(Click)).scalars())
        for click in clicks:
            assert click.created_at >= codes[click.referral_code_id].created_at
        for referral in db.session.execute(select(Referral)).scalars():
            if referral.referral_code_id in codes:
                assert referral.created_at >= codes[referral.referral_code_id].created_at
        days = {click.created_at.date() for click in clicks}
        assert len(days) > 7
        for label, query in CONSISTENCY_CHECKS.items():
            assert db.session.execute(text(query)).scalar_one() == 0, label


def test_local_app_proxy_signs_the_widgets_own_calls(demo_app: Flask) -> None:
    """In demo mode {APP_PROXY_PREFIX}/x is re-signed as /proxy/x for the customer last opened via /demo/widget."""
    client = demo_app.test_client()
    client.get("/demo/widget?customer=7100000000003")
    response = client.get("/apps/referrals/widget.json?view=fragment")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    pairs = parse_qsl(target.query, keep_blank_values=True)
    verify_proxy_query(pairs, DEMO_API_SECRET)
    assert target.path == "/proxy/widget.json"
    assert dict(pairs)["logged_in_customer_id"] == "7100000000003"
    assert dict(pairs)["view"] == "fragment"
    posted = client.post("/apps/referrals/invitations", json={"friends": ["a@example.com"]})
    assert posted.status_code == 307
    assert urlsplit(posted.headers["Location"]).path == "/proxy/invitations"


def test_local_app_proxy_does_not_exist_with_real_credentials(client: t.Any) -> None:
    """With real credentials the storefront prefix is not served by the app (Shopify's proxy is)."""
    assert client.get("/apps/referrals/widget").status_code == 404
