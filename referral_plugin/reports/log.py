"""The referral log and a referral's full story: who, how it was attributed, what was decided and paid."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from decimal import Decimal

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased

from referral_plugin.errors import NotFound
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import describe_reward
from referral_plugin.referrals.codes import canonical_code
from referral_plugin.reports.summary import mask_email
from referral_plugin.reports.summary import parse_date
from referral_plugin.reports.summary import shop_zone
from referral_plugin.reports.summary import utc_bounds

PAGE_SIZE = 25
Advocate = aliased(Customer, name="advocate")
Friend = aliased(Customer, name="friend")

#: Plain words for each status, for merchants.
STATUS_LABELS: dict[str, str] = {
    ReferralStatus.PENDING: "Waiting for first order",
    ReferralStatus.HELD: "Held",
    ReferralStatus.REWARDED: "Rewarded",
    ReferralStatus.REJECTED: "Not rewarded",
    ReferralStatus.REVERSED: "Reversed",
    ReferralStatus.PARTIALLY_REVERSED: "Partly reversed",
}

#: Where a friend was tied to an advocate, in plain words.
SOURCE_LABELS: dict[str, str] = {
    "discount_code": "Used the code at checkout",
    "cart_attribute": "Came through the invite link",
    "landing_site": "Landed from the invite link",
    "invitation": "Invited by email or SMS",
    "customer_note": "Wrote the code in the order note",
    "pending_referral": "Signed up through a referral before ordering",
    "link": "Came through the invite link",
    "email": "Invited email matched",
    "manual": "Linked by hand",
}


#: Audit actions in the merchant's words (the stable vocabulary the services write).
AUDIT_ACTIONS: dict[str, str] = {
    "campaign.create": "Campaign created",
    "campaign.update": "Campaign changed",
    "settings.update": "Settings changed",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "ledger.adjust": "Points adjusted by hand",
    "referral.approve": "Held referral approved",
    "referral.reject": "Held referral rejected",
    "order.refund_before_paid": "Order refunded before it was paid",
    "discount_issue_failed": "Discount code could not be created in Shopify",
    "discount_deactivated": "Discount code turned off in Shopify",
    "discount_deactivate_failed": "Discount code could not be turned off in Shopify",
    "code_discount_sync_failed": "Referral code could not be updated in Shopify",
    "invitation_email_refused": "Invitation email refused by the mail server",
    "app_uninstalled": "App uninstalled",
}
AUDIT_SUBJECTS: dict[str, str] = {
    "campaign": "campaign", "shop": "shop", "api_key": "API key", "customer": "customer", "referral": "referral",
    "order": "order", "ledger_entry": "ledger row", "invitation": "invitation", "referral_code": "referral code",
}


#: Campaign and settings fields as the dashboard's forms label them (for change history lines).
FIELD_LABELS: dict[str, str] = {
    "name": "Name", "status": "Status", "advocate_reward_kind": "Advocate reward kind",
    "advocate_reward_value": "Advocate reward", "friend_reward_kind": "Friend reward kind",
    "friend_reward_value": "Friend reward", "min_order_subtotal": "Minimum order subtotal",
    "new_customers_only": "New customers only", "advocate_cap": "Most rewards per advocate",
    "hold_days": "Hold days", "starts_at": "Starts", "ends_at": "Ends", "reward_test_orders": "Reward test orders",
    "phone_region": "Phone region", "point_value": "Value of one point",
}


def describe_field(name: str) -> str:
    """Return a changed field's label; an unknown one is spelled out from its name."""
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def describe_audit_action(action: str) -> str:
    """Return an audit action in plain words; an unknown one is spelled out from its name."""
    return AUDIT_ACTIONS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()


def describe_audit_actor(actor: str | None) -> str:
    """Return who acted, as a merchant reads it: a staff user, Shopify, or the app itself."""
    kind, _, name = (actor or "").partition(":")
    if kind == "shopify-user":
        return f"staff user {name}" if name and name != "unknown" else "a staff user"
    if kind == "system":
        return f"the app ({name})" if name else "the app"
    if kind == "shopify" and not name:
        return "Shopify"
    return actor or "unknown"


def describe_audit_subject(subject_type: str | None, subject_id: int | None) -> str:
    """Return what an audit event is about (``campaign #3``), or an empty string."""
    if not subject_type:
        return ""
    words = AUDIT_SUBJECTS.get(subject_type, subject_type.replace("_", " "))
    return f"{words} #{subject_id}" if subject_id is not None else words


def describe_reason(code: str | None) -> str:
    """Return the reason code in plain words (the engine's vocabulary), or an empty string."""
    if not code:
        return ""
    try:
        from referral_plugin.referrals.reasons import describe
    except ImportError:  # pragma: no cover - the engine ships the vocabulary
        return code
    return describe(code)


