"""Discount rewards in Shopify: create a reward code for a ledger grant, deactivate it, sync referral codes.

Exactly-once across retries and processes rests on two things. The reward code is derived from the
grant (a keyed hash, so it is unguessable but the same on every attempt): a retry after a lost response
asks Shopify for the same code, gets "taken", looks the code up and records it instead of creating a
second discount. And the ``ISSUE`` row's idempotency key ``issue:{grant_id}`` is unique per shop, so two
jobs racing on one grant cannot both record it.

Functions here run inside a job (their own session) and commit their own work. Transient Shopify failures
propagate so the job is retried; permanent ones are recorded in the audit log and the grant stays pending.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import typing as t
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from referral_plugin.errors import ShopifyUnauthorized
from referral_plugin.errors import ShopifyUserErrors
from referral_plugin.extensions import db
from referral_plugin.jobs import TransientJobError
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import CampaignStatus
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import ReferralCode
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.security import crypto

logger = logging.getLogger(__name__)

DISCOUNT_KINDS = frozenset({RewardKind.PERCENTAGE.value, RewardKind.FIXED_AMOUNT.value})
#: Ledger rows a discount is issued for: a grant, or the release of a held reward.
ISSUABLE_TYPES = frozenset({EntryType.GRANT.value, EntryType.RELEASE.value})
ACTOR = "system:rewards"

# Audit actions (stable vocabulary, read by the dashboard and the sweeper).
ISSUE_FAILED = "discount_issue_failed"
DEACTIVATED = "discount_deactivated"
DEACTIVATE_FAILED = "discount_deactivate_failed"
CODE_SYNC_FAILED = "code_discount_sync_failed"

CREATE_MUTATION = """
mutation discountCodeBasicCreate($d: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $d) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

