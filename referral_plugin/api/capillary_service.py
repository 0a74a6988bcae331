"""Capillary-compatible referral services: "Refer Customer" (v1.1) and "Get Referrals (Lookup)" (v2).

The request and response shapes are the seeds' (``000`` and ``001``); everything is scoped to one
shop. Views parse the HTTP request, call one function here, and render what it returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t
from collections.abc import Mapping

import phonenumbers
from sqlalchemy import BigInteger
from sqlalchemy import ColumnElement
from sqlalchemy import Integer
from sqlalchemy import Numeric
from sqlalchemy import ScalarSelect
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import null
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.types import TypeEngine

from referral_plugin.errors import NotFound
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models.base import UTCDateTime
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import get_campaign
from referral_plugin.referrals.campaigns import has_ended
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.customers import find_customers
from referral_plugin.referrals.customers import mobile_digits
from referral_plugin.referrals.customers import normalize_phone
from referral_plugin.referrals.invitations import invite

# Per-item codes of "Refer Customer" (seed 000), plus 1222 from the lookup seed for a bad campaign token.
REFER_OK = (1000, "Refer was successful")
ITEM_OK = (1000, "Referrals are invited successfully")
INVALID_IDENTIFIER = (1701, "Invalid Identifier for the type")
CUSTOMER_NOT_FOUND = 1012
TYPE_NOT_SUPPORTED = (1206, "Referral type is not supported")
INVALID_CAMPAIGN = (1222, "Internal error with the referral system: the campaign token is invalid")
CAMPAIGN_ENDED = (1222, "Internal error with the referral system: the campaign has ended")

# Lookup error codes (seed 001).
LOOKUP_CUSTOMER_NOT_FOUND = "8015"
LOOKUP_INVALID_SOURCE = "8003"
LOOKUP_INVALID_IDENTIFIER = "8013"
LOOKUP_INVALID_CAMPAIGN = "1222"

#: Capillary's source systems, plus SHOPIFY; matched case-insensitively.
SOURCES = frozenset({
    "INSTORE", "ECOMMERCE", "WEBSITE", "MOBILE_APP", "WECHAT", "MARTJACK", "FACEBOOK", "WEB_ENGAGE", "LINE",
    "TMALL", "TAOBAO", "JD", "ALL", "SHOPIFY",
})
#: Identifier names the lookup accepts, most authoritative first: the first one that resolves to
#: exactly one customer is the "primary identifier" that decides the profile returned.
IDENTIFIER_PRIORITY = ("id", "externalId", "mobile", "email")
_IDENTIFIER_ALIASES = {
    "id": "id", "userid": "id", "customerid": "id",
    "externalid": "externalId", "external_id": "externalId",
    "mobile": "mobile", "phone": "mobile",
    "email": "email",
}
MAX_IDENTIFIERS = 10
#: Most customers, and most referrals per customer, in one "Refer Customer" request.
MAX_BATCH = 100
MAX_LIMIT = 100
_MAX_BIGINT = 2**63 - 1
_REFERRAL_TYPES = {"MOBILE": "mobile", "EMAIL": "email"}


def _status(success: bool, code: int, message: str) -> dict[str, t.Any]:
    return {"success": "true" if success else "false", "code": code, "message": message}


def _as_list(value: t.Any) -> list[t.Any]:
    """Be lenient: one object where a list is documented counts as a list of one."""
    if isinstance(value, list):
        return value
    if value is None:
        return []
    return [value]


def _text(value: t.Any) -> str | None:
    """Return a scalar as text (numbers too, as integrators send mobiles as numbers); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value).strip()
    return None


