"""Codes, clicks, invitations, referrals and the per-order attribution decisions."""

from __future__ import annotations

import datetime as dt
import enum
import typing as t
from decimal import Decimal

from sqlalchemy import JSON
from sqlalchemy import BigInteger
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


class ReferralCode(Base):
    """An advocate's personal code in one campaign: stable, unguessable, unique per shop.

    ``code`` is stored in canonical (upper-case) form and matched case-insensitively.
    ``discount_node_id`` is set once the code is also a live Shopify discount (the friend's offer).
    """

    __tablename__ = "referral_codes"
    __table_args__ = (
        UniqueConstraint("shop_id", "code"),
        UniqueConstraint("campaign_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    discount_node_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ReferralCode {self.code}>"


class Click(Base):
    """One visit through an invite link. No raw IP: a keyed hash of the masked IP and user agent."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_shop_created", "shop_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    referral_code_id: Mapped[int] = mapped_column(
        ForeignKey("referral_codes.id", ondelete="CASCADE"), index=True
    )
    visitor_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InvitationStatus(enum.StrEnum):
    """How far an invited friend got."""

    INVITED = "invited"
    JOINED = "joined"
    PURCHASED = "purchased"


class Invitation(Base):
    """An advocate's invitation of a friend by email or mobile; one per advocate, campaign and invitee."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "advocate_id", "channel", "identifier"),
        Index("ix_invitations_shop_identifier", "shop_id", "channel", "identifier"),
        Index("ix_invitations_shop_invited", "shop_id", "invited_at"),
        # The Capillary lookup: an advocate's invitations in a campaign, counted and paged in order from the index.
        Index("ix_invitations_shop_advocate_invited", "shop_id", "advocate_id", "campaign_id", "invited_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    advocate_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    #: ``email`` or ``mobile``.
    channel: Mapped[str] = mapped_column(String(8))
    #: Normalized: lower-case email, or E.164 phone without the ``+``.
    identifier: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=InvitationStatus.INVITED)
    #: Where it came from: ``widget``, ``capillary``, ``joy``...
    source: Mapped[str] = mapped_column(String(16))
    #: The integrator's own reference (Capillary ``invited_on``), echoed back.
    external_ref: Mapped[str | None] = mapped_column(String(64))
    friend_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    invited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    purchased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReferralStatus(enum.StrEnum):
    """Life of a referral, from binding to reward (or not)."""

    PENDING = "pending"  # bound to a friend, no qualifying order yet
    HELD = "held"  # qualified, reward held (hold days or review)
    REWARDED = "rewarded"
    REJECTED = "rejected"
    REVERSED = "reversed"
    PARTIALLY_REVERSED = "partially_reversed"


class Referral(Base):
    """An advocate referring a friend. A friend is referred at most once per shop."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("shop_id", "friend_id"),
        UniqueConstraint("shop_id", "shopify_order_id"),
        Index("ix_referrals_shop_status", "shop_id", "status"),
        Index("ix_referrals_shop_created", "shop_id", "created_at"),
        # The dashboard's pending panel and review queue: held referrals by release date, from the index.
        Index("ix_referrals_shop_status_hold", "shop_id", "status", "hold_until"),
        # The summary's points on hold: on PostgreSQL the held referrals' ids alone (partial), merged with the
        # ledger's hold rows. Plain on SQLite: statistics of a partial one there made the referral log's held
        # filter sort every held referral (60 ms) instead of walking dates (7 ms).
        Index("ix_referrals_shop_held", "shop_id", "id", postgresql_where=text("status = 'held'")),
        # The Capillary lookup: an advocate's referrals in a campaign, counted and paged in order from the index.
        Index("ix_referrals_shop_advocate_created", "shop_id", "advocate_id", "campaign_id", "created_at", "id"),
        # The velocity rule: an advocate's referrals decided in the last day, however many they had before.
        Index("ix_referrals_shop_advocate_decided", "shop_id", "advocate_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    referral_code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id", ondelete="SET NULL"))
    advocate_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    friend_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"))
    #: How the friend was tied to the advocate (see attribution): ``discount_code``, ``cart_attribute``,
    #: ``landing_site``, ``invitation``, ``customer_note``...
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), default=ReferralStatus.PENDING)
    #: Stable decision vocabulary (``SELF_REFERRAL``, ``BELOW_MINIMUM``...); None while pending.
    reason: Mapped[str | None] = mapped_column(String(48))
    evidence: Mapped[dict[str, t.Any] | None] = mapped_column(JSON)
    shopify_order_id: Mapped[int | None] = mapped_column(BigInteger)
    order_name: Mapped[str | None] = mapped_column(String(64))
    order_subtotal: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    order_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hold_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Referral {self.id} {self.status}>"


class OrderAttribution(Base):
    """The one decision taken for one paid order that carried referral evidence.

    The unique ``(shop_id, shopify_order_id)`` is what makes ``orders/paid`` exactly-once: a second
    delivery of the same order, whatever its webhook id, cannot insert a second decision.
    """

    __tablename__ = "order_attributions"
    __table_args__ = (
        UniqueConstraint("shop_id", "shopify_order_id"),
        Index("ix_order_attributions_shop_created", "shop_id", "created_at"),
        # Covers the dashboard summary's per-day figures and top advocates, read from the index alone.
        Index("ix_order_attributions_shop_created_cover", "shop_id", "created_at", "decision", "advocate_id",
              "total"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopify_order_id: Mapped[int] = mapped_column(BigInteger)
    order_name: Mapped[str | None] = mapped_column(String(64))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"))
    referral_code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id", ondelete="SET NULL"))
    advocate_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    friend_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    source: Mapped[str | None] = mapped_column(String(32))
    #: ``qualified``, ``held`` or ``rejected``.
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(48))
    evidence: Mapped[dict[str, t.Any] | None] = mapped_column(JSON)
    subtotal: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    test: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
