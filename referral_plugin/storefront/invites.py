"""Invitations from the widget: several friends at once, rate-limited per customer, emailed when SMTP is set."""

from __future__ import annotations

import math
import re
import time
import typing as t
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote
from urllib.parse import urlencode

from flask import current_app
from limits import RateLimitItem
from limits import parse as parse_limit
from limits.storage import Storage
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from referral_plugin.errors import ConfigurationError
from referral_plugin.errors import RateLimited
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.mail import mail_configured
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import describe_offer
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import invite_link
from referral_plugin.referrals.invitations import invite
from referral_plugin.rewards import schedule_email
from referral_plugin.storefront.reasons import invitation_reason_text
from referral_plugin.storefront.widget import offer_sentences
from referral_plugin.storefront.widget import resolve_code
from referral_plugin.storefront.widget import resolve_customer
from referral_plugin.storefront.widget import share_message

#: Most friends in one request; more is a 400, so one post cannot flood the table.
MAX_FRIENDS_PER_REQUEST = 10
_MAX_IDENTIFIER = 320
_SPLIT = re.compile(r"[\n,;]+")
_EXTENSION_KEY = "storefront_invitation_limiter"


@dataclass(frozen=True)
class FriendInput:
    """One friend as the shopper typed them."""

    raw: str
    channel: str
    name: str | None = None
    #: The channel was guessed from the text (no ``@`` means a number), not named by a field.
    guessed: bool = False


def _channel_for(value: str) -> str:
    return "email" if "@" in value else "mobile"


def parse_friends(
    payload: Mapping[str, t.Any] | None, form_values: Sequence[tuple[str, str]] = ()
) -> list[FriendInput]:
    """Read friends from a JSON body or form fields, in the order given.

    JSON: ``{"friends": ["a@example.com", {"email": ..., "name": ...}, {"phone": ...}]}`` (also ``invitees``,
    or a single ``email``/``phone``/``mobile``, or lists ``emails``/``phones``/``mobiles``). Form: ``friends``
    (a textarea: one per line or comma-separated), ``email``, ``phone`` or ``mobile`` fields (or their plurals),
    repeatable.

    :raise ValidationError: when nothing is given or too many friends are.
    """
    friends: list[FriendInput] = []

    def add_text(text: str, channel: str | None = None, name: str | None = None) -> None:
        for piece in _SPLIT.split(text):
            value = piece.strip()
            if value:
                friends.append(FriendInput(value[: _MAX_IDENTIFIER + 1], channel or _channel_for(value), name,
                                           guessed=channel is None))

    if payload is not None:
        items = payload.get("friends", payload.get("invitees"))
        if items is None:
            items = [payload] if any(k in payload for k in ("email", "phone", "mobile", "identifier")) else []
        if isinstance(items, str):
            items = [items]
        # Plural lists (``{"emails": [...], "phones": [...]}``) are what integrators reach for first.
        for plural, singular in (("emails", "email"), ("phones", "phone"), ("mobiles", "mobile")):
            listed = payload.get(plural)
            if isinstance(listed, str):
                listed = [listed]
            if isinstance(listed, list) and isinstance(items, list):
                items = [*items, *({singular: v} if isinstance(v, str) else v for v in listed)]
        if not isinstance(items, list):
            raise ValidationError("friends must be a list", code="INVALID_FRIENDS", field="friends")
        for item in items:
            if isinstance(item, str):
                add_text(item)
            elif isinstance(item, Mapping):
                name = item.get("name") if isinstance(item.get("name"), str) else None
                name = name.strip()[:255] or None if name else None
                for key, channel in (("email", "email"), ("phone", "mobile"), ("mobile", "mobile")):
                    value = item.get(key)
                    if isinstance(value, str) and value.strip():
                        friends.append(FriendInput(value.strip()[: _MAX_IDENTIFIER + 1], channel, name))
                        break
                else:
                    identifier = item.get("identifier")
                    channel_given = item.get("channel")
                    if isinstance(identifier, str) and identifier.strip():
                        add_text(identifier, str(channel_given) if channel_given in ("email", "mobile") else None,
                                 name)
                    else:
                        friends.append(FriendInput("", "email", name))
            else:
                raise ValidationError("each friend is an email, a number or an object", code="INVALID_FRIENDS",
                                      field="friends")
    for key, value in form_values:
        if key == "friends":
            add_text(value)
        elif key in ("email", "emails"):
            add_text(value, "email")
        elif key in ("phone", "mobile", "phones", "mobiles"):
            add_text(value, "mobile")
    if not friends:
        raise ValidationError("Enter at least one email address or mobile number.", code="NO_FRIENDS",
                              field="friends")
    if len(friends) > MAX_FRIENDS_PER_REQUEST:
        raise ValidationError(f"Invite at most {MAX_FRIENDS_PER_REQUEST} friends at a time.", code="TOO_MANY_FRIENDS",
                              field="friends")
    return friends


