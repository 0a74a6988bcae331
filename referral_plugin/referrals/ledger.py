"""The rewards ledger: append-only rows with idempotency keys; balances, holds and reviews are sums over them.

Row kinds and what counts (see :class:`~referral_plugin.models.EntryType`):

* ``grant`` counts at once (points) or waits for its ``issue`` row (discounts);
* ``hold`` does not count; its ``release`` counts; a ``void`` (whole or partial) cancels held value;
* ``reversal`` takes back part or all of a ``grant``/``release`` and links to it;
* ``adjustment`` is a merchant's manual change.

Every writer derives its key from the business event (``grant:{order}:{side}``, ``release:{hold}``,
``reversal:refund:{refund}:{entry}``...), so a repeated event cannot write twice.
"""

from __future__ import annotations

import datetime as dt
import typing as t
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import aliased

from referral_plugin.errors import Conflict
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from referral_plugin.models import utcnow
from referral_plugin.referrals import jobs_bridge
from referral_plugin.referrals._db import insert_once
from referral_plugin.referrals._db import lock_for_turns
from referral_plugin.referrals.reasons import REVIEW_REASONS
from referral_plugin.referrals.reasons import Reason

#: Row types whose points count in a balance.
COUNTED = (EntryType.GRANT, EntryType.RELEASE, EntryType.REVERSAL, EntryType.ADJUSTMENT)
#: Row types that put value in a customer's hands (what reversals take back).
EARNING = (EntryType.GRANT, EntryType.RELEASE)


@dataclass(frozen=True)
class PendingReward:
    """A reward earned but not usable yet: held until a date, in review, or a discount being issued."""

    entry_id: int
    referral_id: int | None
    side: str
    kind: str
    points: int
    amount: Decimal
    status: str  # ``held``, ``in_review`` or ``issuing``
    available_at: dt.datetime | None

    def to_dict(self) -> dict[str, t.Any]:
        """Return JSON-ready data."""
        return {
            "entryId": self.entry_id,
            "referralId": self.referral_id,
            "side": self.side,
            "kind": self.kind,
            "points": self.points,
            "amount": str(self.amount),
            "status": self.status,
            "availableAt": self.available_at.isoformat() if self.available_at else None,
        }


def write_once(entry: LedgerEntry) -> LedgerEntry | None:
    """Insert a ledger row under its idempotency key; None when the event was already recorded."""
    return entry if insert_once(entry) else None


def get_by_key(shop_id: int, key: str) -> LedgerEntry | None:
    """Return the row written under an idempotency key, or None."""
    return db.session.scalar(select(LedgerEntry).where(LedgerEntry.shop_id == shop_id,
                                                       LedgerEntry.idempotency_key == key))


def points_balance(customer: Customer) -> int:
    """Return the customer's spendable points: grants, releases, reversals and adjustments."""
    total = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
        LedgerEntry.shop_id == customer.shop_id, LedgerEntry.customer_id == customer.id,
        LedgerEntry.entry_type.in_(COUNTED)))
    return int(total or 0)


def points_earned(customer: Customer) -> int:
    """Return the net points the customer earned through referrals (as advocate or friend), after reversals."""
    total = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
        LedgerEntry.shop_id == customer.shop_id, LedgerEntry.customer_id == customer.id,
        LedgerEntry.referral_id.is_not(None),
        LedgerEntry.entry_type.in_((EntryType.GRANT, EntryType.RELEASE, EntryType.REVERSAL))))
    return int(total or 0)


def entries_for(customer: Customer) -> list[LedgerEntry]:
    """Return the customer's ledger rows, newest first."""
    return list(db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.shop_id == customer.shop_id, LedgerEntry.customer_id == customer.id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())))


