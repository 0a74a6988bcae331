"""The stable decision vocabulary: every reason code the engine stores, and what it means.

Codes are written to ``OrderAttribution.reason``, ``Referral.reason``, ``LedgerEntry.reason`` and
``InviteResult.reason``. They never change meaning once shipped; the README lists them from
:data:`DESCRIPTIONS`, so "why was I not credited?" is answered from the data.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """A reason code; see :data:`DESCRIPTIONS` for the meaning of each."""

    # Outcomes of a qualifying order.
    QUALIFIED = "QUALIFIED"
    HOLD_PERIOD = "HOLD_PERIOD"
    REVIEW_DISPOSABLE_EMAIL = "REVIEW_DISPOSABLE_EMAIL"
    REVIEW_SHARED_ADDRESS = "REVIEW_SHARED_ADDRESS"
    REVIEW_VELOCITY = "REVIEW_VELOCITY"
    # Rejections of an attributed order, in the order they are checked.
    CAMPAIGN_INACTIVE = "CAMPAIGN_INACTIVE"
    TEST_ORDER = "TEST_ORDER"
    ADVOCATE_ERASED = "ADVOCATE_ERASED"
    SELF_REFERRAL = "SELF_REFERRAL"
    ALREADY_REFERRED = "ALREADY_REFERRED"
    NOT_FIRST_ORDER = "NOT_FIRST_ORDER"
    NOT_NEW_CUSTOMER = "NOT_NEW_CUSTOMER"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    CAP_REACHED = "CAP_REACHED"
    GUEST_CHECKOUT = "GUEST_CHECKOUT"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    # Merchant review and the sweeper.
    APPROVED = "APPROVED"
    REJECTED_BY_MERCHANT = "REJECTED_BY_MERCHANT"
    RELEASED = "RELEASED"
    CUSTOMER_ERASED = "CUSTOMER_ERASED"
    # Reversals.
    ORDER_REFUNDED = "ORDER_REFUNDED"
    PARTIAL_REFUND = "PARTIAL_REFUND"
    # Ledger rows.
    REFERRAL_REWARD = "REFERRAL_REWARD"
    APPLIED_AT_CHECKOUT = "APPLIED_AT_CHECKOUT"
    MANUAL_ADJUSTMENT = "MANUAL_ADJUSTMENT"
    # Invitations.
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_MOBILE = "INVALID_MOBILE"
    SELF_INVITE = "SELF_INVITE"
    UNSUPPORTED_CHANNEL = "UNSUPPORTED_CHANNEL"
    CAMPAIGN_ENDED = "CAMPAIGN_ENDED"


DESCRIPTIONS: dict[Reason, str] = {
    Reason.QUALIFIED: "The friend's order qualified; both rewards were granted.",
    Reason.HOLD_PERIOD: "The order qualified; rewards are held for the campaign's hold days, then released.",
    Reason.REVIEW_DISPOSABLE_EMAIL: "Held for merchant review: the friend uses a disposable email domain.",
    Reason.REVIEW_SHARED_ADDRESS: "Held for merchant review: another friend of this advocate shares the address.",
    Reason.REVIEW_VELOCITY: "Held for merchant review: this advocate collected many referrals in a short time.",
    Reason.CAMPAIGN_INACTIVE: "The campaign was paused, archived or outside its schedule when the order was paid.",
    Reason.TEST_ORDER: "A test order (test: true); rewarded only with REWARD_TEST_ORDERS on.",
    Reason.ADVOCATE_ERASED: "The advocate's data was erased at their request (customers/redact); their code and "
                            "invitations earn nothing any more.",
    Reason.SELF_REFERRAL: "The friend is the advocate (same customer, canonical email, phone or address).",
    Reason.ALREADY_REFERRED: "The friend was already referred by another advocate; a friend is referred once.",
    Reason.NOT_FIRST_ORDER: "The order is not the friend's first paid order.",
    Reason.NOT_NEW_CUSTOMER: "The campaign is for new customers and the friend was a customer before the referral.",
    Reason.BELOW_MINIMUM: "The order subtotal is below the campaign's minimum.",
    Reason.CAP_REACHED: "The advocate already has the campaign's maximum of rewarded referrals.",
    Reason.GUEST_CHECKOUT: "The order has no customer account to reward.",
    Reason.ORDER_CANCELLED: "The order was cancelled (before or after payment); it earns nothing.",
    Reason.APPROVED: "The merchant approved a held referral.",
    Reason.REJECTED_BY_MERCHANT: "The merchant rejected a held referral; its held rewards were voided.",
    Reason.RELEASED: "A held reward reached its release date and now counts.",
    Reason.CUSTOMER_ERASED: "The customer's data was erased (customers/redact) while their reward was held; "
                            "it was cancelled instead of released.",
    Reason.ORDER_REFUNDED: "The order was fully refunded; its rewards were reversed.",
    Reason.PARTIAL_REFUND: "Part of the order was refunded; the same share of its points was reversed.",
    Reason.REFERRAL_REWARD: "A reward earned through a referral.",
    Reason.APPLIED_AT_CHECKOUT: "The friend's discount was the referral code itself, used at checkout.",
    Reason.MANUAL_ADJUSTMENT: "A manual points change by the merchant.",
    Reason.INVALID_EMAIL: "The invitee's email address is not valid.",
    Reason.INVALID_MOBILE: "The invitee's mobile number is not valid for the shop's region.",
    Reason.SELF_INVITE: "The advocate invited themselves.",
    Reason.UNSUPPORTED_CHANNEL: "Invitations go by email or mobile only.",
    Reason.CAMPAIGN_ENDED: "The campaign has ended (its end date passed, or it was archived): a friend invited now "
                           "could never earn a reward. A paused or not yet started campaign still takes invitations.",
}

#: Reasons that put a qualified referral in the merchant's review queue.
REVIEW_REASONS = frozenset({Reason.REVIEW_DISPOSABLE_EMAIL, Reason.REVIEW_SHARED_ADDRESS, Reason.REVIEW_VELOCITY})


def vocabulary() -> list[dict[str, str]]:
    """Return every reason code with its meaning, in definition order (for the README and the API docs)."""
    return [{"code": reason.value, "description": DESCRIPTIONS[reason]} for reason in Reason]


def describe(code: str) -> str:
    """Return the human sentence for a reason code, or the code itself when unknown."""
    try:
        return DESCRIPTIONS[Reason(code)]
    except ValueError:
        return code
