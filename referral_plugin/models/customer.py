"""Shopify customers as the program knows them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow


class Customer(Base):
    """A shop's customer, keyed by Shopify customer id.

    ``email_canonical`` folds case, gmail dots and ``+tags`` for fraud checks; ``phone`` is E.164;
    ``address_hash`` is a keyed hash of the normalized default address, never the address itself.
    ``customers/redact`` blanks every personal field and sets ``redacted_at``.
    """

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("shop_id", "shopify_customer_id"),
        Index("ix_customers_shop_email_canonical", "shop_id", "email_canonical"),
        Index("ix_customers_shop_email", "shop_id", "email"),
        Index("ix_customers_shop_phone", "shop_id", "phone"),
        # The shared-address rule: who else lives at a friend's address (usually nobody).
        Index("ix_customers_shop_address_hash", "shop_id", "address_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    shopify_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(String(320))
    email_canonical: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    address_hash: Mapped[str | None] = mapped_column(String(64))
    shopify_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    redacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Paid orders seen through ``orders/paid`` (each order once, see :class:`PaidOrder`).
    paid_orders_count: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The first paid order seen for this customer: a referral rewards only this one.
    first_paid_order_id: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def display_name(self) -> str:
        """Return the name to show, falling back to the email's local part."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        if name:
            return name
        if self.email:
            return self.email.split("@", 1)[0]
        return "Customer"

    def __repr__(self) -> str:
        return f"<Customer {self.shop_id}/{self.shopify_customer_id}>"


class PaidOrder(Base):
    """One paid order seen through ``orders/paid``, referral or not; counts each order once per customer.

    The unique ``(shop_id, shopify_order_id)`` makes ``Customer.paid_orders_count`` exactly-once
    whatever Shopify redelivers.
    """

    __tablename__ = "paid_orders"
    __table_args__ = (UniqueConstraint("shop_id", "shopify_order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    shopify_order_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