def pending_rewards(customer: Customer) -> list[PendingReward]:
    """Return the customer's rewards not usable yet, with their release dates (None while in review)."""
    pending: list[PendingReward] = []
    for hold in _open_holds(customer.shop_id, customer_id=customer.id):
        remaining_points, remaining_amount = _hold_remaining(hold)
        if remaining_points <= 0 and remaining_amount <= 0:
            continue
        referral = db.session.get(Referral, hold.referral_id) if hold.referral_id else None
        in_review = referral is not None and referral.reason in REVIEW_REASONS
        pending.append(PendingReward(hold.id, hold.referral_id, hold.side, hold.reward_kind, remaining_points,
                                     remaining_amount, "in_review" if in_review else "held",
                                     None if in_review else hold.available_at))
    issue = aliased(LedgerEntry)
    reversal = aliased(LedgerEntry)
    unissued = db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.shop_id == customer.shop_id, LedgerEntry.customer_id == customer.id,
        LedgerEntry.entry_type.in_(EARNING), LedgerEntry.reward_kind != RewardKind.POINTS,
        LedgerEntry.reason != Reason.APPLIED_AT_CHECKOUT,
        ~select(issue.id).where(issue.related_entry_id == LedgerEntry.id,
                                issue.entry_type == EntryType.ISSUE).exists(),
        ~select(reversal.id).where(reversal.related_entry_id == LedgerEntry.id,
                                   reversal.entry_type == EntryType.REVERSAL).exists(),
    ).order_by(LedgerEntry.id))
    for entry in unissued:
        pending.append(PendingReward(entry.id, entry.referral_id, entry.side, entry.reward_kind, 0, entry.amount,
                                     "issuing", None))
    return pending


def grant_referral_rewards(
    shop: Shop,
    referral: Referral,
    campaign: Campaign,
    *,
    order_id: int,
    hold: bool,
    available_at: dt.datetime | None,
    friend_applied_amount: Decimal | None = None,
    applied_code: str | None = None,
) -> list[LedgerEntry]:
    """Write the advocate's and the friend's rewards for a qualified order: GRANT rows, or HOLD rows when held.

    A friend whose discount was the referral code itself, used at checkout, already has the reward:
    it is recorded as a GRANT marked ``APPLIED_AT_CHECKOUT`` (the order's discount amount) and never issued.
    """
    written: list[LedgerEntry] = []
    sides: list[tuple[str, int | None, str, Decimal]] = [
        (Side.ADVOCATE, referral.advocate_id, campaign.advocate_reward_kind, campaign.advocate_reward_value),
        (Side.FRIEND, referral.friend_id, campaign.friend_reward_kind, campaign.friend_reward_value),
    ]
    for side, customer_id, kind, value in sides:
        if customer_id is None:
            continue
        applied = side == Side.FRIEND and kind != RewardKind.POINTS and friend_applied_amount is not None
        if applied:
            entry_type, key, when = EntryType.GRANT, f"grant:{order_id}:{side}", None
        elif hold:
            entry_type, key, when = EntryType.HOLD, f"hold:{order_id}:{side}", available_at
        else:
            entry_type, key, when = EntryType.GRANT, f"grant:{order_id}:{side}", None
        entry = LedgerEntry(
            shop_id=shop.id,
            customer_id=customer_id,
            referral_id=referral.id,
            campaign_id=campaign.id,
            entry_type=entry_type,
            side=side,
            reward_kind=kind,
            points=int(value) if kind == RewardKind.POINTS else 0,
            amount=Decimal(0) if kind == RewardKind.POINTS else (
                friend_applied_amount if applied and friend_applied_amount is not None else Decimal(value)),
            currency=shop.currency if kind == RewardKind.FIXED_AMOUNT or applied else None,
            discount_code=applied_code if applied else None,
            idempotency_key=key,
            reason=Reason.APPLIED_AT_CHECKOUT if applied else Reason.REFERRAL_REWARD,
            note="The friend's discount was the referral code, applied at checkout." if applied else None,
            shopify_order_id=order_id,
            available_at=when,
        )
        if write_once(entry) is None:
            continue
        written.append(entry)
        if entry_type == EntryType.GRANT and kind != RewardKind.POINTS and not applied:
            jobs_bridge.schedule_discount_issue(entry.id)
    return written