@dataclasses.dataclass(frozen=True)
class LogFilters:
    """What the merchant asked the log for."""

    status: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    query: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, args: t.Mapping[str, str]) -> LogFilters:
        """Read filters from query-string values; bad values raise ``ValidationError``."""
        status = (args.get("status") or "").strip() or None
        if status is not None and status not in STATUS_LABELS:
            raise ValidationError("Unknown status.", code="INVALID_STATUS", field="status")
        dates: dict[str, dt.date | None] = {}
        for field in ("start", "end"):
            raw = (args.get(field) or "").strip()
            dates[field] = parse_date(raw, field) if raw else None
        if dates["start"] and dates["end"] and dates["start"] > dates["end"]:
            # Swapped dates matched nothing, silently ("0 referrals"); say so instead.
            raise ValidationError("The start date must not be after the end date.", code="INVALID_RANGE",
                                  field="start")
        try:
            page = max(1, int(args.get("page") or 1))
        except ValueError:
            raise ValidationError("page must be a number.", code="INVALID_PAGE", field="page") from None
        # A NUL cannot be searched for (PostgreSQL refuses it in a query); drop it like surrounding spaces.
        query = (args.get("q") or "").replace("\x00", "").strip()[:320] or None
        return cls(status=status, start=dates["start"], end=dates["end"], query=query, page=page)


@dataclasses.dataclass
class LogRow:
    """One line of the referral log."""

    referral: Referral
    advocate_name: str
    advocate_email: str | None
    friend_email: str | None
    code: str | None
    status_label: str
    reason_text: str
    source_label: str
    points: int = 0
    advocate_points: int = 0
    friend_points: int = 0
    discounts: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class LogPage:
    """A page of the log."""

    rows: list[LogRow]
    total: int
    page: int
    pages: int


def _bounds(shop: Shop, filters: LogFilters) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC bounds of the filter's shop days (open ends reach far)."""
    return utc_bounds(shop_zone(shop), filters.start or dt.date(1970, 1, 2), filters.end or dt.date(9000, 12, 30))


def _filtered(shop: Shop, filters: LogFilters, *, by_date: bool = False) -> Select[Referral, Customer, Customer, str]:
    query = (
        select(Referral, Advocate, Friend, ReferralCode.code)
        .join(Advocate, Advocate.id == Referral.advocate_id)
        .outerjoin(Friend, Friend.id == Referral.friend_id)
        .outerjoin(ReferralCode, ReferralCode.id == Referral.referral_code_id)
        .where(Referral.shop_id == shop.id)
    )
    search = _search(shop, filters.query, by_date=by_date) if filters.query else None
    return t.cast("Select[Referral, Customer, Customer, str]", _narrowed(query, shop, filters, search))


def _narrowed(query: t.Any, shop: Shop, filters: LogFilters, search: ColumnElement[bool] | None) -> t.Any:
    """Add the status, date and search conditions to ``query``."""
    if filters.status:
        query = query.where(Referral.status == filters.status)
    if filters.start or filters.end:
        low, high = _bounds(shop, filters)
        query = query.where(Referral.created_at >= low, Referral.created_at < high)
    if search is not None:
        query = query.where(search)
    return query


def _count_parts(shop: Shop, filters: LogFilters) -> list[tuple[int, ColumnElement[bool] | None]]:
    """Return the search as signed conditions whose counts add up to the matches' count.

    An email matches as advocate or as friend: count each and take away those matching both, three
    index range counts instead of one union of row ids (slow on SQLite for a big advocate).
    """
    if not filters.query:
        return [(1, None)]
    needle = filters.query.strip()
    if "@" not in needle:
        return [(1, _search(shop, needle))]
    people = _people(shop, needle)
    if not people:
        return [(1, false())]
    advocate, friend = Referral.advocate_id.in_(people), Referral.friend_id.in_(people)
    return [(1, advocate), (1, friend), (-1, and_(advocate, friend))]


def _people(shop: Shop, needle: str) -> list[int]:
    """Return the ids of the shop's customers with this email (exact or canonical)."""
    email = needle.lower()
    return list(db.session.scalars(select(Customer.id).where(
        Customer.shop_id == shop.id, or_(Customer.email == email, Customer.email_canonical == email))))


