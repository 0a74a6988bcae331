"""Privacy compliance: the three mandatory Shopify webhooks and the ``gdpr export`` command.

- ``customers/redact`` erases one customer's personal data everywhere (profile, invitations that name
  them, PII inside referral and attribution evidence, staff notes naming them, stored exports) and keeps
  the anonymous ledger rows, so shop totals do not change. Idempotent.
- ``customers/data_request`` stores a :class:`~referral_plugin.models.DataExport` with everything held on
  the customer, once per data request id, for the merchant to hand over (``flask gdpr requests``).
- ``shop/redact`` deletes every row of the shop in every table. Idempotent; an unknown shop is fine; one
  that fired before the shop's latest install (the merchant came back) is ignored.

The webhook hmac signs the body, not the shop header: a compliance body whose ``shop_domain`` names
another shop is ignored rather than applied to the header's shop.

Handlers run inside the webhook delivery's transaction and never commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import typing as t
from decimal import Decimal

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from referral_plugin.errors import InvalidShopDomain
from referral_plugin.errors import NotFound
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Base
from referral_plugin.models import Campaign
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import DataExport
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals.customers import shopify_id
from referral_plugin.security.shop_domain import names_another_shop
from referral_plugin.security.shop_domain import require_shop_domain

if t.TYPE_CHECKING:
    from referral_plugin.webhooks.registry import Delivery

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
#: Keys whose values are personal data wherever they appear in stored evidence JSON.
PII_KEYS = frozenset({
    "email", "customer_email", "contact_email", "phone", "customer_phone", "mobile", "first_name", "last_name",
    "name", "full_name", "address", "address1", "address2", "shipping_address", "billing_address", "zip",
    "city", "province", "country", "company", "browser_ip", "client_ip", "ip", "user_agent", "note",
    "identifier", "friend_email", "advocate_email", "friend_phone", "advocate_phone", "friend_name",
    "advocate_name", "latitude", "longitude", "email_canonical", "address_hash", "phone_e164",
})


def _for_another_shop(payload: t.Mapping[str, t.Any], delivery: Delivery) -> bool:
    """Tell whether the signed body names another shop than the delivery's header (a replayed body): skip it."""
    if names_another_shop(payload.get("shop_domain"), delivery.shop_domain):
        logger.warning("ignoring %s for %s: its body names another shop", delivery.topic, delivery.shop_domain)
        return True
    return False


# ---------------------------------------------------------------------------------------------------------
# customers/redact


def _customer_id(payload: t.Mapping[str, t.Any]) -> int | None:
    customer = payload.get("customer")
    return shopify_id(customer.get("id")) if isinstance(customer, dict) else None


def _order_ids(orders: t.Iterable[t.Any]) -> list[int]:
    """Return the Shopify order ids among ``orders`` (anything else, e.g. beyond 64 bits, names no order)."""
    return [order for order in map(shopify_id, orders) if order is not None]


def _payload_contact(payload: t.Mapping[str, t.Any], key: str) -> str | None:
    customer = payload.get("customer")
    value = customer.get(key) if isinstance(customer, dict) else None
    return str(value).strip() if value else None


def _identifiers(shop: Shop, channel: str, raw: str | None) -> set[str]:
    """Return the stored invitation identifier for ``raw`` (the engine's normalization), plus a plain form."""
    if not raw:
        return set()
    from referral_plugin.referrals.invitations import normalize_identifier

    plain = raw.strip().lower() if channel == "email" else re.sub(r"\D", "", raw)
    forms = {plain}
    try:
        forms.add(normalize_identifier(shop, channel, raw))
    except ValidationError:
        pass
    return {form for form in forms if form}


def _email_identifiers(shop: Shop, email: str | None) -> set[str]:
    return _identifiers(shop, "email", email)


def _phone_identifiers(shop: Shop, phone: str | None) -> set[str]:
    """Return the forms a phone takes as an invitation identifier (E.164 digits, without ``+``)."""
    return _identifiers(shop, "mobile", phone)


