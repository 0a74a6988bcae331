"""The periodic sweeper: nothing earned stays pending because a job was lost.

Every minute it re-queues discount grants that are still without an ``ISSUE`` row some minutes after they
were written (a worker died, Redis lost the job, Shopify was down longer than the retries), and asks the
engine to release holds that are due.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import cast
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy.orm import aliased

from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.rewards.discounts import DISCOUNT_KINDS
from referral_plugin.rewards.discounts import ISSUABLE_TYPES
from referral_plugin.rewards.discounts import ISSUE_FAILED

logger = logging.getLogger(__name__)

#: Default minutes a discount grant may stay pending before the sweeper re-queues it.
DEFAULT_REQUEUE_AFTER_MINUTES = 5
#: A grant whose issue failed permanently is retried once this long after the failure.
FAILED_RETRY_AFTER = dt.timedelta(hours=24)
#: Most grants re-queued per sweep; the next sweep takes the rest.
BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    requeued: list[int]
    released: t.Any


def stale_pending_grants(now: dt.datetime, older_than: dt.timedelta, limit: int = BATCH) -> list[int]:
    """Return ids of discount grants written before ``now - older_than`` that are still not issued.

    Skips grants reversed whole, grants that already carry a code, shops that are not installed, and
    grants whose issue failed permanently within the last day (they need the merchant, not a retry a minute).
    """
    other = aliased(LedgerEntry)
    cutoff = now - older_than
    issued = exists().where(other.shop_id == LedgerEntry.shop_id,
                            other.idempotency_key == literal("issue:") + cast(LedgerEntry.id, String))
    reversed_amount = (
        select(func.coalesce(func.sum(other.amount), 0))
        .where(other.related_entry_id == LedgerEntry.id, other.entry_type == EntryType.REVERSAL.value)
        .scalar_subquery()
    )
    held = exists().where(other.shop_id == LedgerEntry.shop_id, other.related_entry_id == LedgerEntry.id,
                          other.entry_type == EntryType.HOLD.value)
    recently_failed = exists().where(
        AuditEvent.shop_id == LedgerEntry.shop_id, AuditEvent.action == ISSUE_FAILED,
        AuditEvent.subject_type == "ledger_entry", AuditEvent.subject_id == LedgerEntry.id,
        AuditEvent.created_at > now - FAILED_RETRY_AFTER,
    )
    query = (
        select(LedgerEntry.id)
        .join(Shop, Shop.id == LedgerEntry.shop_id)
        .where(
            LedgerEntry.entry_type.in_(sorted(ISSUABLE_TYPES)),
            LedgerEntry.reward_kind.in_(sorted(DISCOUNT_KINDS)),
            LedgerEntry.created_at <= cutoff,
            and_(Shop.access_token_ciphertext.is_not(None), Shop.uninstalled_at.is_(None),
                 Shop.token_revoked_at.is_(None)),
            ~issued,
            LedgerEntry.discount_code.is_(None),
            LedgerEntry.amount + reversed_amount > 0,
            # A grant under a hold is issued through its release row instead.
            ~and_(LedgerEntry.entry_type == EntryType.GRANT.value, held),
            ~recently_failed,
        )
        .order_by(LedgerEntry.id)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def requeue_after() -> dt.timedelta:
    """Return how long a discount grant may stay pending before it is re-queued (config)."""
    minutes = current_app.config.get("DISCOUNT_REQUEUE_AFTER_MINUTES", DEFAULT_REQUEUE_AFTER_MINUTES)
    return dt.timedelta(minutes=float(minutes))


def release_due_holds(now: dt.datetime) -> t.Any:
    """Ask the engine to release the holds that are due; None while the engine does not provide it."""
    try:
        from referral_plugin.referrals import ledger
    except ImportError:
        return None
    release = getattr(ledger, "release_due_holds", None)
    if release is None:
        return None
    result = release(now)
    db.session.commit()
    return result


def sweep(now: dt.datetime | None = None) -> SweepResult:
    """Release due holds, then re-queue every stale pending discount grant; return what was done."""
    from referral_plugin.jobs import get_queue

    now = now or utcnow()
    released = None
    try:
        released = release_due_holds(now)
    except Exception:
        # One bad hold must not stop the re-queueing below; the next sweep tries again.
        db.session.rollback()
        logger.exception("releasing due holds failed")
    every = requeue_after()
    stale = stale_pending_grants(now, every)
    db.session.rollback()  # nothing to keep; end the read transaction before the jobs run
    queue = get_queue()
    ids: list[int] = []
    for entry_id in stale:
        # Once per interval per grant, one attempt each: a long Shopify outage cannot pile up retry chains.
        if queue.claim(f"sweep:issue:{entry_id}", now, every):
            queue.enqueue_single_attempt("rewards.issue_discount", entry_id)
            ids.append(entry_id)
    if ids:
        logger.info("sweeper re-queued %d pending discount grant(s)", len(ids))
    return SweepResult(requeued=ids, released=released)
