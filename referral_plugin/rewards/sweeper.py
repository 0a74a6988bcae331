"""The periodic sweeper: nothing earned stays pending because a job was lost.

Huey does not acknowledge jobs, so a job taken by a worker that dies is gone. Every minute the sweeper
asks the engine to release holds that are due, then finds the work such lost jobs left undone some
minutes (``DISCOUNT_REQUEUE_AFTER_MINUTES``) after it was committed, and queues it again:

- discount grants still without an ``ISSUE`` row;
- reversed grants whose issued code has no ``discount_deactivated`` audit event (still live in Shopify);
- referral codes whose ``discount_node_id`` disagrees with their campaign (missing while the friend
  reward is a live discount, present while it no longer is);
- widget email invitations still without ``email_sent_at`` while mail is configured.

Each row is queued at most once per interval (a claim in the queue's storage), for one attempt, and at
most :data:`BATCH` rows of each kind per sweep. Every job re-checks its row and does nothing when the
work is already done, so a job that was only slow, not lost, costs nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass
from dataclasses import field

from flask import current_app
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import cast
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased

from referral_plugin.extensions import db
from referral_plugin.mail import mail_configured
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import CampaignStatus
from referral_plugin.models import EntryType
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.rewards.discounts import CODE_SYNC_FAILED
from referral_plugin.rewards.discounts import DEACTIVATE_FAILED
from referral_plugin.rewards.discounts import DEACTIVATED
from referral_plugin.rewards.discounts import DISCOUNT_KINDS
from referral_plugin.rewards.discounts import ISSUABLE_TYPES
from referral_plugin.rewards.discounts import ISSUE_FAILED
from referral_plugin.rewards.emails import INVITATION_EMAIL_REFUSED

logger = logging.getLogger(__name__)

#: Default minutes a discount grant may stay pending before the sweeper re-queues it.
DEFAULT_REQUEUE_AFTER_MINUTES = 5
#: A grant whose issue failed permanently is retried once this long after the failure.
FAILED_RETRY_AFTER = dt.timedelta(hours=24)
#: Most rows of each kind re-queued per sweep; the next sweep takes the rest.
BATCH = 500
#: Invitation emails older than this are not recovered: a late invitation is worse than none.
EMAIL_RECOVERY_WINDOW = dt.timedelta(hours=24)
#: Where invitations come from that the app emails itself (the others are sent by the advocate or integrator).
EMAILED_INVITATION_SOURCES = ("widget",)


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    requeued: list[int]
    released: t.Any
    #: Ids of the reversed grants whose code deactivation was re-queued.
    deactivations: list[int] = field(default_factory=list)
    #: Ids of the referral codes whose Shopify sync was re-queued.
    code_syncs: list[int] = field(default_factory=list)
    #: Ids of the invitations whose email was re-queued.
    emails: list[int] = field(default_factory=list)


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


def _shop_installed() -> t.Any:
    """Return the condition of a shop the app can still call Shopify for."""
    return and_(Shop.access_token_ciphertext.is_not(None), Shop.uninstalled_at.is_(None),
                Shop.token_revoked_at.is_(None))


def _failed_recently(action: str, subject_type: str, subject_id: t.Any, shop_id: t.Any,
                     now: dt.datetime) -> t.Any:
    """Return the condition "an audit event ``action`` was written for the row within the last day"."""
    return exists().where(AuditEvent.shop_id == shop_id, AuditEvent.action == action,
                          AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id,
                          AuditEvent.created_at > now - FAILED_RETRY_AFTER)


def stale_pending_deactivations(now: dt.datetime, older_than: dt.timedelta, limit: int = BATCH) -> list[int]:
    """Return ids of grants reversed whole before ``now - older_than`` whose issued code is still live.

    Live means the ``ISSUE`` row has a Shopify node and no ``discount_deactivated`` audit event (what
    :func:`~referral_plugin.rewards.discounts.deactivate_discount` writes once Shopify took it). Skips
    shops that are not installed and deactivations Shopify refused within the last day.
    """
    issue = aliased(LedgerEntry)
    reversal = aliased(LedgerEntry)
    reversals = and_(reversal.shop_id == LedgerEntry.shop_id, reversal.related_entry_id == LedgerEntry.id,
                     reversal.entry_type == EntryType.REVERSAL.value)
    reversed_amount = select(func.coalesce(func.sum(reversal.amount), 0)).where(reversals).scalar_subquery()
    last_reversal = select(func.max(reversal.created_at)).where(reversals).scalar_subquery()
    deactivated = exists().where(AuditEvent.shop_id == issue.shop_id, AuditEvent.action == DEACTIVATED,
                                 AuditEvent.subject_type == "ledger_entry", AuditEvent.subject_id == issue.id)
    query = (
        select(LedgerEntry.id)
        .join(issue, and_(issue.shop_id == LedgerEntry.shop_id,
                          issue.idempotency_key == literal("issue:") + cast(LedgerEntry.id, String)))
        .join(Shop, Shop.id == LedgerEntry.shop_id)
        .where(
            LedgerEntry.entry_type.in_(sorted(ISSUABLE_TYPES)),
            LedgerEntry.reward_kind.in_(sorted(DISCOUNT_KINDS)),
            issue.discount_node_id.is_not(None),
            _shop_installed(),
            # Reversed whole, and the reversal that did it is old enough for its own job to have run.
            LedgerEntry.amount + reversed_amount <= 0,
            last_reversal <= now - older_than,
            ~deactivated,
            ~_failed_recently(DEACTIVATE_FAILED, "ledger_entry", issue.id, issue.shop_id, now),
        )
        .order_by(LedgerEntry.id)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def stale_code_syncs(now: dt.datetime, older_than: dt.timedelta, limit: int = BATCH) -> list[int]:
    """Return ids of referral codes whose Shopify discount disagrees with their campaign since before the cutoff.

    A code should be a live discount exactly when :func:`~referral_plugin.rewards.discounts.code_wanted`
    says so; a code missing its ``discount_node_id`` then, or keeping one otherwise, lost its sync job.
    Only codes and campaigns unchanged since ``now - older_than`` count (a fresh change's job is on its
    way); skips shops that are not installed and syncs Shopify refused within the last day.
    """
    cutoff = now - older_than
    wanted = and_(ReferralCode.retired_at.is_(None), Campaign.friend_reward_kind.in_(sorted(DISCOUNT_KINDS)),
                  Campaign.status == CampaignStatus.ACTIVE.value, Campaign.friend_reward_value != 0)
    query = (
        select(ReferralCode.id)
        .join(Campaign, Campaign.id == ReferralCode.campaign_id)
        .join(Shop, Shop.id == ReferralCode.shop_id)
        .where(
            Campaign.shop_id == ReferralCode.shop_id,
            _shop_installed(),
            ReferralCode.created_at <= cutoff,
            Campaign.updated_at <= cutoff,
            func.coalesce(ReferralCode.retired_at, ReferralCode.created_at) <= cutoff,
            or_(and_(wanted, ReferralCode.discount_node_id.is_(None)),
                and_(~wanted, ReferralCode.discount_node_id.is_not(None))),
            ~_failed_recently(CODE_SYNC_FAILED, "referral_code", ReferralCode.id, ReferralCode.shop_id, now),
        )
        .order_by(ReferralCode.id)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def stale_unsent_invitations(now: dt.datetime, older_than: dt.timedelta, limit: int = BATCH) -> list[int]:
    """Return ids of email invitations the app should have emailed before ``now - older_than`` and has not.

    Only when mail is configured, only invitations from the sources the app emails for
    (:data:`EMAILED_INVITATION_SOURCES`) and only within :data:`EMAIL_RECOVERY_WINDOW`; skips shops that
    uninstalled the app and recipients the SMTP server refused within the last day.
    """
    if not mail_configured():
        return []
    query = (
        select(Invitation.id)
        .join(Shop, Shop.id == Invitation.shop_id)
        .where(
            Invitation.channel == "email",
            Invitation.source.in_(EMAILED_INVITATION_SOURCES),
            Invitation.email_sent_at.is_(None),
            Invitation.invited_at <= now - older_than,
            Invitation.invited_at > now - EMAIL_RECOVERY_WINDOW,
            Shop.uninstalled_at.is_(None),
            ~_failed_recently(INVITATION_EMAIL_REFUSED, "invitation", Invitation.id, Invitation.shop_id, now),
        )
        .order_by(Invitation.id)
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


@dataclass(frozen=True)
class _Kind:
    """One kind of lost work: how to find it, and the job (with its arguments) that does it."""

    name: str
    find: t.Callable[[dt.datetime, dt.timedelta], list[int]]
    job: str
    args: t.Callable[[int], tuple[t.Any, ...]]
    #: Look only once per interval, not every sweep: the query reads every row of its table.
    scan_once_per_interval: bool = False


KINDS = (
    _Kind("issue", stale_pending_grants, "rewards.issue_discount", lambda row: (row,)),
    _Kind("deactivate", stale_pending_deactivations, "rewards.deactivate_discount", lambda row: (row,)),
    # No index narrows codes to the out-of-line ones (300k codes: ~0.7 s on SQLite), so at most once per interval.
    _Kind("code", stale_code_syncs, "rewards.repair_code_discount", lambda row: (row,), scan_once_per_interval=True),
    _Kind("email", stale_unsent_invitations, "mail.send", lambda row: ("invitation", {"invitation_id": row})),
)


def sweep(now: dt.datetime | None = None) -> SweepResult:
    """Release due holds, then re-queue the work of every kind that a lost job left undone; return it."""
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
    queue = get_queue()
    found: dict[str, list[int]] = {}
    for kind in KINDS:
        if kind.scan_once_per_interval and not queue.claim(f"sweep:scan:{kind.name}", now, every):
            found[kind.name] = []
            continue
        try:
            found[kind.name] = kind.find(now, every)
        except Exception:
            # One kind's failing query must not stop the others.
            db.session.rollback()
            logger.exception("sweeper could not look for lost %s jobs", kind.name)
            found[kind.name] = []
    db.session.rollback()  # nothing to keep; end the read transaction before the jobs run
    done: dict[str, list[int]] = {}
    for kind in KINDS:
        ids = done[kind.name] = []
        for row_id in found[kind.name]:
            # Once per interval per row, one attempt each: a long outage cannot pile up retry chains.
            if queue.claim(f"sweep:{kind.name}:{row_id}", now, every):
                queue.enqueue_single_attempt(kind.job, *kind.args(row_id))
                ids.append(row_id)
        if ids:
            logger.info("sweeper re-queued %d lost %s job(s)", len(ids), kind.name)
    return SweepResult(requeued=done["issue"], released=released, deactivations=done["deactivate"],
                       code_syncs=done["code"], emails=done["email"])
