"""What the widget shows a shopper: the offer, their code and link, share links, progress and reasons."""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal
from urllib.parse import quote
from urllib.parse import urlencode

import sqlalchemy as sa

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import CampaignStatus
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import InvitationStatus
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import describe_offer
from referral_plugin.referrals.campaigns import describe_reward
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import has_ended
from referral_plugin.referrals.campaigns import is_running
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.codes import invite_link
from referral_plugin.referrals.customers import get_customer
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.ledger import pending_rewards
from referral_plugin.referrals.ledger import points_balance
from referral_plugin.referrals.ledger import points_earned
from referral_plugin.referrals.reasons import REVIEW_REASONS
from referral_plugin.reports.summary import shop_zone
from referral_plugin.storefront.reasons import referral_reason_text

#: How many friends the progress list shows; the counts above it cover everyone.
FRIENDS_SHOWN = 20

_PURCHASED = (ReferralStatus.HELD, ReferralStatus.REWARDED, ReferralStatus.PARTIALLY_REVERSED)
_NOT_CREDITED = (ReferralStatus.REJECTED, ReferralStatus.REVERSED)
# Statuses whose reason the shopper should read: not credited, taken back, or still waiting.
_EXPLAINED = (*_NOT_CREDITED, ReferralStatus.PARTIALLY_REVERSED, ReferralStatus.HELD)

STATUS_LABELS: dict[str, str] = {
    InvitationStatus.INVITED: "Invited",
    ReferralStatus.PENDING: "Joined, no order yet",
    ReferralStatus.HELD: "Ordered, reward pending",
    ReferralStatus.REWARDED: "Ordered, you were rewarded",
    ReferralStatus.REJECTED: "Not credited",
    ReferralStatus.REVERSED: "Reward taken back",
    ReferralStatus.PARTIALLY_REVERSED: "Ordered, part of the reward taken back",
}


def offer_sentences(offer: t.Mapping[str, t.Any]) -> dict[str, str]:
    """Pick the headline, the two sides' rewards and the conditions out of ``describe_offer``'s result."""
    return {
        "conditions": ", ".join(offer["conditions"]),
        "headline": offer["headline"],
        "friend": offer["friendReward"]["text"],
        "advocate": offer["advocateReward"]["text"],
    }


def mask_identifier(channel: str, identifier: str) -> str:
    """Show enough of an invitee's email or number to recognise it, not enough to harvest it."""
    if channel == "email" and "@" in identifier:
        local, domain = identifier.split("@", 1)
        return f"{local[:1]}•••@{domain}"
    digits = identifier.lstrip("+")
    return f"•••{digits[-4:]}" if len(digits) > 4 else "•••"


def friend_name(customer: Customer | None) -> str:
    """Return a friend's first name and last initial, or a masked email, or 'A friend'."""
    if customer is None or customer.redacted_at is not None:
        return "A friend"
    if customer.first_name:
        initial = f" {customer.last_name[:1]}." if customer.last_name else ""
        return f"{customer.first_name}{initial}"
    if customer.email:
        return mask_identifier("email", customer.email)
    return "A friend"


def share_links(link: str, message: str, subject: str) -> dict[str, str]:
    """Return the share URLs for email, SMS, WhatsApp, X and Facebook."""
    with_link = f"{message} {link}"
    return {
        "email": "mailto:?" + urlencode({"subject": subject, "body": with_link}, quote_via=quote),
        "sms": "sms:?&" + urlencode({"body": with_link}, quote_via=quote),
        "whatsapp": "https://wa.me/?" + urlencode({"text": with_link}, quote_via=quote),
        "x": "https://x.com/intent/post?" + urlencode({"text": message, "url": link}, quote_via=quote),
        "facebook": "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": link}, quote_via=quote),
    }


def share_message(shop_name: str, offer: t.Mapping[str, str], code: str) -> str:
    """Return the words shared with the link: the friend's reward, the shop and the code."""
    friend_offer = offer.get("friend") or ""
    if friend_offer:
        return f"Get {friend_offer} at {shop_name} with my code {code}:"
    return f"Shop at {shop_name} with my referral code {code}:"


