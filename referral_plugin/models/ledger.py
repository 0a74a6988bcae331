"""The append-only rewards ledger: balances and statuses are sums and joins over these rows."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow


class EntryType(enum.StrEnum):
    """What a ledger row records."""

    GRANT = "grant"  # a reward earned (points count at once; a discount is pending until issued)
    HOLD = "hold"  # a reward earned but held until ``available_at`` or a review
    RELEASE = "release"  # a held reward let go (points start counting)
    ISSUE = "issue"  # a discount code created in Shopify for a grant
    REVERSAL = "reversal"  # a grant taken back, whole or in part
    ADJUSTMENT = "adjustment"  # a merchant's manual change, with a reason
    VOID = "void"  # a held reward rejected in review, never released


class Side(enum.StrEnum):
    """Who a row is for."""

    ADVOCATE = "advocate"
    FRIEND = "friend"
    MANUAL = "manual"


class LedgerEntry(Base):
    """One immutable ledger row.

    Exactly-once lives in the unique ``(shop_id, idempotency_key)``: every writer derives its key
    from the business event (``grant:{order}:{side}``, ``reversal:refund:{refund}:{side}``...), so a
    repeat of the event cannot add a second row, whichever process or thread wins the race.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        Index("ix_ledger_entries_shop_created", "shop_id", "created_at"),
        # Covers the dashboard summary's per-day figures, so they are read from the index alone.
        Index("ix_ledger_entries_shop_created_cover", "shop_id", "created_at", "entry_type", "reward_kind",
              "points", "amount", "referral_id", "customer_id", "reason"),
        # The summary's points on hold: hold rows only (a few), read from the index by shop and referral.
        Index("ix_ledger_entries_shop_holds", "shop_id", "referral_id", "points", "available_at",
              sqlite_where=text("entry_type = 'hold'"), postgresql_where=text("entry_type = 'hold'")),
        # ... net of the void rows a refund during the hold writes (rarer still): found from the shop, not from
        # every held referral.
        Index("ix_ledger_entries_shop_voids", "shop_id", "referral_id", "points",
              sqlite_where=text("entry_type = 'void'"), postgresql_where=text("entry_type = 'void'")),
        # The Capillary lookup: a customer's rows in a campaign, counted and paged in order from the index.
        Index("ix_ledger_entries_shop_customer_created", "shop_id", "customer_id", "campaign_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    entry_type: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    #: A :class:`~referral_plugin.models.campaign.RewardKind` value.
    reward_kind: Mapped[str] = mapped_column(String(16))
    #: Signed change in points (0 for discount rows).
    points: Mapped[int] = mapped_column(default=0)
    #: Signed money value (discount amount, or percentage for percentage discounts); 0 for points.
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    currency: Mapped[str | None] = mapped_column(String(3))
    discount_code: Mapped[str | None] = mapped_column(String(64))
    discount_node_id: Mapped[str | None] = mapped_column(String(128))
    #: The row this one issues, releases or reverses.
    related_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    idempotency_key: Mapped[str] = mapped_column(String(191))
    reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    shopify_order_id: Mapped[int | None] = mapped_column(BigInteger)
    shopify_refund_id: Mapped[int | None] = mapped_column(BigInteger)
    #: For holds: when the reward may be released.
    available_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<LedgerEntry {self.entry_type} {self.side} {self.points}pt {self.amount}>"
