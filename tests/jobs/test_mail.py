"""Invitation emails through the job queue, delivered to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import typing as t
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.mail import mail_configured
from referral_plugin.mail import send_email
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Shop
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.rewards import schedule_email
from tests.servers import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:  # noqa: N802
        """Accept the message and keep it."""
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(t.cast(EmailMessage, email.message_from_bytes(envelope.content,
                                                                          policy=email.policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> t.Iterator[tuple[Inbox, int]]:
    """Run a local SMTP server; return its inbox and port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def app_config(app_config: dict[str, t.Any], smtp_server: tuple[Inbox, int]) -> dict[str, t.Any]:
    """Point the app's mail settings at the local SMTP server."""
    return {**app_config, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_server[1],
            "MAIL_DEFAULT_SENDER": "Test Shop <referrals@test-shop.example>"}


@pytest.fixture
def invitation(shop: Shop, campaign: Campaign, advocate: Customer) -> Invitation:
    """Return an email invitation from the advocate (who has a code) to a friend."""
    get_or_create_code(shop, advocate, campaign)
    row = Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel="email",
                     identifier="friend@example.net", name="Grace", source="widget")
    db.session.add(row)
    db.session.commit()
    return row


def test_invitation_email_is_sent_once_through_the_queue(app: Flask, shop: Shop, advocate: Customer,
                                                         invitation: Invitation,
                                                         smtp_server: tuple[Inbox, int]) -> None:
    """The job renders the invitation (text and HTML) and sends it once; the invitation records it."""
    inbox, _ = smtp_server
    schedule_email("invitation", invitation_id=invitation.id)
    assert inbox.messages == []  # not before the commit
    db.session.commit()
    schedule_email("invitation", invitation_id=invitation.id)
    db.session.commit()

    [message] = inbox.messages
    assert inbox.recipients == [["friend@example.net"]]
    assert message["To"] == "friend@example.net"
    assert message["From"] == "Test Shop <referrals@test-shop.example>"
    assert "Ada" in message["Subject"]
    code = get_or_create_code(shop, advocate)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert f"https://{shop.shopify_domain}/apps/referrals/r/{code.code}" in text.get_content()
    assert "Hi Grace" in text.get_content()
    assert code.code in html.get_content()
    db.session.refresh(invitation)
    assert invitation.email_sent_at is not None


def test_smtp_down_retries_later(app: Flask, app_config: dict[str, t.Any], invitation: Invitation,
                                 smtp_server: tuple[Inbox, int]) -> None:
    """When the SMTP server does not answer, the email job is parked for a retry and nothing is marked sent."""
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    schedule_email("invitation", invitation_id=invitation.id)
    db.session.commit()

    [parked] = get_queue(app).huey.scheduled()
    assert parked.retry_delay == 30
    db.session.refresh(invitation)
    assert invitation.email_sent_at is None


def test_header_injection_is_folded_away(app: Flask, smtp_server: tuple[Inbox, int]) -> None:
    """A newline in a subject cannot add headers: it is folded into one line."""
    inbox, _ = smtp_server
    send_email("friend@example.net", "Hello\r\nBcc: victim@example.com", "body")
    [message] = inbox.messages
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: victim@example.com"
    assert inbox.recipients == [["friend@example.net"]]


def test_without_smtp_nothing_is_sent(app: Flask, invitation: Invitation, smtp_server: tuple[Inbox, int]) -> None:
    """Without ``MAIL_SERVER`` mail is off: the job does nothing and the widget offers mailto links instead."""
    inbox, _ = smtp_server
    app.config["MAIL_SERVER"] = None
    assert not mail_configured()
    schedule_email("invitation", invitation_id=invitation.id)
    db.session.commit()
    assert inbox.messages == []
    assert db.session.execute(select(Invitation.email_sent_at)).scalar_one() is None