def release_due_holds(now: dt.datetime | None = None, shop: Shop | None = None) -> int:
    """Release every held reward whose date has come (reviews excepted); return how many rows were released.

    For the sweeper (JOBS): safe to run often and concurrently, each release is keyed by its hold.
    Flushes; the caller commits.
    """
    now = now or utcnow()
    query = select(LedgerEntry).join(Referral, Referral.id == LedgerEntry.referral_id).where(
        LedgerEntry.entry_type == EntryType.HOLD,
        LedgerEntry.available_at.is_not(None),
        LedgerEntry.available_at <= now,
        Referral.status == ReferralStatus.HELD,
        Referral.reason.not_in([r.value for r in REVIEW_REASONS]),
    )
    if shop is not None:
        query = query.where(LedgerEntry.shop_id == shop.id)
    released = 0
    touched: set[int] = set()
    for hold in list(db.session.scalars(query.order_by(LedgerEntry.id))):
        # A merchant's reject (or a cancellation) may be deciding this referral right now: take turns,
        # then release only if it is still held for its date.
        referral = lock_referral(hold.referral_id)
        if referral is None or referral.status != ReferralStatus.HELD or referral.reason in REVIEW_REASONS:
            continue
        if _release(hold, now) is not None:
            released += 1
        touched.add(referral.id)
    for referral_id in touched:
        referral = db.session.get(Referral, referral_id)
        if referral is not None:
            _settle_if_released(referral, Reason.RELEASED, now)
    db.session.flush()
    return released


def approve_held(referral: Referral, actor: str) -> Referral:
    """Approve a held referral: release its rewards now, or at the end of the hold period if that is later."""
    if referral.status != ReferralStatus.HELD or (locked := lock_referral(referral.id)) is None \
            or locked.status != ReferralStatus.HELD:
        raise Conflict("Only a held referral can be approved.", code="NOT_HELD")
    now = utcnow()
    holds = _holds_of(referral)
    waiting = [h for h in holds if h.available_at is not None and h.available_at > now]
    evidence = dict(referral.evidence or {})
    evidence["review"] = {"decision": "approved", "actor": actor, "at": now.isoformat(),
                          "previousReason": referral.reason}
    referral.evidence = evidence
    if waiting:
        referral.reason = Reason.HOLD_PERIOD
    else:
        for hold in holds:
            _release(hold, now)
        referral.reason = Reason.APPROVED
        _settle_if_released(referral, Reason.APPROVED, now)
    _audit(referral, actor, "referral.approve", {"reason": referral.reason})
    db.session.flush()
    return referral


def reject_held(referral: Referral, actor: str, reason: str) -> Referral:
    """Reject a held referral: void its held rewards so they are never released."""
    if referral.status != ReferralStatus.HELD or (locked := lock_referral(referral.id)) is None \
            or locked.status != ReferralStatus.HELD:
        raise Conflict("Only a held referral can be rejected.", code="NOT_HELD")
    note = (reason or "").strip()
    if not note:
        raise ValidationError("Say why the referral is rejected.", field="reason")
    now = utcnow()
    for hold in _holds_of(referral):
        void_hold(hold, key=f"void:{hold.id}", reason=Reason.REJECTED_BY_MERCHANT, note=note[:1000])
    evidence = dict(referral.evidence or {})
    evidence["review"] = {"decision": "rejected", "actor": actor, "at": now.isoformat(), "note": note[:1000],
                          "previousReason": referral.reason}
    referral.evidence = evidence
    referral.status = ReferralStatus.REJECTED
    referral.reason = Reason.REJECTED_BY_MERCHANT
    referral.decided_at = now
    _audit(referral, actor, "referral.reject", {"note": note[:1000]})
    db.session.flush()
    return referral


def lock_referral(referral_id: int | None) -> Referral | None:
    """Return the referral locked for update and freshly read (PostgreSQL), so its decisions take turns."""
    if referral_id is None:
        return None
    return lock_for_turns(Referral, referral_id, fresh=True)


