"""The summary's roll-up of closed days gives exactly the raw numbers, whatever happened and in what order."""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t
from decimal import Decimal

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.models import SummaryDay
from referral_plugin.models import SummaryState
from referral_plugin.models import utcnow
from referral_plugin.referrals import ledger
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import update_campaign
from referral_plugin.referrals.invitations import invite
from referral_plugin.reports import rollup
from referral_plugin.reports.summary import raw_figures
from referral_plugin.reports.summary import shop_summary
from referral_plugin.reports.summary import shop_today
from referral_plugin.reports.summary import shop_zone
from tests.admin.conftest import Dashboard
from tests.admin.conftest import Storefront
from tests.admin.conftest import customer_payload
from tests.admin.conftest import paid_order
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

WINDOW_DAYS = 40
TABLES: dict[str, tuple[t.Any, str]] = {
    "clicks": (Click, "created_at"),
    "invitations": (Invitation, "invited_at"),
    "referrals": (Referral, "created_at"),
    "attributions": (OrderAttribution, "created_at"),
    "ledger": (LedgerEntry, "created_at"),
}
_emails = itertools.count(1)


class World:
    """The test shop, driven through signed webhooks, the app proxy and the engine's services."""

    def __init__(self, shop: Shop, storefront: Storefront, shopify: ShopifyActions) -> None:
        self.shop = shop
        self.storefront = storefront
        self.shopify = shopify
        self.people: list[dict[str, t.Any]] = []
        self.orders: list[dict[str, t.Any]] = []

    def person(self, index: int) -> dict[str, t.Any]:
        """Return the index-th customer, registering new ones as needed."""
        while len(self.people) <= index % 8:
            self.people.append(self.storefront.register(f"p{next(_emails)}@example.com", "Pat"))
        return self.people[index % 8]

    def customer(self, payload: dict[str, t.Any]) -> Customer:
        """Return the engine's row for a registered customer."""
        db.session.expire_all()
        return db.session.execute(select(Customer).where(
            Customer.shop_id == self.shop.id, Customer.shopify_customer_id == payload["id"])).scalar_one()

    def send(self, topic: str, payload: dict[str, t.Any]) -> None:
        """Post a signed webhook; Shopify retries anything but a 2xx, so expect one."""
        response = self.shopify.post_webhook(topic, payload)
        assert response.status_code == 200, response.get_data(as_text=True)

    def run(self, op: tuple[t.Any, ...]) -> None:
        """Apply one operation of a random history."""
        kind = op[0]
        if kind == "click":
            self.storefront.click(self.storefront.code_of(self.person(op[1])))
        elif kind == "invite":
            advocate = self.customer(self.person(op[1]))
            invite(self.shop, advocate, "email", f"friend{next(_emails)}@example.net", source="widget")
            db.session.commit()
        elif kind == "order":
            friend = customer_payload(f"f{next(_emails)}@example.org")
            self.send("customers/create", friend)
            order = paid_order(friend, op[2], self.storefront.code_of(self.person(op[1])))
            self.send("orders/paid", order)
            self.orders.append(order)
        elif kind == "cancel" and self.orders:
            order = self.orders[op[1] % len(self.orders)]
            self.send("orders/cancelled", dict(order, cancelled_at="2026-11-02T10:00:00Z", cancel_reason="customer"))
        elif kind == "refund" and self.orders:
            order = self.orders[op[1] % len(self.orders)]
            refund = load_payload("refunds_create")
            refund["id"] = next(_emails) * 7
            refund["order_id"] = order["id"]
            transaction = dict(refund["transactions"][0])
            transaction.update({"order_id": order["id"], "amount": op[2], "kind": "refund", "status": "success"})
            refund["transactions"] = [transaction]
            self.send("refunds/create", refund)
        elif kind == "hold":
            update_campaign(ensure_default_campaign(self.shop), {"hold_days": op[1]}, actor="test")
            db.session.commit()
        elif kind == "release":
            ledger.release_due_holds(now=utcnow() + dt.timedelta(days=60), shop=self.shop)
            db.session.commit()
        elif kind == "review":
            held = db.session.execute(select(Referral).where(
                Referral.shop_id == self.shop.id, Referral.status == ReferralStatus.HELD)).scalars().first()
            if held is not None:
                if op[1]:
                    ledger.approve_held(held, actor="test")
                else:
                    ledger.reject_held(held, actor="test", reason="fraud")
                db.session.commit()
        elif kind == "age":
            # Time passes: everything that happened so far moves ``op[1]`` days into the past together
            # (a grant's two sides stay at one instant, a release stays after its hold).
            for model, column in TABLES.values():
                for row in db.session.execute(select(model).where(model.shop_id == self.shop.id)).scalars():
                    setattr(row, column, getattr(row, column) - dt.timedelta(days=op[1]))
            db.session.commit()
        elif kind == "backdate":
            self.backdate(*op[1:])
        elif kind == "import":
            # A bulk import of an old click, as a migration script would write it (Core, explicit time).
            code = db.session.execute(select(ReferralCode.id).where(ReferralCode.shop_id == self.shop.id)).scalar()
            db.session.execute(insert(Click), [{"shop_id": self.shop.id, "referral_code_id": code,
                                                "visitor_hash": f"import{next(_emails)}",
                                                "created_at": utcnow() - dt.timedelta(days=op[1])}])
            db.session.commit()
        elif kind == "redact" and self.people:
            person = self.person(op[1])
            self.send("customers/redact", {"shop_id": 1, "shop_domain": self.shop.shopify_domain,
                                           "customer": {"id": person["id"], "email": person["email"]},
                                           "orders_to_redact": [order["id"] for order in self.orders[:1]]})
        elif kind == "zone":
            self.shop.timezone = op[1]
            db.session.commit()

    def backdate(self, table: str, pick: int, days_ago: float, via: str) -> None:
        """Move one row of ``table`` into the past: a late event, an import or the demo's story."""
        model, column = TABLES[table]
        ids = db.session.execute(select(model.id).where(model.shop_id == self.shop.id)
                                 .order_by(model.id)).scalars().all()
        if not ids:
            return
        row_id = ids[pick % len(ids)]
        when = utcnow() - dt.timedelta(days=days_ago)
        if via == "orm":
            setattr(db.session.get(model, row_id), column, when)
        else:
            db.session.execute(update(model).where(model.id == row_id).values({column: when}))
        db.session.commit()

    def check(self, start_back: int, length: int) -> None:
        """Compare the cached summary with the raw one for a range ending ``start_back`` days ago."""
        db.session.expire_all()
        today = shop_today(self.shop)
        end = today - dt.timedelta(days=max(start_back - length, 0))
        start = end - dt.timedelta(days=length)
        zone = shop_zone(self.shop)
        if start <= rollup.closed_through(zone):
            fast = rollup.figures(self.shop, zone, start, end)
            assert fast is not None, "the roll-up was not used"
            assert fast == raw_figures(self.shop, zone, start, end)
        assert shop_summary(self.shop, start, end) == shop_summary(self.shop, start, end, cached=False)
        db.session.rollback()