def _echo(value: t.Any) -> t.Any:
    """Return a value to echo back unchanged when it is a JSON scalar, else None."""
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def shopify_id(value: str) -> int | None:
    """Return a Shopify customer id from text, or None when it is not one (digits, fits in 64 bits)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > _MAX_BIGINT:
        return None
    return int(value)


#: Fields that name the referring customer in a ``customer`` element.
_ADVOCATE_FIELDS = ("mobile", "email", "external_id", "id")


def refer_customers(shop: Shop, body: t.Any, query: Mapping[str, str] | None = None) -> list[dict[str, t.Any]]:
    """Invite each customer's friends (``root.customer[]``) and return the per-customer results.

    Seed 000 also documents ``mobile``/``email`` query parameters naming the customer: they stand in
    for a ``customer`` element that names nobody itself.
    :raise ValidationError: when the body has no ``root.customer`` list.
    """
    root = body.get("root", body) if isinstance(body, Mapping) else None
    customers = root.get("customer") if isinstance(root, Mapping) else None
    if not isinstance(customers, (list, Mapping)):
        raise ValidationError("The body must be {\"root\": {\"customer\": [...]}}.", field="root.customer")
    items = _as_list(customers)
    if len(items) > MAX_BATCH:
        raise ValidationError(f"At most {MAX_BATCH} customers per request.", field="root.customer")
    for index, item in enumerate(items):  # refuse a malformed or oversized batch before anything is written
        referrals = item.get("referrals") if isinstance(item, Mapping) else None
        if referrals is not None and not isinstance(referrals, Mapping):
            # Not a per-item status: no documented code says "malformed", and a 1000 would drop the friends.
            raise ValidationError(f"root.customer[{index}].referrals must be an object with referral_type.",
                                  field=f"root.customer[{index}].referrals")
        if isinstance(referrals, Mapping):
            _referral_groups(referrals)
    named = {field: value for field in ("mobile", "email") if (value := (query or {}).get(field, "").strip())}
    return [_refer_one(shop, _named_by(item, named)) for item in items]


def _named_by(item: t.Any, named: Mapping[str, str]) -> t.Any:
    """Return ``item`` with the query's ``mobile``/``email`` when it names no customer itself."""
    if not named or not isinstance(item, Mapping) or any(_text(item.get(f)) for f in _ADVOCATE_FIELDS):
        return item
    return {**item, **named}


def _find_advocate(shop: Shop, item: Mapping[str, t.Any]) -> tuple[Customer | None, str]:
    """Return the referring customer by mobile, email or external id, and the identifier type tried."""
    tried = "mobile"
    for field, kind in zip(_ADVOCATE_FIELDS, ("mobile", "email", "id", "id"), strict=True):
        value = _text(item.get(field))
        if not value:
            continue
        tried = field
        if kind == "id" and shopify_id(value) is None:
            continue
        matches = [c for c in find_customers(shop, kind, value) if c.redacted_at is None]
        if matches:
            return matches[0], field
    # Only when no identifier matched exactly: the one customer of any country with that national number.
    mobile = _text(item.get("mobile"))
    if mobile and (guessed := _by_national_number(shop, mobile)):
        return guessed[0], "mobile"
    return None, tried


def _by_national_number(shop: Shop, value: str) -> list[Customer]:
    """Match a mobile sent without its country code against customers of any country.

    Capillary clients send ``7999836466`` for ``+917999836466``; when the shop's own region does not
    read it, the one customer whose national number it is (whatever their country) is meant.
    """
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+") or not 6 <= len(digits) <= 15:
        return []
    candidates = db.session.scalars(select(Customer).where(
        Customer.shop_id == shop.id, Customer.redacted_at.is_(None), Customer.phone.like(f"%{digits}")))
    matches = []
    for customer in candidates:
        try:
            number = phonenumbers.parse(customer.phone or "", None)
        except phonenumbers.NumberParseException:
            continue
        if str(number.national_number) == digits.lstrip("0"):
            matches.append(customer)
    return matches if len(matches) == 1 else []


def _in_advocates_country(advocate: Customer, identifier: str) -> str:
    """Read a friend's mobile written without a country code in the advocate's country, when that makes it valid.

    Friends are usually in the advocate's country; otherwise the engine reads it in the shop's region.
    """
    if identifier.startswith("+") or not advocate.phone:
        return identifier
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(advocate.phone, None))
    except phonenumbers.NumberParseException:
        return identifier
    if not region or region == phonenumbers.UNKNOWN_REGION:
        return identifier
    try:
        return normalize_phone(identifier, region)
    except ValidationError:
        return identifier