def record_adjustment(shop: Shop, customer: Customer, points: int, reason: str, actor: str) -> LedgerEntry:
    """Add or remove points by hand, with a reason, and audit it."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationError("Points are a whole number other than 0.", field="points")
    if abs(points) > 10_000_000:
        raise ValidationError("That is too many points.", field="points")
    text = (reason or "").strip()
    if not text:
        raise ValidationError("Say why the points change.", field="reason")
    if customer.shop_id != shop.id:
        raise ValidationError("The customer is not one of this shop's.", field="customer")
    entry = LedgerEntry(
        shop_id=shop.id, customer_id=customer.id, entry_type=EntryType.ADJUSTMENT, side=Side.MANUAL,
        reward_kind=RewardKind.POINTS, points=points, idempotency_key=f"adjust:{uuid.uuid4().hex}",
        reason=Reason.MANUAL_ADJUSTMENT, note=text[:1000],
    )
    db.session.add(entry)
    db.session.flush()
    db.session.add(AuditEvent(shop_id=shop.id, actor=actor, action="ledger.adjust", subject_type="customer",
                              subject_id=customer.id, details={"points": points, "reason": text[:1000],
                                                                "entry_id": entry.id}))
    db.session.flush()
    return entry


def earning_entries(shop_id: int, order_id: int) -> list[LedgerEntry]:
    """Return the order's GRANT and RELEASE rows (what a reversal takes back)."""
    return list(db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.shop_id == shop_id, LedgerEntry.shopify_order_id == order_id,
        LedgerEntry.entry_type.in_(EARNING)).order_by(LedgerEntry.id)))


def open_holds_for_order(shop_id: int, order_id: int) -> list[LedgerEntry]:
    """Return the order's HOLD rows not released yet."""
    return _open_holds(shop_id, order_id=order_id)


def remaining(entry: LedgerEntry) -> tuple[int, Decimal]:
    """Return what is left of an earning row after its reversals: (points, amount)."""
    points, amount = db.session.execute(select(
        func.coalesce(func.sum(LedgerEntry.points), 0), func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.related_entry_id == entry.id, LedgerEntry.entry_type == EntryType.REVERSAL)).one()
    return entry.points + int(points), Decimal(entry.amount) + Decimal(amount)


def reverse_entry(entry: LedgerEntry, *, points: int, amount: Decimal, key: str, reason: str,
                  refund_id: int | None = None) -> LedgerEntry | None:
    """Write a REVERSAL of ``points``/``amount`` (positive numbers) against an earning row, once per key."""
    reversal = LedgerEntry(
        shop_id=entry.shop_id, customer_id=entry.customer_id, referral_id=entry.referral_id,
        campaign_id=entry.campaign_id, entry_type=EntryType.REVERSAL, side=entry.side,
        reward_kind=entry.reward_kind, points=-abs(points), amount=-abs(amount), currency=entry.currency,
        discount_code=entry.discount_code, related_entry_id=entry.id, idempotency_key=key, reason=reason,
        shopify_order_id=entry.shopify_order_id, shopify_refund_id=refund_id,
    )
    return write_once(reversal)


def void_hold(hold: LedgerEntry, *, key: str, reason: str, points: int | None = None,
              amount: Decimal | None = None, note: str | None = None,
              refund_id: int | None = None) -> LedgerEntry | None:
    """Cancel held value (all that is left by default) so it is never released; once per key."""
    left_points, left_amount = _hold_remaining(hold)
    take_points = left_points if points is None else min(points, left_points)
    take_amount = left_amount if amount is None else min(amount, left_amount)
    if take_points <= 0 and take_amount <= 0:
        return None
    void = LedgerEntry(
        shop_id=hold.shop_id, customer_id=hold.customer_id, referral_id=hold.referral_id,
        campaign_id=hold.campaign_id, entry_type=EntryType.VOID, side=hold.side, reward_kind=hold.reward_kind,
        points=-max(take_points, 0), amount=-max(take_amount, Decimal(0)), currency=hold.currency,
        related_entry_id=hold.id, idempotency_key=key, reason=reason, note=note,
        shopify_order_id=hold.shopify_order_id, shopify_refund_id=refund_id,
    )
    return write_once(void)


def hold_remaining(hold: LedgerEntry) -> tuple[int, Decimal]:
    """Return what is still held on a HOLD row after voids: (points, amount)."""
    return _hold_remaining(hold)


