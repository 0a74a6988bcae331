"""Emails sent through the job queue: a builder per kind turns ids into a message, then SMTP sends it.

``invitation`` is built in: it renders ``templates/email/invitation_subject.txt``,
``invitation.txt`` and ``invitation.html`` (owned by the storefront) with ``shop``, ``shop_name``,
``invitation``, ``friend_name``, ``advocate``, ``advocate_name``, ``code``, ``invite_link`` and
``offer``; a plain fallback is used for any template that does not exist.
"""

from __future__ import annotations

import logging
import re
import smtplib
import typing as t
from dataclasses import dataclass

from flask import current_app
from flask import render_template
from jinja2 import TemplateNotFound
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import TransientJobError
from referral_plugin.mail import mail_configured
from referral_plugin.mail import send_email
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Email:
    """One message ready to send."""

    to: str
    subject: str
    text: str
    html: str | None = None


Builder = t.Callable[..., Email | None]
AfterSend = t.Callable[..., None]
_KINDS: dict[str, tuple[Builder, AfterSend | None, AfterSend | None]] = {}
#: Audit action recorded when the SMTP server refuses an invitation's recipient (the sweeper stops retrying it).
INVITATION_EMAIL_REFUSED = "invitation_email_refused"


def register_email(kind: str, builder: Builder, after_send: AfterSend | None = None,
                   after_refused: AfterSend | None = None) -> None:
    """Make ``builder(**ids)`` build emails of ``kind``; ``after_send(**ids)`` records that one went out.

    ``after_refused(**ids)`` records that the server refused the recipient for good.
    """
    _KINDS[kind] = (builder, after_send, after_refused)


def deliver(kind: str, **ids: t.Any) -> bool:
    """Build and send one email of ``kind``; return whether one was sent.

    :raise TransientJobError: when the SMTP server cannot be reached or refuses for now (retried).
    """
    if kind not in _KINDS:
        logger.error("no email builder for kind %r", kind)
        return False
    if not mail_configured():
        logger.info("MAIL_SERVER not set; %s email not sent", kind)
        return False
    builder, after_send, after_refused = _KINDS[kind]
    email = builder(**ids)
    if email is None:
        return False
    try:
        send_email(email.to, email.subject, email.text, email.html)
    except smtplib.SMTPRecipientsRefused:
        logger.warning("SMTP refused the recipient of a %s email", kind)
        if after_refused is not None:
            after_refused(**ids)
            db.session.commit()
        return False
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientJobError(f"SMTP: {exc}") from exc
    if after_send is not None:
        after_send(**ids)
    db.session.commit()
    return True


def _render(name: str, fallback: str, **context: t.Any) -> str:
    try:
        return render_template(name, **context)
    except TemplateNotFound:
        return fallback


def _invite_link(shop: Shop, code: ReferralCode | None) -> str:
    if code is None:
        return f"https://{shop.shopify_domain}/"
    try:
        from referral_plugin.referrals.codes import invite_link
    except ImportError:  # the engine's helper; the contract's format until it exists
        prefix = current_app.config["APP_PROXY_PREFIX"]
        return f"https://{shop.shopify_domain}{prefix}/r/{code.code}"
    return str(invite_link(shop, code))


def _offer(campaign: Campaign | None) -> t.Any:
    if campaign is None:
        return None
    try:
        from referral_plugin.referrals.campaigns import describe_offer
    except ImportError:
        return None
    return describe_offer(campaign)


#: Longest friend's name an invitation email greets; Shopify's own name fields rarely need more.
GREETING_NAME_MAX = 40
#: What a name does not hold: a link, an address, markup or template braces.
_NOT_A_NAME = re.compile(r"://|www\.|@|[<>{}\[\]]|\.(?:com|net|org|info|biz|io|co|ru|xyz|top)\b", re.IGNORECASE)


def greeting_name(name: str | None) -> str | None:
    """Return the friend's name as the invitation email greets them, or None to greet them plainly.

    The advocate types it and the shop's address sends it to a stranger, so it must not carry a message: only
    what reads as a name (one line, at most four words and :data:`GREETING_NAME_MAX` characters, no link or
    address) is used.
    """
    if not name:
        return None
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > GREETING_NAME_MAX or len(cleaned.split()) > 4 or _NOT_A_NAME.search(cleaned):
        return None
    return cleaned


def build_invitation(invitation_id: int) -> Email | None:
    """Build the email inviting a friend, or None when it is not an unsent email invitation."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.channel != "email" or invitation.email_sent_at is not None:
        return None
    if "@" not in invitation.identifier:
        return None
    shop = db.session.get(Shop, invitation.shop_id)
    advocate = db.session.get(Customer, invitation.advocate_id)
    if shop is None or advocate is None:
        return None
    campaign = db.session.get(Campaign, invitation.campaign_id)
    code = db.session.execute(
        select(ReferralCode).where(ReferralCode.shop_id == shop.id, ReferralCode.customer_id == advocate.id,
                                   ReferralCode.campaign_id == invitation.campaign_id,
                                   ReferralCode.retired_at.is_(None))
    ).scalars().first()
    shop_name = shop.name or shop.shopify_domain
    advocate_name = advocate.first_name or advocate.display_name
    link = _invite_link(shop, code)
    friend = greeting_name(invitation.name)
    context = {
        "shop": shop, "shop_name": shop_name, "invitation": invitation, "friend_name": friend,
        "advocate": advocate, "advocate_name": advocate_name, "code": code.code if code else None,
        "invite_link": link, "offer": _offer(campaign),
    }
    subject = _render("email/invitation_subject.txt", f"{advocate_name} invited you to {shop_name}", **context)
    greeting = f"Hi {friend}," if friend else "Hi,"
    text = _render(
        "email/invitation.txt",
        f"{greeting}\n\n{advocate_name} thinks you'll love {shop_name}.\n\nShop with their link: {link}\n",
        **context,
    )
    html = _render("email/invitation.html", "", **context) or None
    return Email(to=invitation.identifier, subject=subject.strip(), text=text, html=html)


def mark_invitation_sent(invitation_id: int) -> None:
    """Record that the invitation email went out."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is not None:
        invitation.email_sent_at = utcnow()


def mark_invitation_refused(invitation_id: int) -> None:
    """Record in the audit log that the SMTP server refused the invitation's recipient."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is not None:
        db.session.add(AuditEvent(shop_id=invitation.shop_id, actor="system:mail", action=INVITATION_EMAIL_REFUSED,
                                  subject_type="invitation", subject_id=invitation.id, details={}))


register_email("invitation", build_invitation, mark_invitation_sent, mark_invitation_refused)