def _customer_echo(customer: Customer | None, item: Mapping[str, t.Any]) -> dict[str, t.Any]:
    if customer is None:
        return {
            "email": _echo(item.get("email")),
            "mobile": _echo(item.get("mobile")),
            "external_id": _echo(item.get("external_id")),
            "firstname": _echo(item.get("firstname")),
            "lastname": _echo(item.get("lastname")),
        }
    return {
        "email": customer.email,
        "mobile": mobile_digits(customer.phone),
        "external_id": str(customer.shopify_customer_id) if customer.shopify_customer_id is not None else None,
        "firstname": customer.first_name or "",
        "lastname": customer.last_name or "",
    }


def _referral_echo(referral: t.Any, status: dict[str, t.Any]) -> dict[str, t.Any]:
    entry = referral if isinstance(referral, Mapping) else {}
    return {
        "id": _echo(entry.get("id", "")),
        "name": _echo(entry.get("name")),
        "identifier": _echo(entry.get("identifier")),
        "invited_on": _echo(entry.get("invited_on")),
        "status": status,
    }


def _referral_groups(referrals: Mapping[str, t.Any]) -> list[tuple[str, list[t.Any]]]:
    groups: list[tuple[str, list[t.Any]]] = []
    for group in _as_list(referrals.get("referral_type")):
        if not isinstance(group, Mapping):
            groups.append(("", []))
            continue
        kind = _text(group.get("type")) or ""
        groups.append((kind.upper(), _as_list(group.get("referral"))))
    if sum(len(items) for _, items in groups) > MAX_BATCH:
        raise ValidationError(f"At most {MAX_BATCH} referrals per customer.", field="referral")
    return groups


def _refer_one(shop: Shop, item: t.Any) -> dict[str, t.Any]:
    """Process one ``customer`` element: find the advocate, resolve the campaign, invite each friend."""
    item = item if isinstance(item, Mapping) else {}
    referrals_in = item.get("referrals")
    referrals: Mapping[str, t.Any] = referrals_in if isinstance(referrals_in, Mapping) else {}
    groups = _referral_groups(referrals)
    advocate, tried = _find_advocate(shop, item)
    result = _customer_echo(advocate, item)

    failure: dict[str, t.Any] | None = None
    campaign: Campaign | None = None
    if advocate is None:
        failure = _status(False, CUSTOMER_NOT_FOUND, f"Cannot find a customer for provided {tried}")
    else:
        raw_token = referrals.get("campaign_token")
        token = _text(raw_token)
        if raw_token is not None and token is None:  # a list, object, boolean or fraction names no campaign
            campaign = None
        else:
            campaign = get_campaign(shop, token) if token else ensure_default_campaign(shop)
        if campaign is None:
            failure = _status(False, *INVALID_CAMPAIGN)
        elif has_ended(campaign):  # a friend referred now could never earn anything
            failure = _status(False, *CAMPAIGN_ENDED)

    types_out: list[dict[str, t.Any]] = []
    supported = 0
    for kind, items in groups:
        channel = _REFERRAL_TYPES.get(kind)
        echoed: list[dict[str, t.Any]] = []
        for referral in items:
            if failure is not None:
                status = failure
            elif channel is None:
                status = _status(False, *TYPE_NOT_SUPPORTED)
            else:
                status = _invite_one(shop, advocate, campaign, channel, referral)
            echoed.append(_referral_echo(referral, status))
        supported += channel is not None
        types_out.append({"type": kind, "referral": echoed})
    result["referrals"] = {"referral_type": types_out}

    if failure is not None:
        result["item_status"] = failure
    elif groups and not supported:
        result["item_status"] = _status(False, *TYPE_NOT_SUPPORTED)
    else:
        result["item_status"] = _status(True, *ITEM_OK)
    return result