def scrub(value: t.Any, needles: t.Collection[str]) -> t.Any:
    """Return ``value`` (JSON) with personal fields and any string mentioning a needle redacted."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if str(key).lower() in PII_KEYS and item not in (None, "") else scrub(item, needles))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, needles) for item in value]
    if isinstance(value, str):
        lowered = value.lower()
        if any(needle and needle in lowered for needle in needles):
            return REDACTED
    return value


def redact_customer(shop: Shop, shopify_customer_id: int | None, *, email: str | None = None,
                    phone: str | None = None, orders: t.Sequence[int | str] = ()) -> Customer | None:
    """Erase a customer's personal data in this shop; keep anonymous ledger rows; return the customer, if known."""
    customer = None
    if shopify_customer_id is not None:
        customer = db.session.execute(
            select(Customer).where(Customer.shop_id == shop.id, Customer.shopify_customer_id == shopify_customer_id)
        ).scalar_one_or_none()
    emails = _email_identifiers(shop, email) | _email_identifiers(shop, customer.email if customer else None)
    phones = _phone_identifiers(shop, phone) | _phone_identifiers(shop, customer.phone if customer else None)
    if customer is not None and customer.email_canonical:
        emails.add(customer.email_canonical.lower())
    identifiers = emails | phones
    needles = {needle.lower() for needle in identifiers if len(needle) >= 5} | _name_needles(customer)

    if customer is not None:
        customer.email = None
        customer.email_canonical = None
        customer.phone = None
        customer.first_name = None
        customer.last_name = None
        customer.address_hash = None
        customer.redacted_at = customer.redacted_at or utcnow()

    # Invitations naming them as the invitee: the identifier and name go; the row stays for the advocate's counts.
    invitee: list[ColumnElement[bool]] = [Invitation.identifier.in_(sorted(identifiers))] if identifiers else []
    if customer is not None:
        invitee.append(Invitation.friend_id == customer.id)
    if invitee:
        for invitation in db.session.execute(
            select(Invitation).where(Invitation.shop_id == shop.id, or_(*invitee))
        ).scalars():
            invitation.identifier = f"redacted:{invitation.id}"
            invitation.name = None
    if customer is not None:
        # Invitations they sent keep the friends' identifiers (the friends' data), but not names they typed.
        db.session.execute(
            update(Invitation)
            .where(Invitation.shop_id == shop.id, Invitation.advocate_id == customer.id)
            .values(name=None)
            .execution_options(synchronize_session="fetch")
        )

    # Evidence JSON of referrals and attribution decisions that involve them or the orders to redact.
    order_ids = _order_ids(orders)
    _scrub_evidence(Referral, shop, customer, order_ids, needles)
    _scrub_evidence(OrderAttribution, shop, customer, order_ids, needles)
    if customer is not None and needles:
        _scrub_staff_notes(shop, customer, needles)
    if customer is not None:
        _retire_codes(shop, customer)

    if shopify_customer_id is not None:
        db.session.execute(
            delete(DataExport).where(DataExport.shop_id == shop.id,
                                     DataExport.shopify_customer_id == shopify_customer_id)
            .execution_options(synchronize_session="fetch")
        )
    db.session.flush()
    return customer


def _retire_codes(shop: Shop, customer: Customer) -> None:
    """Retire the erased customer's referral codes; those that are live Shopify discounts are taken down.

    An erased advocate earns nothing more (``ADVOCATE_ERASED``), so a code left live would keep handing
    friends a discount in their name, and the link would keep landing on it.
    """
    from referral_plugin.jobs import schedule_code_discount_sync

    codes = db.session.execute(
        select(ReferralCode).where(ReferralCode.shop_id == shop.id, ReferralCode.customer_id == customer.id,
                                   ReferralCode.retired_at.is_(None))
    ).scalars()
    for code in codes:
        code.retired_at = utcnow()
        if code.discount_node_id:
            schedule_code_discount_sync(code.id)