amounts = st.sampled_from(["10.00", "64.50", "99.99", "120.05", "0.01"])
operations = st.one_of(
    st.tuples(st.just("click"), st.integers(0, 7)),
    st.tuples(st.just("invite"), st.integers(0, 7)),
    st.tuples(st.just("order"), st.integers(0, 7), amounts),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("refund"), st.integers(0, 50), amounts),
    st.tuples(st.just("hold"), st.sampled_from([0, 0, 3])),
    st.tuples(st.just("release")),
    st.tuples(st.just("review"), st.booleans()),
    st.tuples(st.just("backdate"), st.sampled_from(sorted(TABLES)), st.integers(0, 500),
              st.floats(0, WINDOW_DAYS), st.sampled_from(["orm", "core"])),
    st.tuples(st.just("import"), st.floats(0, WINDOW_DAYS)),
    st.tuples(st.just("age"), st.sampled_from([0.2, 0.5, 1, 1, 2, 3, 7])),
    st.tuples(st.just("redact"), st.integers(0, 7)),
    st.tuples(st.just("zone"), st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"])),
    st.tuples(st.just("check"), st.integers(0, WINDOW_DAYS), st.integers(0, WINDOW_DAYS)),
)


@pytest.fixture
def world(shop: Shop, storefront: Storefront, shopify: ShopifyActions) -> World:
    """Return the driver of random histories."""
    return World(shop, storefront, shopify)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=st.lists(operations, min_size=1, max_size=30))
def test_cached_summary_equals_raw_for_any_history(world: World, history: list[tuple[t.Any, ...]]) -> None:
    """After any mix of engine events, backdated rows, imports, redactions and zone changes, every range
    gives the same figures from the roll-up as from the raw rows."""
    for op in history:
        if op[0] == "check":
            world.check(op[1], op[2])
        else:
            world.run(op)
    world.check(WINDOW_DAYS, WINDOW_DAYS)
    world.check(3, 2)


