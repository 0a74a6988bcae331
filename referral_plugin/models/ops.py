"""Operational records: webhook deliveries, API keys, the audit log and privacy exports."""

from __future__ import annotations

import datetime as dt
import typing as t

from sqlalchemy import DDL
from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow


class WebhookDelivery(Base):
    """One webhook delivery from Shopify, recorded before its handler runs.

    Unique on ``(shop_domain, webhook_id)`` and, when Shopify sends one, on
    ``(shop_domain, topic, event_id)``: a repeat cannot insert a second row, so it is a no-op.
    The shop is kept by domain because deliveries can arrive before install or after redaction.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("shop_domain", "webhook_id"),
        Index(
            "uq_webhook_deliveries_event",
            "shop_domain",
            "topic",
            "event_id",
            unique=True,
            sqlite_where=text("event_id IS NOT NULL"),
            postgresql_where=text("event_id IS NOT NULL"),
        ),
        Index("ix_webhook_deliveries_received", "received_at"),
        # Partial: only the few rows still waiting for a worker (queued mode), so the sweeper's scan stays
        # small however many processed deliveries the table holds.
        Index(
            "ix_webhook_deliveries_pending",
            "status",
            "received_at",
            sqlite_where=text("status IN ('queued', 'failed')"),
            postgresql_where=text("status IN ('queued', 'failed')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(128))
    webhook_id: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str | None] = mapped_column(String(128))
    triggered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    api_version: Mapped[str | None] = mapped_column(String(16))
    #: ``processed``, ``ignored`` (no handler), ``failed`` (handler raised; retried), ``queued`` (accepted,
    #: waiting for a job worker: ``WEBHOOK_PROCESSING=queued``) or ``redacted`` (dropped unprocessed by
    #: ``customers/redact``).
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The raw body (UTF-8 JSON) of a delivery accepted in queued mode, kept only until a worker processed
    #: it: it carries customer data, so processing (and ``customers/redact``, ``shop/redact``) clears it.
    payload: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.topic} {self.webhook_id} {self.status}>"


#: PostgreSQL compresses a stored body (an order is ~15 KB of JSON) with pglz by default, which costs the
#: queued intake's insert more than everything else it does; lz4 is about four times cheaper, and MAIN keeps
#: the compressed body in the row instead of the TOAST table when it fits. Servers without lz4 keep pglz.
_PAYLOAD_STORAGE = DDL(  # type: ignore[no-untyped-call]  # SQLAlchemy leaves DDL.__init__ untyped
    "DO $$ BEGIN "
    "ALTER TABLE webhook_deliveries ALTER COLUMN payload SET STORAGE MAIN; "
    "BEGIN ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4; "
    "EXCEPTION WHEN others THEN NULL; END; "
    "END $$"
).execute_if(dialect="postgresql")
event.listen(WebhookDelivery.__table__, "after_create", _PAYLOAD_STORAGE)


class ApiKey(Base):
    """An integrator API key of a shop, stored only as a SHA-256 hash; ``prefix`` identifies it in lists."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix}…>"


class AuditEvent(Base):
    """Who changed what in a shop's program: campaign edits, review decisions, key changes, adjustments."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_shop_created", "shop_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column()
    details: Mapped[dict[str, t.Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataExport(Base):
    """The answer to a ``customers/data_request``: everything held on one customer, kept for the merchant."""

    __tablename__ = "data_exports"
    __table_args__ = (UniqueConstraint("shop_id", "data_request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    shopify_customer_id: Mapped[int] = mapped_column(BigInteger)
    data_request_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, t.Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
