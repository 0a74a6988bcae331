"""Storefront fixtures: a campaign, a known advocate with a code, and a local SMTP server."""

from __future__ import annotations

import socket
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.customers import upsert_customer

ADVOCATE_ID = 7001


@pytest.fixture
def campaign(shop: Shop) -> Campaign:
    """Return the shop's default campaign (100 points to the advocate, 50 to the friend)."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()
    return campaign


@pytest.fixture
def advocate(shop: Shop, campaign: Campaign) -> Customer:
    """Return a known customer, Ana Lima, with a referral code."""
    customer = upsert_customer(shop, ADVOCATE_ID, email="ana@example.com", first_name="Ana", last_name="Lima",
                               phone="+14155550100")
    db.session.commit()
    get_or_create_code(shop, customer, campaign)
    db.session.commit()
    return customer


@pytest.fixture
def advocate_code(advocate: Customer, campaign: Campaign) -> ReferralCode:
    """Return the advocate's code."""
    code = db.session.scalars(db.select(ReferralCode).where(ReferralCode.customer_id == advocate.id)).one()
    return code


@dataclass
class Mailbox:
    """What the local SMTP server received."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


class _Collect:
    """aiosmtpd handler that keeps every message."""

    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:  # noqa: N802 (aiosmtpd API)
        """Store the message and accept it."""
        self.box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """Run a real SMTP server (aiosmtpd) on a free loopback port for the test."""
    box = Mailbox(host="127.0.0.1", port=_free_port())
    controller = Controller(_Collect(box), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