def test_a_webhook_shows_at_once_after_the_roll_up_is_built(world: World, dashboard: Dashboard) -> None:
    """A paid order posted after the roll-up was built is in the next summary, and so is a backdated row."""
    world.run(("order", 0, "50.00"))
    world.backdate("attributions", 0, 10, "orm")
    today = shop_today(world.shop)
    start = (today - dt.timedelta(days=29)).isoformat()
    before = dashboard.api("/admin/api/summary", start=start, end=today.isoformat()).get_json()
    assert db.session.execute(select(SummaryDay).where(SummaryDay.shop_id == world.shop.id)).first()

    world.run(("order", 1, "70.00"))
    after = dashboard.api("/admin/api/summary", start=start, end=today.isoformat()).get_json()
    assert after["referredOrders"] == before["referredOrders"] + 1
    assert after["referralRevenue"] == before["referralRevenue"] + 70

    world.backdate("attributions", 1, 12, "core")
    moved = dashboard.api("/admin/api/summary", start=start, end=today.isoformat()).get_json()
    assert moved["referredOrders"] == after["referredOrders"]
    day = (utcnow() - dt.timedelta(days=12)).astimezone(shop_zone(world.shop)).date().isoformat()
    assert next(row for row in moved["series"] if row["date"] == day)["referredOrders"] >= 1
    assert moved == shop_summary(world.shop, today - dt.timedelta(days=29), today, cached=False)


def test_a_write_to_a_closed_day_bumps_the_version_in_its_own_transaction(world: World) -> None:
    """An old row's change retires the roll-up when it commits, and not before: a rollback keeps it."""
    world.run(("click", 0))
    world.backdate("clicks", 0, 5, "orm")

    def version() -> int:
        db.session.expire_all()
        state = db.session.get(SummaryState, world.shop.id)
        assert state is not None
        return state.version

    before = version()
    click = db.session.execute(select(Click).where(Click.shop_id == world.shop.id)).scalar_one()
    click.created_at = utcnow() - dt.timedelta(days=7)
    db.session.flush()
    db.session.rollback()
    assert version() == before

    click = db.session.execute(select(Click).where(Click.shop_id == world.shop.id)).scalar_one()
    click.created_at = utcnow() - dt.timedelta(days=7)
    db.session.commit()
    assert version() == before + 1


def test_new_rows_written_now_do_not_retire_the_roll_up(world: World) -> None:
    """Ordinary traffic (rows stamped now) leaves the cached closed days alone."""
    world.run(("order", 0, "50.00"))
    world.backdate("attributions", 0, 3, "orm")
    today = shop_today(world.shop)
    shop_summary(world.shop, today - dt.timedelta(days=9), today)
    state = db.session.get(SummaryState, world.shop.id)
    assert state is not None
    version = state.version
    for op in (("click", 0), ("order", 1, "20.00"), ("invite", 2), ("order", 3, "30.00")):
        world.run(op)
    db.session.expire_all()
    assert db.session.get(SummaryState, world.shop.id).version == version


def test_money_days_are_exact(world: World) -> None:
    """Per-day money is kept at fixed precision, so cents and half-cents add up the same both ways."""
    for total in ("0.10", "0.20", "0.30", "1234567.89"):
        world.run(("order", 0, total))
    for pick in range(4):
        world.backdate("attributions", pick, 2 + pick * 0.3, "orm")
    today = shop_today(world.shop)
    fast = shop_summary(world.shop, today - dt.timedelta(days=9), today)
    assert Decimal(str(fast["referralRevenue"])) == Decimal("1234568.49")
    assert fast == shop_summary(world.shop, today - dt.timedelta(days=9), today, cached=False)


def test_the_sessions_own_uncommitted_write_shows_in_its_summary(world: World) -> None:
    """A caller that moved a row into a closed day and has not committed sees the move in its own summary."""
    world.run(("order", 0, "50.00"))
    world.backdate("attributions", 0, 4, "orm")
    today = shop_today(world.shop)
    start = today - dt.timedelta(days=9)
    shop_summary(world.shop, start, today)
    attribution = db.session.execute(select(OrderAttribution).where(
        OrderAttribution.shop_id == world.shop.id)).scalar_one()
    attribution.created_at = utcnow() - dt.timedelta(days=6)
    db.session.flush()

    assert shop_summary(world.shop, start, today) == shop_summary(world.shop, start, today, cached=False)
    db.session.rollback()


