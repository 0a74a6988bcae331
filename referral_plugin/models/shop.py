"""A shop that installed the app, its (encrypted) tokens and its program settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow


class Shop(Base):
    """A Shopify shop, keyed by its canonical ``{handle}.myshopify.com`` domain.

    Tokens are stored only as Fernet ciphertext (see :mod:`referral_plugin.security.crypto`);
    a shop with no token is uninstalled or not yet installed, but its data stays until ``shop/redact``.
    """

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    shopify_domain: Mapped[str] = mapped_column(String(255), unique=True)
    shopify_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    #: IANA zone name; the dashboard's days are the shop's days.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")

    access_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refresh_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    refresh_token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[str] = mapped_column(String(1024), default="")
    installed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    uninstalled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Set when the Admin API answered 401: the token is dead even if no uninstall webhook came.
    token_revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # Program settings the merchant edits in the dashboard; None means "use the app's config".
    reward_test_orders: Mapped[bool | None] = mapped_column(default=None)
    phone_region: Mapped[str | None] = mapped_column(String(2))
    #: Money value of one point, in the shop's currency, for ROI and reward-cost figures.
    point_value: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("0.01"))

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_installed(self) -> bool:
        """Tell whether the shop has a live offline token."""
        return (
            self.access_token_ciphertext is not None
            and self.uninstalled_at is None
            and self.token_revoked_at is None
        )

    def __repr__(self) -> str:
        return f"<Shop {self.shopify_domain}>"


class OAuthState(Base):
    """A one-time ``state`` nonce issued by ``/auth/install`` and consumed by ``/auth/callback``."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<OAuthState {self.shop_domain} {self.nonce[:8]}…>"