UPDATE_MUTATION = """
mutation discountCodeBasicUpdate($id: ID!, $d: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $d) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

DEACTIVATE_MUTATION = """
mutation discountCodeDeactivate($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

LOOKUP_QUERY = """
query codeDiscountNodeByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { id }
}
"""


class Outcome:
    """Stable names for what a reward job did."""

    ISSUED = "issued"
    ALREADY_ISSUED = "already_issued"
    NOT_ISSUABLE = "not_issuable"
    REVERSED = "reversed"
    HELD = "held"
    FAILED = "failed"
    SHOP_UNAVAILABLE = "shop_unavailable"
    MISSING = "missing"
    DEACTIVATED = "deactivated"
    NOT_ISSUED = "not_issued"
    SYNCED = "synced"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    NOT_REVERSED = "not_reversed"


class DemoShopify:
    """Stand in for the Admin API of the demo shop, whose dummy token must never reach Shopify."""

    def graphql(self, query: str, variables: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
        """Answer a query: no discount exists in the demo shop's Shopify."""
        return {"codeDiscountNodeByCode": None}

    def mutate(self, query: str, variables: t.Mapping[str, t.Any] | None, root: str) -> dict[str, t.Any]:
        """Answer a discount mutation as Shopify would, with a made-up node id."""
        data = dict(variables or {})
        code = str((data.get("d") or {}).get("code") or data.get("id") or "")
        node = data.get("id") or "gid://shopify/DiscountCodeNode/demo-" + crypto.keyed_hash("demo", code)[:12]
        return {"codeDiscountNode": {"id": node}, "userErrors": []}


def client_for(shop: Shop) -> t.Any:
    """Return AUTH's Admin API client for ``shop`` (a local stand-in for the demo shop in demo mode)."""
    from flask import current_app

    from referral_plugin.config import DEMO_SHOP_DOMAIN
    from referral_plugin.shopify import admin

    config = current_app.config
    if (config.get("DEMO_MODE") and shop.shopify_domain == DEMO_SHOP_DOMAIN
            and config.get("SHOPIFY_BASE_URL_TEMPLATE", "https://{shop}") == "https://{shop}"):
        return DemoShopify()
    return admin.client_for(shop)


def customer_gid(shopify_customer_id: int) -> str:
    """Return the GraphQL id of a Shopify customer."""
    return f"gid://shopify/Customer/{shopify_customer_id}"


def reward_code_for(entry: LedgerEntry, shop_domain: str) -> str:
    """Return the reward code of a grant: ``REF-`` and 12 base32 characters (60 bits) of a keyed hash.

    The same grant always gets the same code (so a retry cannot create a second discount); nobody
    without the app's secret can derive or guess it.
    """
    digest = crypto.keyed_hash("discount", f"{shop_domain}|{entry.id}|{entry.idempotency_key}")
    return "REF-" + base64.b32encode(bytes.fromhex(digest)).decode()[:12]


def discount_value(kind: str, value: Decimal) -> dict[str, t.Any]:
    """Return ``customerGets.value`` for a reward: a 0-1 ``percentage`` or a fixed ``discountAmount``."""
    value = abs(Decimal(value))
    if kind == RewardKind.PERCENTAGE:
        fraction = min(value / Decimal(100), Decimal(1))
        return {"percentage": float(fraction)}
    return {"discountAmount": {"amount": str(value.quantize(Decimal("0.01"))), "appliesOnEachItem": False}}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_code_taken(user_errors: t.Sequence[t.Mapping[str, t.Any]]) -> bool:
    """Tell whether Shopify refused the code because a discount with it already exists."""
    for error in user_errors:
        code = str(error.get("code") or "").upper()
        message = str(error.get("message") or "").lower()
        if code == "TAKEN" or "must be unique" in message or "already been taken" in message:
            return True
    return False


def lookup_code(client: t.Any, code: str) -> str | None:
    """Return the id of the code discount with ``code`` in the shop, or None."""
    data = client.graphql(LOOKUP_QUERY, {"code": code})
    node = (data or {}).get("codeDiscountNodeByCode")
    return str(node["id"]) if node and node.get("id") else None


def _audit(shop_id: int, action: str, subject_type: str, subject_id: int | None,
           details: dict[str, t.Any]) -> None:
    db.session.add(AuditEvent(shop_id=shop_id, actor=ACTOR, action=action, subject_type=subject_type,
                              subject_id=subject_id, details=details))


def issue_row_for(entry: LedgerEntry) -> LedgerEntry | None:
    """Return the ``ISSUE`` row recorded for a grant, if any."""
    return db.session.execute(
        select(LedgerEntry).where(LedgerEntry.shop_id == entry.shop_id,
                                  LedgerEntry.idempotency_key == f"issue:{entry.id}")
    ).scalar_one_or_none()


def _related_ids(entry: LedgerEntry) -> list[int]:
    """Return the ids a reversal of this reward may point at: the row itself and, for a release, its hold."""
    ids = [entry.id]
    if entry.entry_type == EntryType.RELEASE and entry.related_entry_id is not None:
        ids.append(entry.related_entry_id)
    return ids


def is_reversed(entry: LedgerEntry) -> bool:
    """Tell whether the reward was taken back whole (reversals leave nothing of its value)."""
    found = db.session.execute(
        select(LedgerEntry.id).where(
            LedgerEntry.shop_id == entry.shop_id,
            LedgerEntry.related_entry_id.in_(_related_ids(entry)),
            LedgerEntry.entry_type.in_([EntryType.REVERSAL.value, EntryType.VOID.value]),
        ).limit(1)
    ).first()
    if found is None:
        return False
    return _net_amount(entry) <= 0


def _net_amount(entry: LedgerEntry) -> Decimal:
    """Return the grant's value after its reversals (the engine's ``remaining``)."""
    from referral_plugin.referrals.ledger import remaining

    return Decimal(remaining(entry)[1])


def is_held(entry: LedgerEntry) -> bool:
    """Tell whether a grant is under a hold that has not been released yet."""
    if entry.entry_type != EntryType.GRANT:
        return False
    hold = db.session.execute(
        select(LedgerEntry.id).where(LedgerEntry.shop_id == entry.shop_id,
                                     LedgerEntry.related_entry_id == entry.id,
                                     LedgerEntry.entry_type == EntryType.HOLD.value).limit(1)
    ).scalar_one_or_none()
    if hold is None:
        return False
    released = db.session.execute(
        select(LedgerEntry.id).where(LedgerEntry.shop_id == entry.shop_id,
                                     LedgerEntry.related_entry_id.in_([hold, entry.id]),
                                     LedgerEntry.entry_type == EntryType.RELEASE.value).limit(1)
    ).first()
    return released is None


def _reward_value(entry: LedgerEntry) -> Decimal:
    """Return the grant's value left after reversals, falling back to the campaign's value for that side."""
    if entry.amount:
        return max(_net_amount(entry), Decimal(0))
    campaign = db.session.get(Campaign, entry.campaign_id) if entry.campaign_id else None
    if campaign is None:
        return Decimal(0)
    if entry.side == "friend":
        return Decimal(campaign.friend_reward_value)
    return Decimal(campaign.advocate_reward_value)


def reward_discount_input(entry: LedgerEntry, customer: Customer, code: str) -> dict[str, t.Any]:
    """Return the ``DiscountCodeBasicInput`` of a grant's reward: one customer, one use."""
    assert customer.shopify_customer_id is not None
    return {
        "title": f"Referral reward {code}",
        "code": code,
        "startsAt": _iso(utcnow()),
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "context": {"customers": {"add": [customer_gid(customer.shopify_customer_id)]}},
        "customerGets": {"value": discount_value(entry.reward_kind, _reward_value(entry)), "items": {"all": True}},
        "combinesWith": {"orderDiscounts": False, "productDiscounts": True, "shippingDiscounts": True},
    }


def _record_issue_failure(entry: LedgerEntry, reason: str, errors: list[dict[str, t.Any]] | None = None) -> str:
    _audit(entry.shop_id, ISSUE_FAILED, "ledger_entry", entry.id, {"reason": reason, "errors": errors or []})
    db.session.commit()
    logger.warning("discount for ledger entry %s not issued: %s %s", entry.id, reason, errors or "")
    return Outcome.FAILED


def issue_discount(entry_id: int) -> str:
    """Create the Shopify discount of a discount grant and record its ``ISSUE`` row; return the outcome.

    :raise ShopifyAPIError: (not userErrors) or ``requests`` errors on transient failures, to be retried.
    """
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None:
        return Outcome.MISSING
    if entry.entry_type not in ISSUABLE_TYPES or entry.reward_kind not in DISCOUNT_KINDS:
        return Outcome.NOT_ISSUABLE
    if entry.discount_code:
        # Already in the customer's hands (the referral code applied at checkout): nothing to create.
        return Outcome.NOT_ISSUABLE
    if issue_row_for(entry) is not None:
        return Outcome.ALREADY_ISSUED
    if is_reversed(entry):
        return Outcome.REVERSED
    if is_held(entry):
        return Outcome.HELD
    shop = db.session.get(Shop, entry.shop_id)
    if shop is None or not shop.is_installed:
        # Stays pending; the sweeper issues it once the shop is installed again.
        return Outcome.SHOP_UNAVAILABLE
    customer = db.session.get(Customer, entry.customer_id) if entry.customer_id else None
    if customer is None or customer.shopify_customer_id is None:
        return _record_issue_failure(entry, "NO_SHOPIFY_CUSTOMER")
    if not _reward_value(entry):
        return _record_issue_failure(entry, "NO_VALUE")

    code = reward_code_for(entry, shop.shopify_domain)
    try:
        client = client_for(shop)
        result = client.mutate(CREATE_MUTATION, {"d": reward_discount_input(entry, customer, code)},
                               "discountCodeBasicCreate")
        node_id: str | None = str(result["codeDiscountNode"]["id"])
    except ShopifyUserErrors as exc:
        if not _is_code_taken(exc.user_errors):
            return _record_issue_failure(entry, "SHOPIFY_USER_ERRORS", exc.user_errors)
        # An earlier attempt created it and its answer was lost: adopt that discount.
        node_id = lookup_code(client, code)
        if node_id is None:
            # Taken but not visible yet (or being created right now by a racing attempt): try again later.
            raise TransientJobError(f"reward code {code} is taken but not found yet") from exc
    except ShopifyUnauthorized:
        db.session.rollback()
        return Outcome.SHOP_UNAVAILABLE
    return _record_issue(entry, code, node_id)


def _record_issue(entry: LedgerEntry, code: str, node_id: str | None) -> str:
    issue = LedgerEntry(
        shop_id=entry.shop_id,
        customer_id=entry.customer_id,
        referral_id=entry.referral_id,
        campaign_id=entry.campaign_id,
        entry_type=EntryType.ISSUE.value,
        side=entry.side,
        reward_kind=entry.reward_kind,
        points=0,
        amount=Decimal(0),
        currency=entry.currency,
        discount_code=code,
        discount_node_id=node_id,
        related_entry_id=entry.id,
        idempotency_key=f"issue:{entry.id}",
        shopify_order_id=entry.shopify_order_id,
    )
    db.session.add(issue)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return Outcome.ALREADY_ISSUED
    if is_reversed(entry):
        # The grant was reversed while the code was being created: take the code back too.
        from referral_plugin.rewards import schedule_discount_deactivation

        schedule_discount_deactivation(entry.id)
        db.session.commit()
    return Outcome.ISSUED


def _resolve_grant(entry: LedgerEntry) -> LedgerEntry:
    """Return the grant a row is about: itself, or the row an ISSUE/REVERSAL/VOID points at."""
    if entry.entry_type in ISSUABLE_TYPES or entry.related_entry_id is None:
        return entry
    related = db.session.get(LedgerEntry, entry.related_entry_id)
    if related is None:
        return entry
    if related.entry_type == EntryType.HOLD:
        release = db.session.execute(
            select(LedgerEntry).where(LedgerEntry.shop_id == related.shop_id,
                                      LedgerEntry.related_entry_id == related.id,
                                      LedgerEntry.entry_type == EntryType.RELEASE.value)
        ).scalars().first()
        return release or related
    return related


def deactivate_discount(entry_id: int) -> str:
    """Deactivate in Shopify the reward code issued for a grant (given the grant or a row pointing at it)."""
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None:
        return Outcome.MISSING
    grant = _resolve_grant(entry)
    issue = entry if entry.entry_type == EntryType.ISSUE else issue_row_for(grant)
    if issue is None or not issue.discount_node_id:
        return Outcome.NOT_ISSUED
    if issue.related_entry_id is not None and issue is entry:
        grant = db.session.get(LedgerEntry, issue.related_entry_id) or grant
    if not is_reversed(grant):
        # Only a reward taken back loses its code; a stray or early job must not strip a live one.
        return Outcome.NOT_REVERSED
    done = db.session.execute(
        select(AuditEvent.id).where(AuditEvent.shop_id == issue.shop_id, AuditEvent.action == DEACTIVATED,
                                    AuditEvent.subject_type == "ledger_entry",
                                    AuditEvent.subject_id == issue.id).limit(1)
    ).first()
    if done is not None:
        return Outcome.DEACTIVATED
    shop = db.session.get(Shop, issue.shop_id)
    if shop is None or not shop.is_installed:
        return Outcome.SHOP_UNAVAILABLE
    try:
        client_for(shop).mutate(DEACTIVATE_MUTATION, {"id": issue.discount_node_id}, "discountCodeDeactivate")
    except ShopifyUserErrors as exc:
        _audit(issue.shop_id, DEACTIVATE_FAILED, "ledger_entry", issue.id, {"errors": exc.user_errors})
        db.session.commit()
        return Outcome.FAILED
    except ShopifyUnauthorized:
        db.session.rollback()
        return Outcome.SHOP_UNAVAILABLE
    _audit(issue.shop_id, DEACTIVATED, "ledger_entry", issue.id,
           {"discount_code": issue.discount_code, "discount_node_id": issue.discount_node_id})
    db.session.commit()
    return Outcome.DEACTIVATED


def campaign_code_ids(campaign_id: int) -> list[int]:
    """Return the ids of a campaign's codes a sync may change: live ones, and retired ones still in Shopify."""
    return list(db.session.execute(
        select(ReferralCode.id).where(
            ReferralCode.campaign_id == campaign_id,
            (ReferralCode.retired_at.is_(None)) | (ReferralCode.discount_node_id.is_not(None)),
        ).order_by(ReferralCode.id)
    ).scalars())


def code_discount_input(code: ReferralCode, campaign: Campaign) -> dict[str, t.Any]:
    """Return the ``DiscountCodeBasicInput`` making an advocate's code the friend's first-order offer."""
    data: dict[str, t.Any] = {
        "title": f"Referral code {code.code}",
        "code": code.code,
        "startsAt": _iso(campaign.starts_at or code.created_at or utcnow()),
        "appliesOncePerCustomer": True,
        "context": {"all": "ALL"},
        "customerGets": {"value": discount_value(campaign.friend_reward_kind, campaign.friend_reward_value),
                         "items": {"all": True}},
        "combinesWith": {"orderDiscounts": False, "productDiscounts": True, "shippingDiscounts": True},
    }
    # Always sent, null when open-ended: an update without it would keep an end date the merchant removed,
    # or the end that a deactivation (a pause) wrote.
    data["endsAt"] = _iso(campaign.ends_at) if campaign.ends_at is not None else None
    if campaign.min_order_subtotal and Decimal(campaign.min_order_subtotal) > 0:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": str(Decimal(campaign.min_order_subtotal).quantize(
                Decimal("0.01")))}
        }
    return data


