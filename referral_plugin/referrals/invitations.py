"""Invitations of friends by email or mobile: validated per channel, idempotent, tracked to purchase."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_
from sqlalchemy import select

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import InvitationStatus
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals._db import insert_once
from referral_plugin.referrals.campaigns import has_ended
from referral_plugin.referrals.customers import canonical_email
from referral_plugin.referrals.customers import mobile_digits
from referral_plugin.referrals.customers import normalize_email
from referral_plugin.referrals.customers import normalize_phone
from referral_plugin.referrals.customers import phone_region
from referral_plugin.referrals.reasons import Reason

CHANNELS = ("email", "mobile")
_CHANNEL_ALIASES = {"email": "email", "mobile": "mobile", "phone": "mobile", "sms": "mobile"}


@dataclass(frozen=True)
class InviteResult:
    """The outcome of one invitation: ``created``, ``duplicate`` or ``invalid`` (with a stable reason)."""

    status: str
    reason: str | None
    identifier: str | None
    invitation: Invitation | None

    @property
    def ok(self) -> bool:
        """Tell whether the friend is (now or already) invited."""
        return self.status in ("created", "duplicate")


def normalize_identifier(shop: Shop, channel: str, identifier: str | None) -> str:
    """Return the stored form of an invitee: lower-case email, or E.164 digits without ``+`` (``917999836466``)."""
    if channel == "email":
        return normalize_email(identifier)
    return mobile_digits(normalize_phone(identifier, phone_region(shop))) or ""


def invite(
    shop: Shop,
    advocate: Customer,
    channel: str,
    identifier: str | None,
    *,
    name: str | None = None,
    source: str,
    external_ref: str | None = None,
    campaign: Campaign | None = None,
) -> InviteResult:
    """Invite a friend once per campaign, advocate and invitee; a repeat answers ``duplicate`` with the same row.

    A campaign that has ended takes no invitations (``CAMPAIGN_ENDED``); a paused or scheduled one does: the
    friend's order counts once it runs.
    """
    kind = _CHANNEL_ALIASES.get((channel or "").strip().lower())
    if kind is None:
        return InviteResult("invalid", Reason.UNSUPPORTED_CHANNEL, identifier, None)
    try:
        normalized = normalize_identifier(shop, kind, identifier)
    except ValidationError:
        reason = Reason.INVALID_EMAIL if kind == "email" else Reason.INVALID_MOBILE
        return InviteResult("invalid", reason, identifier, None)
    if _is_self(advocate, kind, normalized):
        return InviteResult("invalid", Reason.SELF_INVITE, normalized, None)
    if campaign is None:
        from referral_plugin.referrals.campaigns import ensure_default_campaign

        campaign = ensure_default_campaign(shop)
    if has_ended(campaign):
        return InviteResult("invalid", Reason.CAMPAIGN_ENDED, normalized, None)
    existing = _find(campaign, advocate, kind, normalized)
    if existing is not None:
        return InviteResult("duplicate", None, normalized, existing)
    invitation = Invitation(
        shop_id=shop.id,
        campaign_id=campaign.id,
        advocate_id=advocate.id,
        channel=kind,
        identifier=normalized,
        name=(name or "").strip()[:255] or None,
        status=InvitationStatus.INVITED,
        source=(source or "api")[:16],
        external_ref=(external_ref or None) and str(external_ref)[:64],
    )
    if insert_once(invitation):
        return InviteResult("created", None, normalized, invitation)
    existing = _find(campaign, advocate, kind, normalized)
    return InviteResult("duplicate", None, normalized, existing)


def _is_self(advocate: Customer, channel: str, normalized: str) -> bool:
    """Tell whether the invitee is the advocate."""
    if channel == "email":
        return bool(advocate.email_canonical) and canonical_email(normalized) == advocate.email_canonical
    return bool(advocate.phone) and mobile_digits(advocate.phone) == normalized


def _find(campaign: Campaign, advocate: Customer, channel: str, identifier: str) -> Invitation | None:
    """Return the existing invitation for this campaign, advocate and invitee."""
    return db.session.scalar(select(Invitation).where(
        Invitation.campaign_id == campaign.id, Invitation.advocate_id == advocate.id,
        Invitation.channel == channel, Invitation.identifier == identifier))


def invitations_for(shop: Shop, customer: Customer) -> list[Invitation]:
    """Return the shop's invitations addressed to this customer's email or phone, earliest first."""
    clauses = []
    if customer.email:
        clauses.append((Invitation.channel == "email") & (Invitation.identifier == customer.email))
    if customer.phone:
        clauses.append((Invitation.channel == "mobile") & (Invitation.identifier == mobile_digits(customer.phone)))
    if not clauses:
        return []
    rows = db.session.scalars(select(Invitation).where(Invitation.shop_id == shop.id, or_(*clauses))
                              .order_by(Invitation.invited_at, Invitation.id))
    return list(rows)


def invitations_by(advocate: Customer) -> list[Invitation]:
    """Return an advocate's invitations, newest first."""
    return list(db.session.scalars(select(Invitation).where(
        Invitation.shop_id == advocate.shop_id, Invitation.advocate_id == advocate.id)
        .order_by(Invitation.invited_at.desc(), Invitation.id.desc())))


def mark_joined(invitations: list[Invitation], friend: Customer, at: dt.datetime | None = None) -> None:
    """Record that the invited friend created an account."""
    at = at or utcnow()
    for invitation in invitations:
        if invitation.advocate_id == friend.id:
            continue
        if invitation.friend_id is None:
            invitation.friend_id = friend.id
        if invitation.status == InvitationStatus.INVITED:
            invitation.status = InvitationStatus.JOINED
            invitation.joined_at = at
    db.session.flush()


def mark_purchased(shop: Shop, friend: Customer, advocate_id: int, at: dt.datetime | None = None) -> None:
    """Record that an invited friend made the qualifying purchase (for this advocate's invitations)."""
    at = at or utcnow()
    for invitation in invitations_for(shop, friend):
        if invitation.advocate_id != advocate_id:
            continue
        invitation.friend_id = invitation.friend_id or friend.id
        if invitation.joined_at is None:
            invitation.joined_at = at
        invitation.status = InvitationStatus.PURCHASED
        invitation.purchased_at = invitation.purchased_at or at
    db.session.flush()
