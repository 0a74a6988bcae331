"""The program summary for a date range: one function feeds the dashboard, its JSON and the Joy analytics.

The shop's days are turned into UTC bounds in Python (zoneinfo: daylight-saving days and half-hour
zones are exact), sent as a small VALUES table, and every figure is counted per day in SQL by a
correlated subquery that range-scans a ``(shop_id, created_at, ...)`` covering index: no raw row is
sorted, grouped or sent to Python, so the cost follows the rows in range, read from the index only.

That is :func:`raw_figures`, the definition. Long ranges read their closed days from the roll-up
(:mod:`referral_plugin.reports.rollup`), which stores what these same queries counted, day by day, at
fixed precision, so both paths give the same numbers; the recent, still open days are always counted raw.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import typing as t
from decimal import Decimal
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import CTE
from sqlalchemy import BigInteger
from sqlalchemy import ColumnElement
from sqlalchemy import Date
from sqlalchemy import Integer
from sqlalchemy import and_
from sqlalchemy import cast
from sqlalchemy import column
from sqlalchemy import distinct
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import values

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import UTCDateTime
from referral_plugin.referrals.reasons import REVIEW_REASONS

__all__ = [
    "DEFAULT_RANGE_DAYS",
    "MAX_RANGE_DAYS",
    "parse_date",
    "parse_range",
    "shop_summary",
    "shop_today",
    "shop_zone",
    "utc_bounds",
]

#: The range shown when none is asked for: the last 30 of the shop's days, today included.
DEFAULT_RANGE_DAYS = 30
#: The longest range one summary covers (a leap year).
MAX_RANGE_DAYS = 366

#: Attribution decisions that count as a referred order (rejected ones earn nothing and are not counted).
COUNTED_DECISIONS = ("qualified", "held")
#: Ledger rows that move the program's points or discount value: earned, let go from a hold, taken back.
VALUE_ENTRY_TYPES = (EntryType.GRANT.value, EntryType.RELEASE.value, EntryType.REVERSAL.value)
#: Ledger rows that mean a reward reached a customer.
REWARDED_ENTRY_TYPES = (EntryType.GRANT.value, EntryType.RELEASE.value)
TOP_ADVOCATES = 5
#: Held referrals that wait for the merchant's decision (released by approval, never by their hold date).
REVIEW_REASON_CODES = frozenset(str(reason.value) for reason in REVIEW_REASONS)
#: The engine's reason on a friend's discount that was the referral code itself: ``amount`` is money taken off.
APPLIED_AT_CHECKOUT = "APPLIED_AT_CHECKOUT"


def shop_zone(shop: Shop) -> ZoneInfo:
    """Return the shop's time zone, UTC when the stored name is unknown."""
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def shop_today(shop: Shop, now: dt.datetime | None = None) -> dt.date:
    """Return today's date in the shop's time zone."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(shop_zone(shop)).date()


def utc_bounds(zone: ZoneInfo, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC instants ``[first moment of start, first moment after end)`` of the shop's days."""
    low = dt.datetime.combine(start, dt.time.min, tzinfo=zone).astimezone(dt.UTC)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone).astimezone(dt.UTC)
    return low, high


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(raw: str, field: str) -> dt.date:
    """Read a ``YYYY-MM-DD`` date; years outside 1970-9000 are refused (no referral is that old or late).

    :raise ValidationError: ``INVALID_DATE``, naming ``field``.
    """
    text = raw.strip()
    try:
        # fromisoformat alone also reads 20260101 and week dates (2026-W01-1).
        value = dt.date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
    except ValueError:
        value = None
    if value is None or not 1970 <= value.year <= 9000:
        raise ValidationError(f"{field} must be a date written YYYY-MM-DD.", code="INVALID_DATE", field=field)
    return value