def _invite_one(shop: Shop, advocate: Customer | None, campaign: Campaign | None, channel: str,
                referral: t.Any) -> dict[str, t.Any]:
    entry = referral if isinstance(referral, Mapping) else {}
    identifier = _text(entry.get("identifier"))
    if advocate is None or not identifier:
        return _status(False, *INVALID_IDENTIFIER)
    if channel == "mobile":
        identifier = _in_advocates_country(advocate, identifier)
    outcome = invite(shop, advocate, channel, identifier, name=_text(entry.get("name")), source="capillary",
                     external_ref=_text(entry.get("invited_on")), campaign=campaign)
    if outcome.ok:
        return _status(True, *REFER_OK)
    if outcome.reason in ("INVALID_EMAIL", "INVALID_MOBILE", None):
        return _status(False, *INVALID_IDENTIFIER)
    # A well-formed identifier refused for another reason (e.g. SELF_INVITE): same code, the reason said.
    return _status(False, INVALID_IDENTIFIER[0], f"{INVALID_IDENTIFIER[1]}: {outcome.reason}")


# --- Lookup -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LookupQuery:
    """A parsed lookup request."""

    source: str
    identifiers: list[tuple[str, str]]
    campaign_token: str | None
    limit: int
    offset: int
    warnings: list[dict[str, t.Any]]


def parse_lookup(args: Mapping[str, str]) -> LookupQuery:
    """Validate the lookup's query parameters; raise ``ValidationError`` with the seed's codes."""
    source = (args.get("source") or "").strip().upper()
    if source not in SOURCES:
        raise ValidationError(f"Invalid source: use one of {', '.join(sorted(SOURCES))}.",
                              code=LOOKUP_INVALID_SOURCE, field="source")
    names = [n.strip() for n in (args.get("identifierName") or "").split(",")]
    values = [v.strip() for v in (args.get("identifierValue") or "").split(",")]
    if not any(names) or len(names) != len(values) or not all(names) or not all(values):
        raise ValidationError("Lookup, Invalid identifier passed: give identifierName and identifierValue as "
                              "comma-separated lists of the same length.", code=LOOKUP_INVALID_IDENTIFIER,
                              field="identifierName")
    if len(names) > MAX_IDENTIFIERS:
        raise ValidationError(f"Lookup, Invalid identifier passed: at most {MAX_IDENTIFIERS} identifiers.",
                              code=LOOKUP_INVALID_IDENTIFIER, field="identifierName")
    identifiers: list[tuple[str, str]] = []
    for name, value in zip(names, values, strict=True):
        kind = _IDENTIFIER_ALIASES.get(name.lower())
        if kind is None:
            raise ValidationError(f"Lookup, Invalid identifier passed: {name!r} is not supported "
                                  f"(use {', '.join(IDENTIFIER_PRIORITY)}).", code=LOOKUP_INVALID_IDENTIFIER,
                                  field="identifierName")
        if kind in ("id", "externalId") and shopify_id(value) is None:
            raise ValidationError(f"Lookup, Invalid identifier passed: {name} must be a Shopify customer id.",
                                  code=LOOKUP_INVALID_IDENTIFIER, field="identifierValue")
        identifiers.append((kind, value))
    warnings: list[dict[str, t.Any]] = []
    limit = _page_arg(args, "limit", 10, minimum=1)
    if limit > MAX_LIMIT:
        warnings.append({"code": 400, "message": f"limit capped at {MAX_LIMIT}"})
        limit = MAX_LIMIT
    offset = _page_arg(args, "offset", 0, minimum=0)
    token = (args.get("campaignToken") or "").strip() or None
    return LookupQuery(source, identifiers, token, limit, offset, warnings)


