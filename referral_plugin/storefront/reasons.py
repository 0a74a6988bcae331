"""Plain words for the engine's stable reason codes, as a shopper reads them in the widget."""

from __future__ import annotations

# Referral decisions (the engine's ``Reason`` vocabulary): why a friend did not earn the advocate a reward,
# or why the reward is still waiting.
REFERRAL_REASONS: dict[str, str] = {
    "CAMPAIGN_INACTIVE": "The referral program wasn't running when your friend ordered.",
    "TEST_ORDER": "It was a test order, which doesn't earn rewards.",
    "SELF_REFERRAL": "It looked like your own order (same account, email, phone or address), so it can't count.",
    "ALREADY_REFERRED": "Someone else referred this friend first.",
    "NOT_FIRST_ORDER": "Your friend had ordered before, and only a first order counts.",
    "NOT_NEW_CUSTOMER": "Your friend was already a customer before your invitation.",
    "BELOW_MINIMUM": "The order was below the minimum amount for a reward.",
    "CAP_REACHED": "You've reached the most rewarded referrals this program allows.",
    "GUEST_CHECKOUT": "Your friend checked out as a guest, without an account to link to you.",
    "ORDER_CANCELLED": "Your friend's order was cancelled, so it doesn't earn a reward.",
    "REJECTED_BY_MERCHANT": "The shop reviewed this referral and didn't approve it.",
    "ORDER_REFUNDED": "Your friend's order was refunded, so its reward was taken back.",
    "PARTIAL_REFUND": "Part of your friend's order was refunded, so part of the reward was taken back.",
    "HOLD_PERIOD": "Rewards wait until the return window closes, then they're yours.",
    "REVIEW_DISPOSABLE_EMAIL": "The shop is reviewing this referral before the reward is released.",
    "REVIEW_SHARED_ADDRESS": "The shop is reviewing this referral before the reward is released.",
    "REVIEW_VELOCITY": "The shop is reviewing this referral before the reward is released.",
}

# Invitation results: why a friend could not be invited.
INVITATION_REASONS: dict[str, str] = {
    "INVALID_EMAIL": "That doesn't look like an email address.",
    "INVALID_MOBILE": "That doesn't look like a mobile number.",
    "INVALID_IDENTIFIER": "That doesn't look like an email address or mobile number.",
    "SELF_INVITE": "That's you! Invite a friend instead.",
    "SELF_REFERRAL": "That's you! Invite a friend instead.",
    "ALREADY_INVITED": "You've already invited this friend.",
    "DUPLICATE": "You've already invited this friend.",
    "ALREADY_CUSTOMER": "This friend already shops here, so they can't be referred.",
    "EXISTING_CUSTOMER": "This friend already shops here, so they can't be referred.",
    "ALREADY_REFERRED": "Someone else already referred this friend.",
    "CAMPAIGN_INACTIVE": "The referral program isn't running right now.",
    "CAMPAIGN_ENDED": "This referral program has ended, so friends can't be invited to it.",
    "UNSUPPORTED_CHANNEL": "Invite friends by email or mobile number.",
    "EMPTY": "Enter an email address or mobile number.",
    "TOO_LONG": "That's too long to be an email address or mobile number.",
}

_FALLBACK_REFERRAL = "This referral didn't qualify for a reward."
_FALLBACK_INVITATION = "This friend couldn't be invited."


def referral_reason_text(code: str | None) -> str | None:
    """Return the sentence for a referral decision reason, or None when there is no reason."""
    if not code:
        return None
    return REFERRAL_REASONS.get(code.upper(), _FALLBACK_REFERRAL)


def invitation_reason_text(code: str | None) -> str | None:
    """Return the sentence for an invitation result reason, or None when there is no reason."""
    if not code:
        return None
    return INVITATION_REASONS.get(code.upper(), _FALLBACK_INVITATION)