def parse_range(shop: Shop, start_raw: str | None, end_raw: str | None,
                now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """Read a ``start``/``end`` pair of ``YYYY-MM-DD`` strings; either missing means the last 30 days.

    :raise ValidationError: ``INVALID_DATE`` for an unreadable date, ``INVALID_RANGE`` when start is
        after end, ``RANGE_TOO_LONG`` beyond :data:`MAX_RANGE_DAYS`.
    """
    end = parse_date(end_raw, "end") if end_raw else shop_today(shop, now)
    start = parse_date(start_raw, "start") if start_raw else end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    check_range(start, end)
    return start, end


def check_range(start: dt.date, end: dt.date) -> None:
    """Refuse a reversed or over-long range with a stable code."""
    if start > end:
        raise ValidationError("The start date must not be after the end date.", code="INVALID_RANGE",
                              field="start")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(f"A range covers at most {MAX_RANGE_DAYS} days.", code="RANGE_TOO_LONG",
                              field="end")


def _day_table(zone: ZoneInfo, days: t.Sequence[dt.date]) -> CTE:
    """Return the shop's days as a VALUES table ``(i, d, lo, hi)`` of UTC bounds, computed with zoneinfo.

    Daylight-saving days (23 or 25 hours) and half-hour zones come out exact, whatever the database.
    A CTE rather than ``(VALUES ...) AS t (cols)``, which SQLite cannot parse.
    """
    rows: list[tuple[t.Any, t.Any, t.Any, t.Any]] = []
    for index, day in enumerate(days):
        low, high = utc_bounds(zone, day, day)
        rows.append((index, day, low, high))
    return values(column("i", Integer), column("d", Date), column("lo", UTCDateTime()),
                  column("hi", UTCDateTime()), name="shop_days").data(rows).cte("shop_days")


def day_list(start: dt.date, end: dt.date) -> list[dt.date]:
    """Return the days ``start`` to ``end``, both included."""
    return [start + dt.timedelta(days=index) for index in range((end - start).days + 1)]


def _money(value: Decimal | float | int | None) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _exact(value: Decimal | float | int | None, places: Decimal) -> Decimal:
    """Return one day's money total at a fixed precision, the same whether it was summed now or cached."""
    return _money(value).quantize(places)


def _number(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


CENT = Decimal("0.01")
#: Percentage discounts are rate x subtotal / 100: two decimals times two, over a hundred.
MICRO = Decimal("0.000001")


@dataclasses.dataclass
class DayFigures:
    """One shop day's additive figures."""

    clicks: int = 0
    invites: int = 0
    signups: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)
    points: int = 0
    coupons: int = 0
    fixed_discounts: Decimal = Decimal(0)
    percent_discounts: Decimal = Decimal(0)


@dataclasses.dataclass
class Figures:
    """Everything the summary counts over a range, before it is shaped for the page."""

    days: dict[dt.date, DayFigures]
    rewarded: int
    reversed: int
    #: The top advocates, best first: (customer id, referred orders, revenue in cents).
    advocates: list[tuple[int, int, int]]
    #: Net points in range of each top advocate.
    points: dict[int, int]


def shop_summary(shop: Shop, start: dt.date, end: dt.date, *, cached: bool = True) -> dict[str, t.Any]:
    """Return the program's figures for the shop's days ``start`` to ``end`` (both included).

    Days are the shop's days (``shop.timezone``); each figure counts events whose time falls in
    ``[start 00:00, end+1 00:00)`` shop time:

    - ``clicks``: invite-link visits (:class:`Click` rows).
    - ``invites``: invitations sent by advocates (:class:`Invitation` rows, by ``invited_at``).
    - ``signups``: referrals bound, i.e. friends tied to an advocate (:class:`Referral` rows, by ``created_at``).
    - ``referredOrders``: paid orders attributed to a referral and accepted (``qualified`` or ``held``
      :class:`OrderAttribution` rows; rejected ones are not counted); ``referralRevenue`` is their total.
    - ``pointsAwarded``: net points of the program, granted + released - reversed (manual adjustments and
      rewards still on hold are not counted).
    - ``couponsIssued``: discount codes created in Shopify (``issue`` ledger rows).
    - ``conversionRate``: ``referredOrders / clicks`` (0 without clicks); ``signupRate``: ``signups / clicks``.
    - ``rewardsCost``: ``pointsAwarded x shop.point_value`` plus the value of fixed-amount discounts given
      and of codes applied at checkout (net of reversals), plus percentage discounts valued at their
      rate of the referred order's subtotal (an estimate: the friend has not spent them yet).
    - ``roi``: ``(referralRevenue - rewardsCost) / rewardsCost``; None when nothing was spent.
    - ``funnel``: clicks, signups, first orders (= referredOrders), referrals rewarded (distinct referrals
      with a grant or release in range), referrals reversed (distinct referrals with a reversal in range).
    - ``topAdvocates``: the advocates with the most referred orders in range, with revenue and net points.
    - ``pending``: the state now, not in range: referrals held, friends without a first order yet, points
      on hold and the next release.
    - ``series``: one entry per day with the counts above.

    Closed days come from the roll-up (:mod:`referral_plugin.reports.rollup`), the recent tail from the
    raw rows; ``cached=False`` computes everything from the raw rows (the reference the roll-up is
    tested against). Both give the same numbers.

    :raise ValidationError: ``INVALID_RANGE`` or ``RANGE_TOO_LONG``.
    """
    check_range(start, end)
    with _without_jit():
        zone = shop_zone(shop)
        figures = None
        if cached:
            from referral_plugin.reports import rollup

            figures = rollup.figures(shop, zone, start, end)
        if figures is None:
            figures = raw_figures(shop, zone, start, end)
        return _shape(shop, zone, start, end, figures)


@contextlib.contextmanager
def _without_jit() -> t.Iterator[None]:
    """Turn PostgreSQL's JIT off for the block, then put the caller's setting back (same transaction).

    The per-day subqueries make the planner's cost estimate grow with the table (about 1M at a million
    referrals), past ``jit_optimize_above_cost``, so every call paid for LLVM inlining and optimisation of
    60-odd expressions (~0.4 s on an idle machine, seconds on a busy one) to save a few milliseconds of
    execution: the queries read a few thousand index entries per day, which interpretation handles fine.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = db.session.execute(select(func.set_config("jit", "off", True))).scalar_one()
    yield
    # Not in a ``finally``: after an error the transaction is aborted and its rollback drops the setting.
    db.session.execute(select(func.set_config("jit", previous, True)))


def raw_days(shop: Shop, zone: ZoneInfo, days: t.Sequence[dt.date], session: t.Any = None) -> dict[dt.date, DayFigures]:
    """Count each of ``days``' additive figures from the raw rows (one statement, one row per day).

    Money is summed per day and fixed at cents (micro-units for percentage discounts), so a day summed
    now and the same day read back from the roll-up are the same number on every database.
    """
    if not days:
        return {}
    table = _day_table(zone, days)

    def in_day(column_: t.Any) -> ColumnElement[bool]:
        return and_(column_ >= table.c.lo, column_ < table.c.hi)

    def count(model: t.Any, column_: t.Any, *where: ColumnElement[bool]) -> t.Any:
        return select(func.count()).where(model.shop_id == shop.id, in_day(column_), *where).scalar_subquery()

    def total(expression: t.Any, model: t.Any, column_: t.Any, *where: ColumnElement[bool]) -> t.Any:
        return (select(func.coalesce(func.sum(expression), 0))
                .where(model.shop_id == shop.id, in_day(column_), *where).scalar_subquery())

    # One correlated subquery per figure and day: each is a range scan of a (shop_id, created_at, ...)
    # covering index, so the database never sorts or groups the raw rows.
    counted = OrderAttribution.decision.in_(COUNTED_DECISIONS)
    value_rows = LedgerEntry.entry_type.in_(VALUE_ENTRY_TYPES)
    money_off = or_(LedgerEntry.reward_kind == RewardKind.FIXED_AMOUNT.value,
                    LedgerEntry.reason == APPLIED_AT_CHECKOUT)
    percent = (select(func.sum(LedgerEntry.amount * Referral.order_subtotal / 100))
               .join(Referral, Referral.id == LedgerEntry.referral_id)
               .where(LedgerEntry.shop_id == shop.id, in_day(LedgerEntry.created_at), value_rows,
                      LedgerEntry.reward_kind == RewardKind.PERCENTAGE.value,
                      or_(LedgerEntry.reason.is_(None), LedgerEntry.reason != APPLIED_AT_CHECKOUT))
               .scalar_subquery())
    rows = (session or db.session).execute(
        select(
            table.c.i,
            count(Click, Click.created_at),
            count(Invitation, Invitation.invited_at),
            count(Referral, Referral.created_at),
            count(OrderAttribution, OrderAttribution.created_at, counted),
            total(OrderAttribution.total, OrderAttribution, OrderAttribution.created_at, counted),
            total(LedgerEntry.points, LedgerEntry, LedgerEntry.created_at, value_rows,
                  LedgerEntry.reward_kind == RewardKind.POINTS.value),
            count(LedgerEntry, LedgerEntry.created_at, LedgerEntry.entry_type == EntryType.ISSUE.value),
            total(LedgerEntry.amount, LedgerEntry, LedgerEntry.created_at, value_rows, money_off),
            percent,
        ).order_by(table.c.i)
    ).all()
    result: dict[dt.date, DayFigures] = {}
    for index, clicks_, invites, signups, orders, revenue, points, coupons, money, percent_ in rows:
        result[days[int(index)]] = DayFigures(
            clicks=int(clicks_), invites=int(invites), signups=int(signups), orders=int(orders),
            revenue=_exact(revenue, CENT), points=int(points or 0), coupons=int(coupons),
            fixed_discounts=_exact(money, CENT), percent_discounts=_exact(percent_, MICRO))
    return result


def raw_figures(shop: Shop, zone: ZoneInfo, start: dt.date, end: dt.date) -> Figures:
    """Compute every ranged figure from the raw rows."""
    low, high = utc_bounds(zone, start, end)
    days = raw_days(shop, zone, day_list(start, end))
    rewarded, reversed_ = _funnel_tail(shop, low, high)
    advocates = top_advocates_raw(shop, low, high)
    points = advocate_points_raw(shop, low, high, [row[0] for row in advocates])
    return Figures(days=days, rewarded=rewarded, reversed=reversed_, advocates=advocates, points=points)


def _shape(shop: Shop, zone: ZoneInfo, start: dt.date, end: dt.date, figures: Figures) -> dict[str, t.Any]:
    """Turn :class:`Figures` into the ``/admin/api/summary`` document."""
    series = figures.days
    totals = DayFigures()
    for row in series.values():
        for field in dataclasses.fields(DayFigures):
            setattr(totals, field.name, getattr(totals, field.name) + getattr(row, field.name))
    revenue_total = totals.revenue
    points_cost = Decimal(totals.points) * _money(shop.point_value)
    fixed_discounts = totals.fixed_discounts
    percent_discounts = totals.percent_discounts
    rewards_cost = points_cost + fixed_discounts + percent_discounts
    clicks = totals.clicks
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": zone.key,
        "currency": shop.currency,
        "clicks": clicks,
        "invites": totals.invites,
        "signups": totals.signups,
        "referredOrders": totals.orders,
        "referralRevenue": _number(revenue_total),
        "pointsAwarded": totals.points,
        "couponsIssued": totals.coupons,
        "conversionRate": round(totals.orders / clicks, 4) if clicks else 0.0,
        "signupRate": round(totals.signups / clicks, 4) if clicks else 0.0,
        "pointValue": float(_money(shop.point_value)),
        "rewardsCost": _number(rewards_cost),
        "rewardsCostBreakdown": {
            "points": _number(points_cost),
            "fixedDiscounts": _number(fixed_discounts),
            "percentageDiscounts": _number(percent_discounts),
        },
        "roi": round(float((revenue_total - rewards_cost) / rewards_cost), 4) if rewards_cost > 0 else None,
        "funnel": [
            {"step": "clicks", "label": "Link clicks", "count": clicks},
            {"step": "signups", "label": "Friends signed up", "count": totals.signups},
            {"step": "firstOrders", "label": "First orders", "count": totals.orders},
            {"step": "rewarded", "label": "Rewarded", "count": figures.rewarded},
            {"step": "reversed", "label": "Reversed", "count": figures.reversed},
        ],
        "topAdvocates": _top_advocates(shop, figures),
        "pending": _pending(shop),
        "series": [
            {
                "date": day.isoformat(),
                "clicks": row.clicks,
                "invites": row.invites,
                "signups": row.signups,
                "referredOrders": row.orders,
                "referralRevenue": _number(row.revenue),
                "pointsAwarded": row.points,
                "couponsIssued": row.coupons,
            }
            for day, row in sorted(series.items())
        ],
    }


def _funnel_tail(shop: Shop, low: dt.datetime, high: dt.datetime) -> tuple[int, int]:
    """Count distinct referrals rewarded and reversed in range."""
    in_range = and_(
        LedgerEntry.shop_id == shop.id,
        LedgerEntry.created_at >= low,
        LedgerEntry.created_at < high,
        LedgerEntry.referral_id.is_not(None),
    )
    rewarded = db.session.execute(
        select(func.count(distinct(LedgerEntry.referral_id)))
        .where(in_range, LedgerEntry.entry_type.in_(REWARDED_ENTRY_TYPES))
    ).scalar_one()
    reversed_ = db.session.execute(
        select(func.count(distinct(LedgerEntry.referral_id)))
        .where(in_range, LedgerEntry.entry_type == EntryType.REVERSAL.value)
    ).scalar_one()
    return int(rewarded), int(reversed_)


def cents(expression: t.Any) -> t.Any:
    """Return ``expression`` (money with two decimals) as whole cents, exact on every database."""
    return cast(func.round(expression * 100), BigInteger)


def top_advocates_raw(shop: Shop, low: dt.datetime, high: dt.datetime) -> list[tuple[int, int, int]]:
    """Return the advocates with the most referred orders in range: (id, orders, revenue cents)."""
    orders = func.count().label("orders")
    revenue = func.coalesce(func.sum(cents(OrderAttribution.total)), 0).label("revenue")
    rows = db.session.execute(
        select(OrderAttribution.advocate_id, orders, revenue)
        .where(
            OrderAttribution.shop_id == shop.id,
            OrderAttribution.created_at >= low,
            OrderAttribution.created_at < high,
            OrderAttribution.decision.in_(COUNTED_DECISIONS),
            OrderAttribution.advocate_id.is_not(None),
        )
        .group_by(OrderAttribution.advocate_id)
        .order_by(orders.desc(), revenue.desc(), OrderAttribution.advocate_id)
        .limit(TOP_ADVOCATES)
    ).all()
    return [(int(a), int(o), int(r)) for a, o, r in rows]


def advocate_points_raw(shop: Shop, low: dt.datetime, high: dt.datetime, ids: t.Sequence[int]) -> dict[int, int]:
    """Return each of ``ids``' net points earned in range."""
    if not ids:
        return {}
    return {int(t.cast(int, k)): int(v or 0) for k, v in db.session.execute(
        select(LedgerEntry.customer_id, func.sum(LedgerEntry.points))
        .where(
            LedgerEntry.shop_id == shop.id,
            LedgerEntry.created_at >= low,
            LedgerEntry.created_at < high,
            # "+ 0" keeps the planner on the date-range covering index: the customer_id index would
            # read every row a top advocate ever earned (100k+ at scale) to keep the few in range.
            (LedgerEntry.customer_id + 0).in_(list(ids)),
            LedgerEntry.entry_type.in_(VALUE_ENTRY_TYPES),
        )
        .group_by(LedgerEntry.customer_id)
    ).all()}


def mask_email(email: str | None) -> str | None:
    """Return ``j***@example.com`` for ``jane@example.com``: enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _top_advocates(shop: Shop, figures: Figures) -> list[dict[str, t.Any]]:
    """Shape the top advocates with their names (masked) and points."""
    ids = [row[0] for row in figures.advocates]
    if not ids:
        return []
    customers = {
        c.id: c for c in db.session.scalars(select(Customer).where(Customer.shop_id == shop.id, Customer.id.in_(ids)))
    }
    result = []
    for advocate_id, count, revenue_cents in figures.advocates:
        customer = customers.get(advocate_id)
        result.append({
            "customerId": customer.shopify_customer_id if customer else None,
            "name": customer.display_name if customer and not customer.redacted_at else "Redacted customer",
            "email": mask_email(customer.email) if customer else None,
            "referredOrders": count,
            "referralRevenue": _number(Decimal(revenue_cents) / 100),
            "pointsEarned": figures.points.get(advocate_id, 0),
        })
    return result


def _pending(shop: Shop) -> dict[str, t.Any]:
    """Return what is waiting now: held referrals and their rewards, friends yet to order."""
    by_status = dict(db.session.execute(
        select(Referral.status, func.count())
        .where(Referral.shop_id == shop.id,
               Referral.status.in_((ReferralStatus.HELD.value, ReferralStatus.PENDING.value)))
        .group_by(Referral.status)
    ).all())
    held_points = db.session.execute(
        select(func.sum(LedgerEntry.points))
        .join(Referral, Referral.id == LedgerEntry.referral_id)
        .where(
            Referral.shop_id == shop.id,
            # Both sides match a partial index (held referrals' ids, the shop's hold rows), so PostgreSQL
            # merges two small index-only scans instead of looking up each held referral. The states are
            # literals: a planner proves a partial index's predicate from constants, never from parameters
            # (which a prepared statement's generic plan has).
            Referral.status == literal_column(f"'{ReferralStatus.HELD.value}'"),
            LedgerEntry.shop_id == shop.id,
            LedgerEntry.entry_type == literal_column(f"'{EntryType.HOLD.value}'"),
        )
    ).scalar()
    # A refund during the hold voids part of it (a negative VOID row tied to the hold): what is still on hold
    # is the holds net of those. Rare rows: read from their own partial index (the state a literal, as above).
    voided_points = db.session.execute(
        select(func.sum(LedgerEntry.points))
        .join(Referral, Referral.id == LedgerEntry.referral_id)
        .where(LedgerEntry.shop_id == shop.id,
               LedgerEntry.entry_type == literal_column(f"'{EntryType.VOID.value}'"),
               Referral.shop_id == shop.id, Referral.status == ReferralStatus.HELD.value)
    ).scalar()
    held_points = int(held_points or 0) + int(voided_points or 0)
    # A referral held for review is released by the merchant, never on its hold date: no release date. Its hold
    # rows are released at the referral's hold_until, so the earliest one is the next release: walked in date
    # order from the index, stopping at the first referral not waiting for review.
    next_release = db.session.execute(
        select(Referral.hold_until)
        .where(Referral.shop_id == shop.id, Referral.status == ReferralStatus.HELD.value,
               Referral.hold_until.is_not(None),
               or_(Referral.reason.is_(None), Referral.reason.not_in(sorted(REVIEW_REASON_CODES))))
        .order_by(Referral.hold_until)
        .limit(1)
    ).scalar()
    return {
        "heldReferrals": int(by_status.get(ReferralStatus.HELD.value, 0)),
        "awaitingFirstOrder": int(by_status.get(ReferralStatus.PENDING.value, 0)),
        "pointsOnHold": max(0, held_points),
        "nextReleaseAt": next_release.isoformat() if next_release else None,
    }