def _page_arg(args: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < minimum:
        raise ValidationError(f"{name} must be an integer of at least {minimum}.", code="400", field=name)
    return int(raw)


def resolve_customer(shop: Shop, identifiers: list[tuple[str, str]],
                     warnings: list[dict[str, t.Any]]) -> Customer:
    """Return the one customer the identifiers name, the most authoritative identifier deciding.

    :raise NotFound: ``8015`` when no identifier resolves to exactly one customer.
    """
    ordered = sorted(identifiers, key=lambda pair: IDENTIFIER_PRIORITY.index(pair[0]))
    for kind, value in ordered:
        engine_kind = "id" if kind in ("id", "externalId") else kind
        # Erased customers are nobody here, as in "Refer Customer".
        matches = [c for c in find_customers(shop, engine_kind, value) if c.redacted_at is None]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            warnings.append({"code": 8015, "message": f"{kind} matches {len(matches)} customers; not used"})
    # Only when nothing matched exactly: a mobile without its country code names the customer it names in
    # "Refer Customer" (the one customer of any country with that national number).
    for kind, value in ordered:
        if kind == "mobile" and (guessed := _by_national_number(shop, value)):
            return guessed[0]
    raise NotFound("Customer not found for the given identifiers", code=LOOKUP_CUSTOMER_NOT_FOUND)


def lookup_referrals(shop: Shop, query: LookupQuery) -> dict[str, t.Any]:
    """Return the lookup answer of the seed for the customer the identifiers name, in the campaign.

    The campaign is ``campaignToken`` (``1222`` when unknown), else the shop's default campaign.
    ``limit``/``offset`` page the ``invitees``, ``referee`` and ``incentives`` lists alike;
    ``pagination.total`` is the length of the longest of them.
    """
    warnings = list(query.warnings)
    campaign: Campaign | None = None  # None: the shop's default, found by the statement itself
    if query.campaign_token is not None:
        campaign = get_campaign(shop, query.campaign_token)
        if campaign is None:
            raise ValidationError("Internal error with the referral system: campaignToken is invalid.",
                                  code=LOOKUP_INVALID_CAMPAIGN, field="campaignToken")
    customer = resolve_customer(shop, query.identifiers, warnings)
    params = {"shop_id": customer.shop_id, "campaign_id": campaign.id if campaign else None,
              "customer_id": customer.id, "limit": query.limit, "offset": query.offset}
    # One round trip for the code, the three list lengths and the three pages, as plain rows (no ORM objects).
    parts: dict[str, list[dict[str, t.Any]]] = {name: [] for name in _PART_NAMES}
    for row in db.session.connection().execute(_LOOKUP, params):
        part = _PART_NAMES[row[0]]
        parts[part].append({name: row[at] for name, at in _PLACES[part]})
    [head] = parts["head"]
    code = head["code"]
    if code is None:  # no code in the campaign yet (or no default campaign yet: its lists are empty)
        code = get_or_create_code(shop, customer, campaign or ensure_default_campaign(shop)).code
    invitees = [_invitee(row) for row in parts["invitees"]]
    referees = [_referee(row) for row in parts["referees"]]
    incentives = [_incentive(row) for row in parts["incentives"]]
    total = max(head["invitations"], head["referrals"], head["incentives"])
    return {
        "pagination": {"limit": query.limit, "offset": query.offset, "total": total},
        "data": [{
            "customer": _customer_profile(customer),
            "referralCode": code,
            "invitees": invitees,
            "referee": referees,
            "incentives": incentives,
        }],
        "warnings": warnings,
        "errors": [],
    }


# The lookup's statements, built once: a request binds values instead of rebuilding (and re-keying) SQL.
_invitations = Invitation.__table__.c
_referrals = Referral.__table__.c
_ledger = LedgerEntry.__table__.c
_friends = Customer.__table__.alias("friend")
_codes = ReferralCode.__table__.c
_SHOP = bindparam("shop_id", type_=Integer)
#: The campaign asked for, else the shop's default one (as the engine's ``get_default_campaign`` finds it).
_CAMPAIGN = func.coalesce(
    bindparam("campaign_id", type_=Integer),
    select(Campaign.__table__.c.id)
    .where(Campaign.__table__.c.shop_id == _SHOP, Campaign.__table__.c.is_default.is_(True)).scalar_subquery(),
)
_CUSTOMER = bindparam("customer_id", type_=Integer)
_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)
_INVITED = (_invitations.shop_id == _SHOP, _invitations.campaign_id == _CAMPAIGN,
            _invitations.advocate_id == _CUSTOMER)