#: An update's way of removing a minimum purchase requirement (Shopify keeps it when the key is left out).
NO_MINIMUM = {"quantity": {"greaterThanOrEqualToQuantity": None}, "subtotal": {"greaterThanOrEqualToSubtotal": None}}


def code_discount_update(code: ReferralCode, campaign: Campaign) -> dict[str, t.Any]:
    """Return the update input of an advocate's code discount: the offer, and no minimum when the campaign has none."""
    data = code_discount_input(code, campaign)
    data.setdefault("minimumRequirement", NO_MINIMUM)
    return data


def code_wanted(code: ReferralCode, campaign: Campaign) -> bool:
    """Tell whether an advocate's code should be a live Shopify discount (the sweeper's query mirrors this)."""
    return (code.retired_at is None and campaign.friend_reward_kind in DISCOUNT_KINDS
            and campaign.status == CampaignStatus.ACTIVE and bool(campaign.friend_reward_value))


def sync_code_discount(referral_code_id: int, *, repair_only: bool = False) -> str:
    """Make an advocate's referral code a live Shopify discount when the friend reward is a discount.

    Creates it (or adopts an existing one with the same code), updates it when it exists, and
    deactivates it when the code is retired or the campaign no longer gives friends a discount.
    With ``repair_only`` (the sweeper's re-queue of a lost job) a code whose link already matches its
    campaign is left alone, without calling Shopify.
    """
    code = db.session.get(ReferralCode, referral_code_id)
    if code is None:
        return Outcome.MISSING
    campaign = db.session.get(Campaign, code.campaign_id)
    shop = db.session.get(Shop, code.shop_id)
    if campaign is None or shop is None:
        return Outcome.MISSING
    if not shop.is_installed:
        return Outcome.SHOP_UNAVAILABLE
    wanted = code_wanted(code, campaign)
    if repair_only and wanted == bool(code.discount_node_id):
        return Outcome.UNCHANGED
    try:
        client = client_for(shop)
        if not wanted:
            if not code.discount_node_id:
                return Outcome.UNCHANGED
            client.mutate(DEACTIVATE_MUTATION, {"id": code.discount_node_id}, "discountCodeDeactivate")
            code.discount_node_id = None
            db.session.commit()
            return Outcome.REMOVED
        data = code_discount_input(code, campaign)
        if code.discount_node_id:
            client.mutate(UPDATE_MUTATION, {"id": code.discount_node_id, "d": code_discount_update(code, campaign)},
                          "discountCodeBasicUpdate")
            db.session.commit()
            return Outcome.SYNCED
        try:
            result = client.mutate(CREATE_MUTATION, {"d": data}, "discountCodeBasicCreate")
            node_id = str(result["codeDiscountNode"]["id"])
        except ShopifyUserErrors as exc:
            if not _is_code_taken(exc.user_errors):
                raise
            found = lookup_code(client, code.code)
            if found is None:
                raise
            node_id = found
            # The code's discount already exists: made by a lost earlier attempt, or deactivated when the
            # campaign was paused. Bring it in line with the offer, which also ends a deactivation.
            client.mutate(UPDATE_MUTATION, {"id": node_id, "d": code_discount_update(code, campaign)},
                          "discountCodeBasicUpdate")
    except ShopifyUserErrors as exc:
        db.session.rollback()
        _audit(code.shop_id, CODE_SYNC_FAILED, "referral_code", code.id, {"errors": exc.user_errors})
        db.session.commit()
        return Outcome.FAILED
    except ShopifyUnauthorized:
        db.session.rollback()
        return Outcome.SHOP_UNAVAILABLE
    code.discount_node_id = node_id
    db.session.commit()
    return Outcome.SYNCED