def test_a_long_build_spreads_over_requests_and_every_answer_is_exact(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With no time budget each request builds one chunk of days and counts raw until the roll-up is whole."""
    world.run(("order", 0, "50.00"))
    world.run(("click", 0))
    world.run(("age", 80))
    monkeypatch.setattr(rollup, "BUILD_BUDGET_SECONDS", 0.0)
    today = shop_today(world.shop)
    start = today - dt.timedelta(days=99)
    reference = shop_summary(world.shop, start, today, cached=False)
    built = []
    for _ in range(6):
        assert shop_summary(world.shop, start, today) == reference
        db.session.rollback()
        built.append(db.session.execute(select(func.count()).select_from(SummaryDay).where(
            SummaryDay.shop_id == world.shop.id)).scalar_one())
    assert built[0] == rollup.BUILD_CHUNK_DAYS
    assert built[-1] == (rollup.closed_through(shop_zone(world.shop)) - start).days + 1
    assert rollup.figures(world.shop, shop_zone(world.shop), start, today) is not None


def test_a_write_committed_while_a_build_counts_retires_what_it_built(world: World,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process backdates a row after a build read the raw rows: the next summary rebuilds and sees it."""
    world.run(("order", 0, "50.00"))
    world.run(("age", 3))
    today = shop_today(world.shop)
    start = today - dt.timedelta(days=9)
    original = rollup.raw.raw_days
    raced: list[bool] = []

    def racing(*args: t.Any, **kwargs: t.Any) -> t.Any:
        counted = original(*args, **kwargs)
        if kwargs.get("session") is not None and not raced:
            raced.append(True)
            with Session(db.engine) as other:  # another worker, committing between the build's read and write
                code = other.execute(select(ReferralCode.id).where(ReferralCode.shop_id == world.shop.id)).scalar()
                other.add(Click(shop_id=world.shop.id, referral_code_id=code, visitor_hash="late",
                                created_at=utcnow() - dt.timedelta(days=2)))
                other.commit()
        return counted

    monkeypatch.setattr(rollup.raw, "raw_days", racing)
    shop_summary(world.shop, start, today)
    db.session.rollback()
    assert raced
    monkeypatch.setattr(rollup.raw, "raw_days", original)

    after = shop_summary(world.shop, start, today)
    assert after == shop_summary(world.shop, start, today, cached=False)
    assert after["clicks"] == 1 + sum(1 for _ in db.session.execute(select(Click.id).where(
        Click.shop_id == world.shop.id, Click.visitor_hash != "late")))


def test_an_edit_of_an_expired_old_row_retires_the_roll_up(world: World) -> None:
    """A counted column changed on a row whose time was never loaded still retires the roll-up."""
    world.run(("order", 0, "50.00"))
    world.run(("age", 4))
    today = shop_today(world.shop)
    start = today - dt.timedelta(days=9)
    shop_summary(world.shop, start, today)
    entry = db.session.execute(select(LedgerEntry).where(LedgerEntry.shop_id == world.shop.id,
                                                         LedgerEntry.points > 0)).scalars().first()
    assert entry is not None
    db.session.expire(entry)
    entry.points = 1234  # a repair script rewrites an old row's points
    db.session.commit()

    summary = shop_summary(world.shop, start, today)
    assert summary == shop_summary(world.shop, start, today, cached=False)


def test_the_periodic_job_builds_the_year_before_a_merchant_asks(world: World, app: t.Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``reports.warm_summaries`` counts the last WARM_DAYS closed days once (again after a write retires
    them), so the dashboard's request reads the roll-up instead of building it."""
    world.run(("order", 0, "50.00"))
    world.run(("click", 0))
    world.run(("age", 80))
    zone = shop_zone(world.shop)

    def days_built() -> int:
        db.session.rollback()
        return int(db.session.execute(select(func.count()).select_from(SummaryDay).where(
            SummaryDay.shop_id == world.shop.id)).scalar_one())

    get_queue(app).run_periodic("reports.warm_summaries")
    assert days_built() == rollup.WARM_DAYS
    db.session.execute(delete(SummaryDay).where(SummaryDay.shop_id == world.shop.id))
    db.session.commit()
    get_queue(app).run_periodic("reports.warm_summaries")  # the same minute: another consumer's run did it
    assert days_built() == 0
    assert rollup.warm(world.shop) == rollup.WARM_DAYS
    assert rollup.warm(world.shop) == 0

    def no_build(*_args: t.Any, **_kwargs: t.Any) -> int:
        raise AssertionError("the request built days the job had built")

    today = shop_today(world.shop)
    start = today - dt.timedelta(days=364)
    with monkeypatch.context() as patch:
        patch.setattr(rollup, "_build", no_build)
        assert rollup.figures(world.shop, zone, start, today) == raw_figures(world.shop, zone, start, today)

    world.backdate("attributions", 0, 10, "orm")  # an old row changes: the shop's version is retired
    assert rollup.warm(world.shop) == rollup.WARM_DAYS
    assert days_built() == rollup.WARM_DAYS  # the old version's rows went with the rebuild
    assert shop_summary(world.shop, start, today) == shop_summary(world.shop, start, today, cached=False)