def _search(shop: Shop, raw: str, *, by_date: bool = False) -> ColumnElement[bool]:
    """Return the condition for a search: an email, an order name (``#1001``) or a referral code.

    Emails and codes are looked up first through their indexes, then referrals by advocate or friend
    id (indexed too), so a search stays fast on a shop with a million referrals. ``by_date`` hides those
    columns from the planner ("+ 0"), so it walks the date index instead (many matches).
    """
    needle = raw.strip()
    advocate_id: t.Any = Referral.advocate_id + 0 if by_date else Referral.advocate_id
    friend_id: t.Any = Referral.friend_id + 0 if by_date else Referral.friend_id
    code_id: t.Any = Referral.referral_code_id + 0 if by_date else Referral.referral_code_id
    if "@" in needle:
        people = _people(shop, needle)
        return or_(advocate_id.in_(people), friend_id.in_(people)) if people else false()
    if needle.startswith("#") or needle.isdigit():
        return Referral.order_name == f"#{needle.lstrip('#')}"
    code = canonical_code(needle)
    found = db.session.execute(select(ReferralCode.id, ReferralCode.customer_id).where(
        ReferralCode.shop_id == shop.id, ReferralCode.code == code)).all()
    if not found:
        return false()
    return and_(advocate_id.in_([row[1] for row in found]), code_id.in_([row[0] for row in found]))


def list_referrals(shop: Shop, filters: LogFilters) -> LogPage:
    """Return one page of the shop's referrals, newest first, with their rewards."""
    # The joins change no count (every referral has its advocate): count referrals alone, from an index.
    total = sum(sign * db.session.execute(
        _narrowed(select(func.count(Referral.id)).where(Referral.shop_id == shop.id), shop, filters, part)
    ).scalar_one() for sign, part in _count_parts(shop, filters))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(filters.page, pages)
    # Many matches fill a page after a short walk down the dates; few are read by id and sorted. Either way
    # the choice is made here, from the count, not left to statistics (an advocate with half a million
    # referrals made SQLite read and sort them all for 25 rows).
    base = _filtered(shop, filters, by_date=total > DENSE_MATCHES)
    results = db.session.execute(
        base.order_by(Referral.created_at.desc(), Referral.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    rows = [_row(referral, advocate, friend, code) for referral, advocate, friend, code in results]
    _attach_rewards(shop, rows)
    return LogPage(rows=rows, total=total, page=page, pages=pages)


#: Past this many matches a search page walks the shop's referrals by date instead of reading the matches.
DENSE_MATCHES = 2000


def _row(referral: Referral, advocate: Customer, friend: Customer | None, code: str | None) -> LogRow:
    return LogRow(
        referral=referral,
        advocate_name=advocate.display_name if not advocate.redacted_at else "Redacted customer",
        advocate_email=mask_email(advocate.email),
        friend_email=mask_email(friend.email) if friend else None,
        code=code,
        status_label=STATUS_LABELS.get(referral.status, referral.status),
        reason_text=describe_reason(referral.reason),
        source_label=SOURCE_LABELS.get(referral.source, referral.source.replace("_", " ")),
    )


def _attach_rewards(shop: Shop, rows: list[LogRow]) -> None:
    """Fill each row's net points and discount codes in one query for the page."""
    by_id = {row.referral.id: row for row in rows}
    if not by_id:
        return
    for referral_id, entry_type, side, points, code in db.session.execute(
        select(LedgerEntry.referral_id, LedgerEntry.entry_type, LedgerEntry.side, LedgerEntry.points,
               LedgerEntry.discount_code)
        .where(LedgerEntry.shop_id == shop.id, LedgerEntry.referral_id.in_(by_id))
    ):
        row = by_id[t.cast(int, referral_id)]
        if entry_type in (EntryType.GRANT, EntryType.RELEASE, EntryType.REVERSAL):
            row.points += int(points or 0)
            if side == "friend":
                row.friend_points += int(points or 0)
            else:
                row.advocate_points += int(points or 0)
        if code and code not in row.discounts:
            row.discounts.append(code)


@dataclasses.dataclass
class ReferralStory:
    """Everything known about one referral."""

    row: LogRow
    advocate: Customer
    friend: Customer | None
    attributions: list[OrderAttribution]
    ledger: list[LedgerEntry]
    audit: list[AuditEvent]


def referral_story(shop: Shop, referral_id: int) -> ReferralStory:
    """Return one referral of the shop with its attributions, ledger history and audit trail.

    :raise NotFound: when the shop has no such referral.
    """
    found = db.session.execute(
        _filtered(shop, LogFilters()).where(Referral.id == referral_id)
    ).first()
    if found is None:
        raise NotFound("No such referral in this shop.")
    referral, advocate, friend, code = found
    row = _row(referral, advocate, friend, code)
    _attach_rewards(shop, [row])
    attributions = list(db.session.scalars(
        select(OrderAttribution)
        .where(OrderAttribution.shop_id == shop.id, OrderAttribution.referral_id == referral.id)
        .order_by(OrderAttribution.created_at, OrderAttribution.id)
    ))
    ledger = list(db.session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.shop_id == shop.id, LedgerEntry.referral_id == referral.id)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    ))
    audit = list(db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.shop_id == shop.id, AuditEvent.subject_type == "referral",
               AuditEvent.subject_id == referral.id)
        .order_by(AuditEvent.created_at, AuditEvent.id)
    ))
    return ReferralStory(row=row, advocate=advocate, friend=friend, attributions=attributions, ledger=ledger,
                         audit=audit)