def login_url(path_prefix: str) -> str:
    """Return the storefront login URL that comes back to the widget afterwards."""
    return "/account/login?" + urlencode({"return_url": f"{path_prefix}/widget"}, quote_via=quote)


def resolve_customer(shop: Shop, shopify_customer_id: int) -> Customer:
    """Return the program's customer for a logged-in shopper, creating them on first visit (caller commits)."""
    customer = get_customer(shop, shopify_customer_id)
    if customer is not None:
        return customer
    # The engine inserts in a savepoint, so two first visits at once share one row.
    return upsert_customer(shop, shopify_customer_id)


def resolve_code(shop: Shop, customer: Customer, campaign: Campaign) -> ReferralCode:
    """Return the customer's code in the campaign, creating it on first visit (caller commits)."""
    return get_or_create_code(shop, customer, campaign)


def _progress(shop: Shop, customer: Customer) -> dict[str, t.Any]:
    """Count clicks, invitations and referrals, and list the latest friends with their status and reason.

    The customer row is the shop scope here: its id belongs to one shop (checked below), and naming
    ``shop_id`` as well leads SQLite's planner to a shop-wide index, a scan of every row of a big shop.
    """
    if customer.shop_id != shop.id:
        raise ValueError("customer of another shop")
    # One round trip for the two counts and whether the ledger has anything for this customer.
    clicks, invited, has_ledger = db.session.execute(sa.select(
        sa.select(sa.func.count(Click.id))
        .join(ReferralCode, ReferralCode.id == Click.referral_code_id)
        .where(ReferralCode.customer_id == customer.id)
        .scalar_subquery(),
        sa.select(sa.func.count(Invitation.id)).where(Invitation.advocate_id == customer.id).scalar_subquery(),
        sa.exists().where(LedgerEntry.customer_id == customer.id),
    )).one()
    by_status: dict[str, int] = {
        status: int(count)
        for status, count in db.session.execute(
            sa.select(Referral.status, sa.func.count(Referral.id))
            .where(Referral.advocate_id == customer.id)
            .group_by(Referral.status)
        )
    }
    joined = sum(by_status.values())
    purchased = sum(count for status, count in by_status.items() if status in _PURCHASED)
    not_credited = sum(count for status, count in by_status.items() if status in _NOT_CREDITED)

    rows = db.session.execute(
        sa.select(Referral, Customer)
        .outerjoin(Customer, Customer.id == Referral.friend_id)
        .where(Referral.advocate_id == customer.id)
        .order_by(Referral.created_at.desc(), Referral.id.desc())
        .limit(FRIENDS_SHOWN)
    ).all()
    friends: list[dict[str, t.Any]] = []
    for referral, friend in rows:
        friends.append({
            "name": friend_name(friend),
            "status": referral.status,
            "statusLabel": STATUS_LABELS.get(referral.status, referral.status),
            "reason": referral.reason if referral.status in _EXPLAINED else None,
            "reasonText": referral_reason_text(referral.reason) if referral.status in _EXPLAINED else None,
            # A referral the shop reviews is released by the shop, not on its hold date: promise no date.
            "holdUntil": _iso_date(referral.hold_until)
            if referral.status == ReferralStatus.HELD and referral.reason not in REVIEW_REASONS else None,
            "date": _iso_date(referral.decided_at or referral.created_at),
        })
    if len(friends) < FRIENDS_SHOWN:
        # Invitations that have not turned into a referral yet.
        invitations = db.session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.advocate_id == customer.id,
                Invitation.status == InvitationStatus.INVITED,
            )
            .order_by(Invitation.invited_at.desc(), Invitation.id.desc())
            .limit(FRIENDS_SHOWN - len(friends))
        ).all()
        for invitation in invitations:
            friends.append({
                "name": invitation.name or mask_identifier(invitation.channel, invitation.identifier),
                "status": InvitationStatus.INVITED,
                "statusLabel": STATUS_LABELS[InvitationStatus.INVITED],
                "reason": None,
                "reasonText": None,
                "holdUntil": None,
                "date": _iso_date(invitation.invited_at),
            })
    return {
        "clicks": int(clicks),
        "invited": int(invited),
        "joined": int(joined),
        "purchased": int(purchased),
        "notCredited": int(not_credited),
        "friends": friends,
        "hasLedger": bool(has_ledger),
    }


