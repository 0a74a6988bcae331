"""The sweeper resends invitation emails whose job was lost, once, to a real local SMTP server."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.rewards.sweeper import sweep
from tests.jobs.test_mail import Inbox
from tests.jobs.test_mail import smtp_server  # noqa: F401 - the local SMTP server fixture


@pytest.fixture
def app_config(app_config: dict[str, t.Any],
               smtp_server: tuple[Inbox, int]) -> dict[str, t.Any]:  # noqa: F811 - pytest fixture injection
    """Point the app's mail settings at the local SMTP server."""
    return {**app_config, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_server[1],
            "MAIL_DEFAULT_SENDER": "Test Shop <referrals@test-shop.example>"}


def invitation(shop: Shop, campaign: Campaign, advocate: Customer, identifier: str, *, minutes_ago: float,
               source: str = "widget", channel: str = "email", sent: bool = False) -> Invitation:
    """Commit an invitation as if its email job had died with its worker (or, with ``sent``, had run)."""
    row = Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel=channel,
                     identifier=identifier, source=source, invited_at=utcnow() - dt.timedelta(minutes=minutes_ago),
                     email_sent_at=utcnow() if sent else None)
    db.session.add(row)
    db.session.commit()
    return row


def test_lost_invitation_email_is_sent_by_one_sweep(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer,
    smtp_server: tuple[Inbox, int],  # noqa: F811 - pytest fixture injection
) -> None:
    """Only the old unsent widget email is sent, once; young, sent, integrator and mobile invitations are not."""
    inbox, _ = smtp_server
    get_or_create_code(shop, advocate, campaign)
    lost = invitation(shop, campaign, advocate, "lost@example.net", minutes_ago=30)
    young = invitation(shop, campaign, advocate, "young@example.net", minutes_ago=1)
    invitation(shop, campaign, advocate, "sent@example.net", minutes_ago=30, sent=True)
    invitation(shop, campaign, advocate, "capillary@example.net", minutes_ago=30, source="capillary")
    invitation(shop, campaign, advocate, "15145550100", minutes_ago=30, channel="mobile")
    invitation(shop, campaign, advocate, "ancient@example.net", minutes_ago=60 * 48)
    now = utcnow()

    assert sweep(now).emails == [lost.id]
    assert inbox.recipients == [["lost@example.net"]]
    db.session.expire_all()
    sent_at = db.session.execute(select(Invitation.email_sent_at).where(Invitation.id == lost.id)).scalar_one()
    assert sent_at is not None

    assert sweep(now).emails == []
    young.email_sent_at = utcnow()  # its own job ran meanwhile
    db.session.commit()
    assert sweep(now + dt.timedelta(minutes=30)).emails == []  # sent, not merely claimed
    assert len(inbox.messages) == 1


def test_unreachable_smtp_is_tried_once_per_interval(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer,
    smtp_server: tuple[Inbox, int],  # noqa: F811 - pytest fixture injection
) -> None:
    """While SMTP refuses, each interval queues one attempt per invitation; once it answers the email goes out."""
    from tests.servers import free_port

    inbox, port = smtp_server
    lost = invitation(shop, campaign, advocate, "lost@example.net", minutes_ago=30)
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    now = utcnow()

    assert sweep(now).emails == [lost.id]
    assert sweep(now + dt.timedelta(minutes=1)).emails == []  # claimed for this interval
    app.config["MAIL_PORT"] = port
    assert sweep(now + dt.timedelta(minutes=6)).emails == [lost.id]
    assert inbox.recipients == [["lost@example.net"]]


class Refusing(Inbox):
    """An aiosmtpd handler that refuses every recipient, as for a mailbox that does not exist."""

    async def handle_RCPT(self, server: t.Any, session: t.Any, envelope: t.Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        """Refuse the recipient for good."""
        return "550 5.1.1 No such user"


def test_refused_recipient_is_not_retried_by_the_sweeper(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer,
    smtp_server: tuple[Inbox, int],  # noqa: F811 - pytest fixture injection
) -> None:
    """A recipient the server refuses is audited once and not re-queued every interval for a day."""
    from aiosmtpd.controller import Controller

    from referral_plugin.models import AuditEvent
    from referral_plugin.rewards.emails import INVITATION_EMAIL_REFUSED
    from tests.servers import free_port

    refusing = Refusing()
    port = free_port()
    controller = Controller(refusing, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app.config["MAIL_PORT"] = port
        lost = invitation(shop, campaign, advocate, "nobody@example.net", minutes_ago=30)
        now = utcnow()
        assert sweep(now).emails == [lost.id]
        assert sweep(now + dt.timedelta(minutes=30)).emails == []
    finally:
        controller.stop()
    [audit] = db.session.execute(select(AuditEvent).where(AuditEvent.action == INVITATION_EMAIL_REFUSED)).scalars()
    assert audit.subject_id == lost.id and refusing.messages == []
