"""Referral campaigns: who gets what, when, and under which rules."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow


class RewardKind(enum.StrEnum):
    """What a reward is: points in the ledger, or a discount code made in Shopify."""

    POINTS = "points"
    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"


class CampaignStatus(enum.StrEnum):
    """Whether a campaign is running; schedules narrow ``active`` further."""

    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Campaign(Base):
    """A referral campaign of a shop; every installed shop has exactly one default campaign."""

    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("shop_id", "token"),
        Index(
            "uq_campaigns_one_default_per_shop",
            "shop_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    #: Short public id, 5 characters from an unambiguous alphabet (like Capillary's ``J0H7Q``).
    token: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.ACTIVE)
    is_default: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    advocate_reward_kind: Mapped[str] = mapped_column(String(16), default=RewardKind.POINTS)
    advocate_reward_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(100))
    friend_reward_kind: Mapped[str] = mapped_column(String(16), default=RewardKind.POINTS)
    friend_reward_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(50))

    #: The friend's order subtotal must reach this (shop currency); 0 means no minimum.
    min_order_subtotal: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    new_customers_only: Mapped[bool] = mapped_column(default=True)
    #: Most rewarded referrals per advocate; None means no cap.
    advocate_cap: Mapped[int | None] = mapped_column(default=None)
    #: Days a reward is held (e.g. the return window) before it is released; 0 releases at once.
    hold_days: Mapped[int] = mapped_column(default=0)

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Campaign {self.token} {self.name!r}>"