def _iso_date(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date().isoformat()
    return value.isoformat()


_PENDING_STATUS = {
    "held": "Held until the return window closes",
    "in_review": "Waiting for the shop's review",
    "issuing": "Your discount code is on its way",
}


def _pending(shop: Shop, customer: Customer) -> list[dict[str, t.Any]]:
    """Describe the customer's rewards not usable yet, with the date each one releases."""
    out: list[dict[str, t.Any]] = []
    for item in pending_rewards(customer):
        if item.kind == RewardKind.POINTS:
            description = describe_reward(item.kind, Decimal(item.points), shop.currency)
        else:
            description = f"{describe_reward(item.kind, Decimal(item.amount), shop.currency)} code"
        out.append({
            "description": description,
            "kind": item.kind,
            "points": item.points,
            "status": item.status,
            "statusText": _PENDING_STATUS.get(item.status, "Pending"),
            "releasesOn": _iso_date(item.available_at),
        })
    return out


def _shop_date(shop: Shop, value: dt.datetime | None) -> str | None:
    """Return the shop's calendar date of an instant (ISO), as its shoppers read dates."""
    if value is None:
        return None
    return value.astimezone(shop_zone(shop)).date().isoformat()


def campaign_state(campaign: Campaign, at: dt.datetime) -> str:
    """Return ``running``, ``paused``, ``scheduled`` (starts later) or ``ended``, for the widget's wording."""
    if has_ended(campaign, at):  # archived, or past its end (whatever else it is)
        return "ended"
    if campaign.status != CampaignStatus.ACTIVE:
        return "paused"
    if campaign.starts_at is not None and at < campaign.starts_at:
        return "scheduled"
    return "running"


def widget_data(
    shop: Shop,
    shopify_customer_id: int | None,
    path_prefix: str,
    *,
    now: dt.datetime | None = None,
) -> dict[str, t.Any]:
    """Return everything the widget shows, as JSON-ready data; a new customer gets a code on the way."""
    moment = now or dt.datetime.now(dt.UTC)
    campaign = ensure_default_campaign(shop)
    offer = describe_offer(campaign)
    running = is_running(campaign, moment)
    shop_name = shop.name or shop.shopify_domain.split(".", 1)[0]
    data: dict[str, t.Any] = {
        "shop": {"domain": shop.shopify_domain, "name": shop_name},
        "campaign": {"token": campaign.token, "name": campaign.name, "running": running,
                     "state": campaign_state(campaign, moment), "startsAt": _shop_date(shop, campaign.starts_at),
                     "endsAt": _shop_date(shop, campaign.ends_at)},
        "offer": offer_sentences(offer),
        "offerDetails": dict(offer),
        "loggedIn": shopify_customer_id is not None,
        "loginUrl": login_url(path_prefix),
        "registerUrl": "/account/register",
        "proxyPath": path_prefix,
    }
    if shopify_customer_id is None:
        db.session.commit()  # ensure_default_campaign may have created the campaign
        return data
    customer = resolve_customer(shop, shopify_customer_id)
    code = resolve_code(shop, customer, campaign)
    link = invite_link(shop, code)
    message = share_message(shop_name, data["offer"], code.code)
    progress = _progress(shop, customer)
    # Most customers have no ledger rows yet: the probe in _progress spares the balance and pending queries.
    has_ledger = progress["hasLedger"]
    data.update({
        "customer": {"name": customer.first_name or None},
        "code": code.code,
        "inviteLink": link,
        "shareMessage": message,
        "share": share_links(link, message, subject=f"A gift for you from {shop_name}"),
        "stats": {
            "clicks": progress["clicks"],
            "invited": progress["invited"],
            "joined": progress["joined"],
            "purchased": progress["purchased"],
            "notCredited": progress["notCredited"],
            "pointsEarned": int(points_earned(customer)) if has_ledger else 0,
            "pointsBalance": int(points_balance(customer)) if has_ledger else 0,
        },
        "pendingRewards": _pending(shop, customer) if has_ledger else [],
        "friends": progress["friends"],
    })
    # Once, at the end: a first visit's customer and code are kept; the data above is plain, not ORM rows.
    db.session.commit()
    return data