def _limiter() -> tuple[MovingWindowRateLimiter, RateLimitItem]:
    """Return this app's invitation limiter and its limit (``INVITATION_RATE_LIMIT``)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get(_EXTENSION_KEY)
    if cached is None:
        uri = app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://"
        storage = storage_from_string(str(uri))
        if not isinstance(storage, Storage):
            raise ConfigurationError("RATELIMIT_STORAGE_URI must name a synchronous storage")
        cached = (MovingWindowRateLimiter(storage), parse_limit(str(app.config["INVITATION_RATE_LIMIT"])))
        app.extensions[_EXTENSION_KEY] = cached
    return t.cast(tuple[MovingWindowRateLimiter, RateLimitItem], cached)


def charge_rate_limit(shop: Shop, shopify_customer_id: int, cost: int) -> None:
    """Count ``cost`` invitations against the customer's window.

    :raise RateLimited: when the window is full; nothing is counted then.
    """
    limiter, limit = _limiter()
    keys = ("storefront-invitations", shop.shopify_domain, str(shopify_customer_id))
    if limiter.hit(limit, *keys, cost=cost):
        return
    stats = limiter.get_window_stats(limit, *keys)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    left = max(0, int(stats.remaining))
    if left:
        # A batch bigger than what is left: say how many still go now, not "try again in an hour".
        message = (f"You can invite {left} more friend{'' if left == 1 else 's'} right now, "
                   f"or more in {_humanize(retry_after)}.")
    else:
        message = f"You've sent a lot of invitations. Try again in {_humanize(retry_after)}."
    raise RateLimited(message, retry_after=retry_after, details={"remaining": left})


def _humanize(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def _send_yourself(channel: str, identifier: str, message: str, subject: str) -> str:
    """Return a ``mailto:`` or ``sms:`` link that opens the shopper's own app with the invitation written."""
    if channel == "email":
        return f"mailto:{quote(identifier, safe='@')}?" + urlencode({"subject": subject, "body": message},
                                                                 quote_via=quote)
    number = identifier if identifier.startswith("+") else f"+{identifier}"
    return f"sms:{quote(number, safe='+')}?&" + urlencode({"body": message}, quote_via=quote)


def invite_friends(
    shop: Shop, shopify_customer_id: int, friends: Sequence[FriendInput]
) -> dict[str, t.Any]:
    """Invite each friend for the logged-in customer and return per-item results and a summary."""
    advocate = resolve_customer(shop, shopify_customer_id)
    campaign = ensure_default_campaign(shop)
    code = resolve_code(shop, advocate, campaign)
    link = invite_link(shop, code)
    shop_name = shop.name or shop.shopify_domain.split(".", 1)[0]
    message = f"{share_message(shop_name, offer_sentences(describe_offer(campaign)), code.code)} {link}"
    subject = f"A gift for you from {shop_name}"
    emailing = mail_configured()

    results: list[dict[str, t.Any]] = []
    created_ids: list[int] = []
    for friend in friends:
        item: dict[str, t.Any] = {"input": friend.raw, "channel": friend.channel}
        status: str
        reason: str | None
        identifier: str | None
        invitation_id: int | None
        if not friend.raw:
            status, reason, identifier, invitation_id = "invalid", "EMPTY", None, None
        elif len(friend.raw) > _MAX_IDENTIFIER:
            status, reason, identifier, invitation_id = "invalid", "TOO_LONG", None, None
        else:
            try:
                outcome = invite(shop, advocate, friend.channel, friend.raw, name=friend.name, source="widget",
                                 campaign=campaign)
            except ValidationError as exc:
                status, reason, identifier, invitation_id = "invalid", exc.code, None, None
            else:
                status = outcome.status
                reason = outcome.reason
                identifier = outcome.identifier
                invitation_id = outcome.invitation.id if outcome.invitation is not None else None
        if status == "duplicate" and not reason:
            reason = "ALREADY_INVITED"
        item.update({
            "identifier": identifier,
            # What the shopper reads: a number as they would write it (E.164), not the stored digits.
            "display": _display(friend, status, identifier),
            "status": status,
            "reason": reason,
            "message": _message(status, _shown_reason(friend, status, reason), friend.channel, emailing),
            "emailQueued": False,
        })
        if status in ("created", "duplicate") and identifier:
            if status == "created" and friend.channel == "email" and emailing and invitation_id is not None:
                created_ids.append(invitation_id)
                item["emailQueued"] = True
            else:
                item["sendYourself"] = _send_yourself(friend.channel, identifier, message, subject)
        results.append(item)
    for invitation_id in created_ids:
        # Enqueued when the session commits, so the job sees the invitation row (and never a rolled-back one).
        schedule_email("invitation", invitation_id=invitation_id)
    db.session.commit()
    summary = {status: sum(1 for r in results if r["status"] == status) for status in ("created", "duplicate",
                                                                                         "invalid")}
    return {"results": results, "summary": summary, "emailDelivery": emailing}


def _display(friend: FriendInput, status: str, identifier: str | None) -> str:
    """Return the friend as the shopper reads them: an invited number in E.164, anything refused as typed."""
    if status == "invalid" or not identifier:
        return friend.raw
    return f"+{identifier}" if friend.channel == "mobile" else identifier


def _shown_reason(friend: FriendInput, status: str, reason: str | None) -> str | None:
    """Return the reason to word for the shopper: words typed in the box were neither an email nor a number.

    Text without ``@`` is tried as a number, so "ana.example.com" would otherwise read "That doesn't look
    like a mobile number." to someone who never typed one.
    """
    if (status == "invalid" and reason == "INVALID_MOBILE" and friend.guessed
            and any(char.isalpha() for char in friend.raw)):
        return "INVALID_IDENTIFIER"
    return reason


def _message(status: str, reason: str | None, channel: str, emailing: bool) -> str:
    if status == "created":
        if channel == "email" and emailing:
            return "Invitation sent."
        return "Invited. Tap below to send it yourself."
    return invitation_reason_text(reason) or (
        "You've already invited this friend." if status == "duplicate" else "This friend couldn't be invited."
    )