_REFERRED = (_referrals.shop_id == _SHOP, _referrals.campaign_id == _CAMPAIGN, _referrals.advocate_id == _CUSTOMER)
_REWARDED = (_ledger.shop_id == _SHOP, _ledger.customer_id == _CUSTOMER, _ledger.campaign_id == _CAMPAIGN)


def _count_of(table: t.Any, *where: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).select_from(table).where(*where).scalar_subquery()


#: Each part of the answer: its columns by name, what it reads, its filter and its order (None: the one head row).
_PARTS: dict[str, tuple[list[tuple[str, ColumnElement[t.Any]]], t.Any, tuple[ColumnElement[bool], ...],
                        tuple[ColumnElement[t.Any], ColumnElement[t.Any]] | None]] = {
    # The customer's code in the campaign (None when it has none yet) and the length of each list.
    "head": ([
        ("code", select(_codes.code).where(_codes.campaign_id == _CAMPAIGN, _codes.customer_id == _CUSTOMER)
         .scalar_subquery()),
        ("invitations", _count_of(Invitation.__table__, *_INVITED)),
        ("referrals", _count_of(Referral.__table__, *_REFERRED)),
        ("incentives", _count_of(LedgerEntry.__table__, *_REWARDED)),
    ], None, (), None),
    "invitees": ([
        (name, _invitations[name]) for name in ("channel", "identifier", "name", "external_ref", "invited_at",
                                                "source", "status", "joined_at", "purchased_at")
    ], Invitation.__table__, _INVITED, (_invitations.invited_at, _invitations.id)),
    "referees": ([
        ("friend_id", _friends.c.id),
        *((name, _friends.c[name]) for name in ("shopify_customer_id", "first_name", "last_name", "email", "phone")),
        *((name, _referrals[name]) for name in ("shopify_order_id", "order_name", "status", "reason", "source",
                                                "created_at", "decided_at", "hold_until")),
    ], Referral.__table__.outerjoin(_friends, _friends.c.id == _referrals.friend_id), _REFERRED,
        (_referrals.created_at, _referrals.id)),
    "incentives": ([
        (name, _ledger[name]) for name in ("reward_kind", "entry_type", "side", "points", "amount", "currency",
                                           "discount_code", "reason", "shopify_order_id", "created_at",
                                           "available_at")
    ], LedgerEntry.__table__, _REWARDED, (_ledger.created_at, _ledger.id)),
}


def _slot_type(column: ColumnElement[t.Any]) -> TypeEngine[t.Any]:
    """Return the type of the shared column a value travels in: text, integer, timestamp or money."""
    if isinstance(column.type, UTCDateTime):
        return UTCDateTime()
    if isinstance(column.type, Integer):
        return BigInteger()
    if isinstance(column.type, Numeric):
        return Numeric(12, 2)
    return String()


def _combined_lookup() -> tuple[Select[t.Any], tuple[str, ...], dict[str, list[tuple[str, int]]]]:
    """Build the lookup's one statement: each part a branch of a ``UNION ALL`` over shared, typed columns.

    A branch fills the shared columns its values need (NULL elsewhere) and keeps its own page; the outer
    ``ORDER BY`` (part, then each list's own order) puts the rows back in order. Returns the statement,
    the part names by number, and where each part's columns are in a row.
    """
    slot_types: dict[str, TypeEngine[t.Any]] = {}
    placement: dict[str, list[tuple[str, str]]] = {}
    for part, (columns, _source, _where, _order) in _PARTS.items():
        used: dict[str, int] = {}
        placement[part] = []
        for name, column in columns:
            kind = _slot_type(column)
            prefix = type(kind).__name__.lower()
            used[prefix] = used.get(prefix, 0) + 1
            slot = f"{prefix}_{used[prefix]}"
            slot_types.setdefault(slot, kind)
            placement[part].append((name, slot))
    slots = sorted(slot_types)
    branches = []
    for number, (part, (columns, source, where, order)) in enumerate(_PARTS.items()):
        values = {slot: column for (_name, slot), (_same, column) in zip(placement[part], columns, strict=True)}
        branch = select(
            literal_column(str(number), Integer).label("part"),
            (order[0] if order else cast(null(), UTCDateTime)).label("sort_at"),
            (order[1] if order else cast(null(), BigInteger)).label("sort_id"),
            *(values.get(slot, cast(null(), slot_types[slot])).label(slot) for slot in slots),
        )
        if order is not None:
            # The page's ids first (from the index alone), then only those rows: a deep offset of a big
            # advocate's list then walks index entries, not table rows and their friends.
            sort_at, row_id = order
            page = (select(row_id.label("id")).where(*where).order_by(sort_at, row_id).offset(_OFFSET).limit(_LIMIT)
                    .subquery(f"{part}_page"))
            branch = branch.select_from(page.join(source, page.c.id == row_id))
        branches.append(select(branch.subquery()))
    combined = union_all(*branches).subquery("lookup")
    statement = select(combined).order_by(combined.c.part, combined.c.sort_at, combined.c.sort_id)
    at = {slot: 3 + index for index, slot in enumerate(slots)}
    places = {part: [(name, at[slot]) for name, slot in placed] for part, placed in placement.items()}
    return statement, tuple(_PARTS), places


