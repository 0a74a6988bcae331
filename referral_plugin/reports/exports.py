"""CSV exports of referrals and ledger rows for a date range, streamed in batches.

Rows are read with ``yield_per`` and written a batch at a time, so a shop with a million referrals
starts downloading at once and the worker never holds the whole file. Cells a spreadsheet would run
as a formula (starting with ``= + - @`` or a control character) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing as t
from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.reports.log import Advocate
from referral_plugin.reports.log import Friend
from referral_plugin.reports.log import describe_reason
from referral_plugin.reports.summary import check_range
from referral_plugin.reports.summary import shop_zone
from referral_plugin.reports.summary import utc_bounds

BATCH = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

REFERRAL_COLUMNS = [
    "referral_id", "created_at", "status", "reason", "reason_text", "source", "campaign_id", "code",
    "advocate_customer_id", "advocate_email", "friend_customer_id", "friend_email", "order_name",
    "order_subtotal", "order_total", "currency", "decided_at", "hold_until",
]
LEDGER_COLUMNS = [
    "entry_id", "created_at", "entry_type", "side", "reward_kind", "points", "amount", "currency",
    "customer_id", "customer_email", "referral_id", "order_id", "refund_id", "discount_code", "reason",
    "reason_text", "note", "related_entry_id", "available_at",
]


def safe_cell(value: t.Any) -> t.Any:
    """Return a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _stream(header: list[str], rows: t.Iterable[list[t.Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        count += 1
        if count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _local(value: dt.datetime | None, shop: Shop) -> dt.datetime | None:
    return value.astimezone(shop_zone(shop)) if value else None


def referrals_csv(shop: Shop, start: dt.date, end: dt.date) -> Iterator[str]:
    """Yield the CSV of the shop's referrals bound in the range (shop days), oldest first."""
    check_range_for_export(start, end)
    low, high = utc_bounds(shop_zone(shop), start, end)
    query = (
        select(Referral, Advocate.shopify_customer_id, Advocate.email, Friend.shopify_customer_id, Friend.email,
               ReferralCode.code)
        .join(Advocate, Advocate.id == Referral.advocate_id)
        .outerjoin(Friend, Friend.id == Referral.friend_id)
        .outerjoin(ReferralCode, ReferralCode.id == Referral.referral_code_id)
        .where(Referral.shop_id == shop.id, Referral.created_at >= low, Referral.created_at < high)
        .order_by(Referral.created_at, Referral.id)
        .execution_options(yield_per=BATCH)
    )

    def rows() -> Iterator[list[t.Any]]:
        for referral, advocate_id, advocate_email, friend_id, friend_email, code in db.session.execute(query):
            yield [
                referral.id, _local(referral.created_at, shop), referral.status, referral.reason,
                describe_reason(referral.reason), referral.source, referral.campaign_id, code, advocate_id,
                advocate_email, friend_id, friend_email, referral.order_name, referral.order_subtotal,
                referral.order_total, referral.currency, _local(referral.decided_at, shop),
                _local(referral.hold_until, shop),
            ]

    return _stream(REFERRAL_COLUMNS, rows())


def ledger_csv(shop: Shop, start: dt.date, end: dt.date) -> Iterator[str]:
    """Yield the CSV of the shop's ledger rows written in the range (shop days), oldest first."""
    check_range_for_export(start, end)
    low, high = utc_bounds(shop_zone(shop), start, end)
    query = (
        select(LedgerEntry, Customer.shopify_customer_id, Customer.email)
        .outerjoin(Customer, Customer.id == LedgerEntry.customer_id)
        .where(LedgerEntry.shop_id == shop.id, LedgerEntry.created_at >= low, LedgerEntry.created_at < high)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
        .execution_options(yield_per=BATCH)
    )

    def rows() -> Iterator[list[t.Any]]:
        for entry, customer_id, email in db.session.execute(query):
            yield [
                entry.id, _local(entry.created_at, shop), entry.entry_type, entry.side, entry.reward_kind,
                entry.points, entry.amount, entry.currency or shop.currency, customer_id, email, entry.referral_id,
                entry.shopify_order_id, entry.shopify_refund_id, entry.discount_code, entry.reason,
                describe_reason(entry.reason), entry.note, entry.related_entry_id, _local(entry.available_at, shop),
            ]

    return _stream(LEDGER_COLUMNS, rows())


def check_range_for_export(start: dt.date, end: dt.date) -> None:
    """Apply the summary's range rules to exports too."""
    check_range(start, end)
