"""The dashboard summary's roll-up of closed days: derived data, rebuilt from the raw rows at will.

Every figure the summary shows is computed from the raw tables; these rows only cache what closed
days (the shop's days that ended long enough ago that no transaction can still write into them)
added up to, so a year-long range reads a few hundred rows instead of millions. A row is trusted only
while its ``version`` equals the shop's :class:`SummaryState` version, which every write that could
change a closed day bumps in its own transaction (``referral_plugin.reports.rollup``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base


class SummaryState(Base):
    """The version of a shop's roll-up: a bump in a writer's transaction retires every cached day."""

    __tablename__ = "summary_states"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class SummaryDay(Base):
    """One closed shop day's additive figures, as the raw per-day queries computed them."""

    __tablename__ = "summary_days"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    #: The time zone the day was cut in (a shop that changes zone gets new days).
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Part of the key: a rebuild writes beside the rows a concurrent reader may still be reading.
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger)
    invites: Mapped[int] = mapped_column(BigInteger)
    signups: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    points: Mapped[int] = mapped_column(BigInteger)
    coupons: Mapped[int] = mapped_column(BigInteger)
    fixed_discounts: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    percent_discounts: Mapped[Decimal] = mapped_column(Numeric(24, 6))


class SummaryDayKey(Base):
    """One closed day's figure per key: orders and revenue per advocate, points per customer, funnel steps.

    ``metric`` is ``advocate`` (key: customer id; ``n`` orders, ``cents`` revenue), ``points`` (key:
    customer id; ``n`` net points), or ``rewarded``/``reversed`` (key: the ordinal of the shop day of the
    referral's previous row of that step, 0 for none; ``n`` rows), which makes a distinct count over any
    range a sum: a referral counts once, on its first row in range, the one whose previous row is older.
    """

    __tablename__ = "summary_day_keys"

    # The primary key is the only index (a build writes a few hundred thousand rows a year of a big shop):
    # one customer's points are a range of it, and a metric's rows over days one scan of it.
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    cents: Mapped[int] = mapped_column(BigInteger, default=0)