_LOOKUP, _PART_NAMES, _PLACES = _combined_lookup()


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _identifiers(shopify_customer_id: int | None, email: str | None, phone: str | None) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if shopify_customer_id is not None:
        found.append({"type": "externalId", "value": str(shopify_customer_id)})
    if email:
        found.append({"type": "email", "value": email})
    mobile = mobile_digits(phone)
    if mobile:
        found.append({"type": "mobile", "value": mobile})
    return found


def _customer_profile(customer: Customer) -> dict[str, t.Any]:
    """Return ``data[].customer`` of the seed; ids are the Shopify customer id."""
    identifiers = _identifiers(customer.shopify_customer_id, customer.email, customer.phone)
    return {
        "id": customer.shopify_customer_id,
        "profiles": [{
            "firstName": customer.first_name or "",
            "lastName": customer.last_name or "",
            "fields": {},
            "allFields": {},
            "identifiers": identifiers,
            "commChannels": [],
            "userId": customer.shopify_customer_id,
            "accountId": "",
            "autoUpdateTime": _iso(customer.updated_at),
            "identifiersAll": [dict(i) for i in identifiers],
        }],
    }


def _invitee(row: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return one invitation: who was invited, how, when, and how far they got."""
    return {
        "type": row["channel"].upper(),
        "identifier": row["identifier"],
        "name": row["name"],
        "invitedOn": row["external_ref"] or _iso(row["invited_at"]),
        "invitedAt": _iso(row["invited_at"]),
        "source": row["source"],
        "status": row["status"],
        "joinedAt": _iso(row["joined_at"]),
        "purchasedAt": _iso(row["purchased_at"]),
    }


def _referee(row: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return one referred friend with the referral's status and, when decided, its reason."""
    known = row["friend_id"] is not None
    return {
        "customerId": row["shopify_customer_id"] if known else None,
        "firstName": row["first_name"] if known else None,
        "lastName": row["last_name"] if known else None,
        "identifiers": _identifiers(row["shopify_customer_id"], row["email"], row["phone"]) if known else [],
        "eventType": "TRANSACTION" if row["shopify_order_id"] is not None else "REGISTRATION",
        "orderName": row["order_name"],
        "status": row["status"],
        "reason": row["reason"],
        "source": row["source"],
        "referredOn": _iso(row["created_at"]),
        "decidedOn": _iso(row["decided_at"]),
        "holdUntil": _iso(row["hold_until"]),
    }


def _incentive(row: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return one ledger row of the customer: a reward earned, held, released, issued or taken back."""
    return {
        "type": "POINTS" if row["reward_kind"] == RewardKind.POINTS else "COUPON",
        "entryType": row["entry_type"],
        "side": row["side"],
        "rewardKind": row["reward_kind"],
        "points": row["points"],
        "amount": float(row["amount"]),
        "currency": row["currency"],
        "couponCode": row["discount_code"],
        "reason": row["reason"],
        "orderId": row["shopify_order_id"],
        "issuedOn": _iso(row["created_at"]),
        "availableAt": _iso(row["available_at"]),
    }