@dataclasses.dataclass
class ReviewItem:
    """A held referral waiting for the merchant, with its evidence."""

    row: LogRow
    evidence: dict[str, t.Any]
    attribution: OrderAttribution | None
    held_points: int
    held_amount: Decimal
    #: What is on hold, side by side and kind by kind: ``[("advocate", "100 points"), ("friend", "10% off")]``.
    held: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _held_words(shop: Shop, holds: t.Iterable[tuple[str, str, int, Decimal]]) -> list[tuple[str, str]]:
    """Describe held rewards per side and kind; a percentage and a money amount are never added together."""
    totals: dict[tuple[str, str], Decimal] = {}
    for side, kind, points, amount in holds:
        value = Decimal(points) if kind == RewardKind.POINTS else Decimal(amount)
        totals[(side, kind)] = totals.get((side, kind), Decimal(0)) + value
    order = {"advocate": 0, "friend": 1}
    return [(side, describe_reward(kind, value, shop.currency))
            for (side, kind), value in sorted(totals.items(), key=lambda item: (order.get(item[0][0], 2), item[0]))
            if value]


def review_queue(shop: Shop, limit: int = 200) -> list[ReviewItem]:
    """Return the shop's held referrals, oldest first (the ones nearest auto-release on top)."""
    results = db.session.execute(
        _filtered(shop, LogFilters(status=ReferralStatus.HELD))
        .order_by(Referral.hold_until.is_(None), Referral.hold_until, Referral.created_at, Referral.id)
        .limit(limit)
    ).all()
    rows = [_row(referral, advocate, friend, code) for referral, advocate, friend, code in results]
    ids = [row.referral.id for row in rows]
    attributions: dict[int, OrderAttribution] = {}
    holds: dict[int, tuple[int, Decimal]] = {}
    held_by_kind: dict[int, list[tuple[str, str, int, Decimal]]] = {}
    if ids:
        for found in db.session.scalars(
            select(OrderAttribution).where(OrderAttribution.shop_id == shop.id, OrderAttribution.referral_id.in_(ids))
        ):
            if found.referral_id is not None:
                attributions[found.referral_id] = found
        for referral_id, side, kind, points, amount in db.session.execute(
            select(LedgerEntry.referral_id, LedgerEntry.side, LedgerEntry.reward_kind, func.sum(LedgerEntry.points),
                   func.sum(LedgerEntry.amount))
            # A refund during the hold voids part of it: net the VOID rows against the holds.
            .where(LedgerEntry.shop_id == shop.id, LedgerEntry.referral_id.in_(ids),
                   LedgerEntry.entry_type.in_((EntryType.HOLD.value, EntryType.VOID.value)))
            .group_by(LedgerEntry.referral_id, LedgerEntry.side, LedgerEntry.reward_kind)
        ):
            key = t.cast(int, referral_id)
            total_points, total_amount = holds.get(key, (0, Decimal(0)))
            holds[key] = (total_points + int(points or 0), total_amount + Decimal(amount or 0))
            held_by_kind.setdefault(key, []).append((str(side), str(kind), int(points or 0), Decimal(amount or 0)))
    items = []
    for row in rows:
        matched = attributions.get(row.referral.id)
        evidence = dict(row.referral.evidence or {})
        if matched is not None and matched.evidence:
            evidence = {**matched.evidence, **evidence}
        points, amount = holds.get(row.referral.id, (0, Decimal(0)))
        items.append(ReviewItem(row=row, evidence=evidence, attribution=matched, held_points=points,
                                held_amount=amount, held=_held_words(shop, held_by_kind.get(row.referral.id, []))))
    return items


def held_referrals(shop: Shop, ids: t.Iterable[int]) -> list[Referral]:
    """Return the shop's held referrals among ``ids`` (others' and decided ones are left out)."""
    # Ids beyond 64 bits name no row; leaving them out keeps the database from overflowing on them.
    wanted = {number for number in (int(i) for i in ids) if 0 < number < 2**63}
    if not wanted:
        return []
    return list(db.session.scalars(
        select(Referral).where(Referral.shop_id == shop.id, Referral.id.in_(wanted),
                               Referral.status == ReferralStatus.HELD.value).order_by(Referral.id)
    ))