def _name_needles(customer: Customer | None) -> set[str]:
    """Return the customer's name as text to find in free-text notes: the full name and its longer parts."""
    if customer is None:
        return set()
    parts = [part.strip().lower() for part in (customer.first_name, customer.last_name) if part and part.strip()]
    found = {part for part in parts if len(part) >= 4}
    if len(parts) == 2:
        found.add(" ".join(parts))
    return found


def _scrub_staff_notes(shop: Shop, customer: Customer, needles: set[str]) -> None:
    """Redact staff-typed text that names the customer: ledger notes and the audit events about them.

    The points and amounts stay (the shop's totals must not move); only the words go.
    """
    for entry in db.session.execute(
        select(LedgerEntry).where(LedgerEntry.shop_id == shop.id, LedgerEntry.customer_id == customer.id,
                                  LedgerEntry.note.is_not(None))
    ).scalars():
        entry.note = scrub(entry.note, needles)
    referral_ids = select(Referral.id).where(
        Referral.shop_id == shop.id, or_(Referral.advocate_id == customer.id, Referral.friend_id == customer.id))
    subjects = or_(
        (AuditEvent.subject_type == "customer") & (AuditEvent.subject_id == customer.id),
        (AuditEvent.subject_type == "referral") & AuditEvent.subject_id.in_(referral_ids),
    )
    for event in db.session.execute(
        select(AuditEvent).where(AuditEvent.shop_id == shop.id, subjects, AuditEvent.details.is_not(None))
    ).scalars():
        event.details = scrub(event.details, needles)


def _scrub_evidence(model: type[Referral] | type[OrderAttribution], shop: Shop, customer: Customer | None,
                    order_ids: list[int], needles: set[str]) -> None:
    """Redact the evidence JSON of ``model`` rows involving the customer or one of the orders."""
    conditions: list[ColumnElement[bool]] = []
    if customer is not None:
        conditions += [model.advocate_id == customer.id, model.friend_id == customer.id]
    if order_ids:
        conditions.append(model.shopify_order_id.in_(order_ids))
    if not conditions:
        return
    rows = t.cast(t.Iterable[Referral | OrderAttribution], db.session.execute(
        select(model).where(model.shop_id == shop.id, or_(*conditions))
    ).scalars())
    for row in rows:
        if row.evidence:
            row.evidence = scrub(row.evidence, needles)