def _hold_remaining(hold: LedgerEntry) -> tuple[int, Decimal]:
    points, amount = db.session.execute(select(
        func.coalesce(func.sum(LedgerEntry.points), 0), func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.related_entry_id == hold.id, LedgerEntry.entry_type == EntryType.VOID)).one()
    return hold.points + int(points), Decimal(hold.amount) + Decimal(amount)


def _holds_of(referral: Referral) -> list[LedgerEntry]:
    """Return the referral's HOLD rows still holding something (not released, not wholly voided)."""
    holds = _open_holds(referral.shop_id, referral_id=referral.id)
    return [h for h in holds if any(part > 0 for part in _hold_remaining(h))]


def _open_holds(shop_id: int, *, customer_id: int | None = None, referral_id: int | None = None,
                order_id: int | None = None) -> list[LedgerEntry]:
    """Return HOLD rows without a RELEASE, filtered as asked."""
    release = aliased(LedgerEntry)
    query = select(LedgerEntry).where(
        LedgerEntry.shop_id == shop_id, LedgerEntry.entry_type == EntryType.HOLD,
        ~select(release.id).where(release.related_entry_id == LedgerEntry.id,
                                  release.entry_type == EntryType.RELEASE).exists())
    if customer_id is not None:
        query = query.where(LedgerEntry.customer_id == customer_id)
    if referral_id is not None:
        query = query.where(LedgerEntry.referral_id == referral_id)
    if order_id is not None:
        query = query.where(LedgerEntry.shopify_order_id == order_id)
    return list(db.session.scalars(query.order_by(LedgerEntry.id)))


def _release(hold: LedgerEntry, now: dt.datetime) -> LedgerEntry | None:
    """Write the RELEASE of what is left on a hold (once per hold); schedule discount issue when it is one."""
    points, amount = _hold_remaining(hold)
    if points <= 0 and amount <= 0:
        return None
    customer = db.session.get(Customer, hold.customer_id) if hold.customer_id is not None else None
    if customer is not None and customer.redacted_at is not None:
        # Shopify asked us to forget this customer: nobody is left to hand the reward to.
        void_hold(hold, key=f"void:erased:{hold.id}", reason=Reason.CUSTOMER_ERASED)
        return None
    release = LedgerEntry(
        shop_id=hold.shop_id, customer_id=hold.customer_id, referral_id=hold.referral_id,
        campaign_id=hold.campaign_id, entry_type=EntryType.RELEASE, side=hold.side, reward_kind=hold.reward_kind,
        points=points, amount=amount, currency=hold.currency, related_entry_id=hold.id,
        idempotency_key=f"release:{hold.id}", reason=Reason.RELEASED, shopify_order_id=hold.shopify_order_id,
    )
    if write_once(release) is None:
        return None
    if release.reward_kind != RewardKind.POINTS:
        jobs_bridge.schedule_discount_issue(release.id)
    return release


def _settle_if_released(referral: Referral, reason: str, now: dt.datetime) -> None:
    """Mark a held referral rewarded once none of its holds is left open."""
    if referral.status == ReferralStatus.HELD and not _holds_of(referral):
        partly_refunded = db.session.scalar(select(LedgerEntry.id).where(
            LedgerEntry.shop_id == referral.shop_id, LedgerEntry.referral_id == referral.id,
            LedgerEntry.entry_type == EntryType.VOID, LedgerEntry.reason == Reason.PARTIAL_REFUND).limit(1))
        if partly_refunded is not None:
            referral.status, referral.reason = ReferralStatus.PARTIALLY_REVERSED, Reason.PARTIAL_REFUND
        else:
            referral.status, referral.reason = ReferralStatus.REWARDED, reason
        referral.decided_at = now
        referral.hold_until = None


def _audit(referral: Referral, actor: str, action: str, details: dict[str, t.Any]) -> None:
    """Write one audit event about a referral."""
    db.session.add(AuditEvent(shop_id=referral.shop_id, actor=actor, action=action, subject_type="referral",
                              subject_id=referral.id, details=details))