def handle_customers_redact(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Handle ``customers/redact``: erase the customer's personal data (and that of ``orders_to_redact``)."""
    if shop is None:
        return  # nothing is held for a shop we do not know
    if _for_another_shop(payload, delivery):
        return
    orders = payload.get("orders_to_redact") or []
    redact_customer(
        shop,
        _customer_id(payload),
        email=_payload_contact(payload, "email"),
        phone=_payload_contact(payload, "phone"),
        orders=_order_ids(orders) if isinstance(orders, list) else [],
    )


# ---------------------------------------------------------------------------------------------------------
# customers/data_request


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def _points_balance(customer: Customer) -> int:
    from referral_plugin.referrals.ledger import points_balance

    return int(points_balance(customer))


def _shopify_id(customer_id: int | None) -> int | None:
    if customer_id is None:
        return None
    return db.session.execute(select(Customer.shopify_customer_id).where(Customer.id == customer_id)).scalar()


def export_customer(shop: Shop, shopify_customer_id: int, orders: t.Sequence[t.Any] = ()) -> dict[str, t.Any]:
    """Return everything held on one customer of ``shop`` (and on ``orders``) as JSON-ready data."""
    customer = db.session.execute(
        select(Customer).where(Customer.shop_id == shop.id, Customer.shopify_customer_id == shopify_customer_id)
    ).scalar_one_or_none()
    export: dict[str, t.Any] = {
        "shop": shop.shopify_domain,
        "shopify_customer_id": shopify_customer_id,
        "generated_at": utcnow().isoformat(),
        "customer": None,
        "referral_codes": [],
        "invitations_sent": [],
        "invitations_received": [],
        "referrals_as_advocate": [],
        "referrals_as_friend": [],
        "order_attributions": [],
        "ledger": [],
        "points_balance": 0,
    }
    order_ids = _order_ids(orders)
    attribution_filter: list[ColumnElement[bool]] = [OrderAttribution.shopify_order_id.in_(order_ids)] \
        if order_ids else []
    if customer is not None:
        attribution_filter += [OrderAttribution.friend_id == customer.id, OrderAttribution.advocate_id == customer.id]
    if attribution_filter:
        attributions = db.session.execute(
            select(OrderAttribution).where(OrderAttribution.shop_id == shop.id, or_(*attribution_filter))
            .order_by(OrderAttribution.id)).scalars()
        export["order_attributions"] = [_attribution(a) for a in attributions]
    if customer is None:
        return export
    export["customer"] = {
        "shopify_customer_id": customer.shopify_customer_id,
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "has_address_fingerprint": customer.address_hash is not None,
        "shopify_created_at": _iso(customer.shopify_created_at),
        "created_at": _iso(customer.created_at),
        "redacted_at": _iso(customer.redacted_at),
    }
    campaigns = {c.id: c.token for c in db.session.execute(
        select(Campaign).where(Campaign.shop_id == shop.id)).scalars()}
    codes = list(db.session.execute(
        select(ReferralCode).where(ReferralCode.shop_id == shop.id, ReferralCode.customer_id == customer.id)
        .order_by(ReferralCode.id)).scalars())
    for code in codes:
        clicks = db.session.execute(
            select(func.count(Click.id)).where(Click.shop_id == shop.id, Click.referral_code_id == code.id)
        ).scalar_one()
        export["referral_codes"].append({
            "code": code.code, "campaign": campaigns.get(code.campaign_id), "created_at": _iso(code.created_at),
            "retired_at": _iso(code.retired_at), "clicks": int(clicks),
        })
    sent = db.session.execute(
        select(Invitation).where(Invitation.shop_id == shop.id, Invitation.advocate_id == customer.id)
        .order_by(Invitation.id)).scalars()
    export["invitations_sent"] = [_invitation(i, campaigns) for i in sent]
    identifiers = _email_identifiers(shop, customer.email) | _phone_identifiers(shop, customer.phone)
    received_filter = [Invitation.friend_id == customer.id]
    if identifiers:
        received_filter.append(Invitation.identifier.in_(sorted(identifiers)))
    received = db.session.execute(
        select(Invitation).where(Invitation.shop_id == shop.id, or_(*received_filter)).order_by(Invitation.id)
    ).scalars()
    export["invitations_received"] = [
        {**_invitation(i, campaigns), "advocate_shopify_customer_id": _shopify_id(i.advocate_id)} for i in received
    ]
    for key, column, other in (("referrals_as_advocate", Referral.advocate_id, "friend"),
                               ("referrals_as_friend", Referral.friend_id, "advocate")):
        rows = db.session.execute(
            select(Referral).where(Referral.shop_id == shop.id, column == customer.id).order_by(Referral.id)
        ).scalars()
        export[key] = [_referral(r, campaigns, other) for r in rows]
    entries = db.session.execute(
        select(LedgerEntry).where(LedgerEntry.shop_id == shop.id, LedgerEntry.customer_id == customer.id)
        .order_by(LedgerEntry.id)).scalars()
    export["ledger"] = [_ledger(e) for e in entries]
    export["points_balance"] = _points_balance(customer)
    return export


def _invitation(invitation: Invitation, campaigns: t.Mapping[int, str]) -> dict[str, t.Any]:
    return {
        "campaign": campaigns.get(invitation.campaign_id), "channel": invitation.channel,
        "identifier": invitation.identifier, "name": invitation.name, "status": invitation.status,
        "source": invitation.source, "invited_at": _iso(invitation.invited_at),
        "joined_at": _iso(invitation.joined_at), "purchased_at": _iso(invitation.purchased_at),
        "email_sent_at": _iso(invitation.email_sent_at),
    }


def _referral(referral: Referral, campaigns: t.Mapping[int, str], other: str) -> dict[str, t.Any]:
    other_id = referral.friend_id if other == "friend" else referral.advocate_id
    return {
        "campaign": campaigns.get(referral.campaign_id), "status": referral.status, "reason": referral.reason,
        "source": referral.source, f"{other}_shopify_customer_id": _shopify_id(other_id),
        "shopify_order_id": referral.shopify_order_id, "order_name": referral.order_name,
        "order_subtotal": _money(referral.order_subtotal), "currency": referral.currency,
        "created_at": _iso(referral.created_at), "decided_at": _iso(referral.decided_at),
        "hold_until": _iso(referral.hold_until),
    }


def _attribution(row: OrderAttribution) -> dict[str, t.Any]:
    return {
        "shopify_order_id": row.shopify_order_id, "order_name": row.order_name, "decision": row.decision,
        "reason": row.reason, "source": row.source,
        # Evidence can name the other party (e.g. the advocate in a self-referral check): personal fields go.
        "evidence": scrub(row.evidence, ()) if row.evidence else None, "subtotal": _money(row.subtotal),
        "total": _money(row.total), "currency": row.currency, "test": row.test, "created_at": _iso(row.created_at),
    }


def _ledger(entry: LedgerEntry) -> dict[str, t.Any]:
    return {
        "id": entry.id, "type": entry.entry_type, "side": entry.side, "reward_kind": entry.reward_kind,
        "points": entry.points, "amount": _money(entry.amount), "currency": entry.currency,
        "discount_code": entry.discount_code, "reason": entry.reason, "note": entry.note,
        "shopify_order_id": entry.shopify_order_id, "available_at": _iso(entry.available_at),
        "created_at": _iso(entry.created_at),
    }


def record_data_request(shop: Shop, shopify_customer_id: int, data_request_id: str,
                        orders_requested: t.Sequence[t.Any] = ()) -> DataExport:
    """Store the export answering one data request; a repeat of the request returns the stored one."""
    existing = db.session.execute(
        select(DataExport).where(DataExport.shop_id == shop.id, DataExport.data_request_id == data_request_id)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    payload = export_customer(shop, shopify_customer_id, orders_requested)
    payload["data_request_id"] = data_request_id
    payload["orders_requested"] = list(orders_requested)
    export = DataExport(shop_id=shop.id, shopify_customer_id=shopify_customer_id,
                        data_request_id=data_request_id, payload=payload)
    try:
        with db.session.begin_nested():
            db.session.add(export)
    except IntegrityError:
        # A concurrent delivery of the same request stored it first.
        return db.session.execute(
            select(DataExport).where(DataExport.shop_id == shop.id, DataExport.data_request_id == data_request_id)
        ).scalar_one()
    return export


def handle_customers_data_request(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Handle ``customers/data_request``: store the customer's export once per data request id."""
    if shop is None or _for_another_shop(payload, delivery):
        return
    customer_id = _customer_id(payload)
    if customer_id is None:
        return
    request = payload.get("data_request")
    request_id = request.get("id") if isinstance(request, dict) else None
    data_request_id = str(request_id) if request_id not in (None, "") else f"webhook:{delivery.webhook_id}"
    orders = payload.get("orders_requested")
    record_data_request(shop, customer_id, data_request_id[:64], orders if isinstance(orders, list) else [])


# ---------------------------------------------------------------------------------------------------------
# shop/redact


def delete_shop_data(domain: str) -> int:
    """Delete every row of the shop ``domain`` in every table; return how many rows went."""
    shop_id = db.session.execute(select(Shop.id).where(Shop.shopify_domain == domain)).scalar_one_or_none()
    deleted = 0
    # Children before parents; every table with a shop id or a shop domain is covered, including new ones.
    for table in reversed(Base.metadata.sorted_tables):
        if table.name == Shop.__tablename__:
            continue
        deleted += _delete_from(table, shop_id, domain)
    if shop_id is not None:
        deleted += _rowcount(db.session.execute(delete(Shop).where(Shop.id == shop_id)))
    db.session.expire_all()
    return deleted


def _delete_from(table: Table, shop_id: int | None, domain: str) -> int:
    conditions = []
    if shop_id is not None and "shop_id" in table.c:
        conditions.append(table.c.shop_id == shop_id)
    if "shop_domain" in table.c:
        conditions.append(table.c.shop_domain == domain)
    if not conditions:
        return 0
    if table.name == LedgerEntry.__tablename__ and shop_id is not None:
        # Rows point at rows of the same shop; unlink first so no database checks order within the delete.
        db.session.execute(update(table).where(table.c.shop_id == shop_id).values(related_entry_id=None))
    return _rowcount(db.session.execute(delete(table).where(or_(*conditions))))


def _rowcount(result: t.Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def handle_shop_redact(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Handle ``shop/redact``: delete everything held for the shop, unless it fired before the latest install.

    Shopify sends it 48 hours after an uninstall and retries for hours; one that fired before the merchant
    reinstalled is about the old installation and must not wipe the live shop (its token included).
    """
    if (shop is not None and shop.uninstalled_at is None and shop.installed_at is not None
            and delivery.triggered_at is not None and delivery.triggered_at < shop.installed_at):
        logger.info("ignoring shop/redact for %s triggered before the latest install", shop.shopify_domain)
        return
    if _for_another_shop(payload, delivery):
        return
    delete_shop_data(delivery.shop_domain)


# ---------------------------------------------------------------------------------------------------------
# CLI


@click.group("gdpr")
def gdpr_group() -> None:
    """Privacy tools: export what is held on a customer, and the data requests Shopify sent."""


def _cli_shop(shop_domain: str) -> Shop:
    """Return the shop a command names; a usage error when the domain is bad or no such shop is known."""
    try:
        domain = require_shop_domain(shop_domain)
    except InvalidShopDomain as exc:
        raise click.BadParameter(exc.message, param_hint="SHOP_DOMAIN") from None
    shop = db.session.execute(select(Shop).where(Shop.shopify_domain == domain)).scalar_one_or_none()
    if shop is None:
        raise click.ClickException(str(NotFound(f"no shop {domain}").message))
    return shop


@gdpr_group.command("export")
@click.argument("shop_domain")
@click.argument("customer_id", type=int)
@with_appcontext
def export_command(shop_domain: str, customer_id: int) -> None:
    """Print as JSON everything held on CUSTOMER_ID (a Shopify customer id) of SHOP_DOMAIN."""
    shop = _cli_shop(shop_domain)
    click.echo(json.dumps(export_customer(shop, customer_id), indent=2, sort_keys=True))


@gdpr_group.command("requests")
@click.argument("shop_domain")
@click.option("--id", "request_id", default=None, help="Print the stored export of this data request as JSON.")
@with_appcontext
def requests_command(shop_domain: str, request_id: str | None) -> None:
    """List the customers/data_request exports stored for SHOP_DOMAIN, or print one to hand to the merchant."""
    shop = _cli_shop(shop_domain)
    query = select(DataExport).where(DataExport.shop_id == shop.id).order_by(DataExport.created_at, DataExport.id)
    if request_id is not None:
        export = db.session.execute(query.where(DataExport.data_request_id == request_id)).scalars().first()
        if export is None:
            raise click.ClickException(f"no stored data request {request_id!r} for {shop.shopify_domain}")
        click.echo(json.dumps(export.payload, indent=2, sort_keys=True))
        return
    exports = db.session.execute(query).scalars().all()
    if not exports:
        click.echo(f"No data requests stored for {shop.shopify_domain}.")
    for export in exports:
        click.echo(f"{export.data_request_id}\tcustomer {export.shopify_customer_id}\t"
                   f"received {export.created_at.isoformat(timespec='seconds')}")


def init_app(app: Flask) -> None:
    """Add the ``gdpr`` commands."""
    app.cli.add_command(gdpr_group)
