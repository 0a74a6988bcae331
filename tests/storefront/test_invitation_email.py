"""Invitation emails through the job queue to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import typing as t

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import ReferralCode
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID
from tests.storefront.conftest import Mailbox


@pytest.fixture
def app_config(app_config: dict[str, t.Any], smtp_server: Mailbox) -> dict[str, t.Any]:
    """Point MAIL_* at the local SMTP server."""
    return {**app_config, "MAIL_SERVER": smtp_server.host, "MAIL_PORT": smtp_server.port,
            "MAIL_DEFAULT_SENDER": "Test Shop <referrals@test-shop.example>"}


def _invite(shopify: ShopifyActions, friends: list[t.Any]) -> dict[str, t.Any]:
    token = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["invite"]["token"]
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data=json.dumps({"token": token, "friends": friends}),
                                  content_type="application/json")
    assert response.status_code == 200
    return t.cast(dict[str, t.Any], response.get_json())


def test_email_invitation_is_sent_with_text_and_html(shopify: ShopifyActions, advocate: Customer,
                                                     advocate_code: ReferralCode, smtp_server: Mailbox) -> None:
    """With SMTP configured, an email friend gets a text and HTML invitation carrying the link and offer."""
    body = _invite(shopify, [{"email": "bea@example.com", "name": "Bea"}])
    assert body["emailDelivery"] is True
    assert body["results"][0]["emailQueued"] is True
    assert body["results"][0]["message"] == "Invitation sent."
    assert "sendYourself" not in body["results"][0]

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert smtp_server.envelopes[0][1] == ["bea@example.com"]
    assert message["To"] == "bea@example.com"
    assert "Ana" in message["Subject"]
    link = f"https://test-shop.myshopify.com/apps/referrals/r/{advocate_code.code}"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
             if part.get_content_maintype() == "text"}
    assert set(parts) == {"text/plain", "text/html"}
    assert link in parts["text/plain"] and f'href="{link}"' in parts["text/html"]
    assert "Hi Bea" in parts["text/plain"]
    assert "50 points" in parts["text/plain"] and "50 points" in parts["text/html"]
    invitation = db.session.scalars(db.select(Invitation)).one()
    db.session.refresh(invitation)
    assert invitation.email_sent_at is not None


@pytest.mark.parametrize("typed", [
    "Buy cheap pills at pharma.example.com now", "see https://spam.example", "x" * 41, "call 555 0100 today ok",
    "<b>Bea</b>", "bea@example.com",
])
def test_a_typed_name_that_is_not_a_name_is_not_mailed(shopify: ShopifyActions, advocate: Customer,
                                                        advocate_code: ReferralCode, smtp_server: Mailbox,
                                                        typed: str) -> None:
    """The advocate types the friend's name and the shop's address sends it: a message or a link is not greeted."""
    _invite(shopify, [{"email": "cy@example.com", "name": typed}])
    [message] = smtp_server.messages
    text = next(part.get_payload(decode=True).decode() for part in message.walk()
                if part.get_content_type() == "text/plain")
    assert text.startswith("Hi,")
    assert typed not in text and typed not in str(message["Subject"])


def test_mobile_friends_and_duplicates_send_no_email(shopify: ShopifyActions, advocate: Customer,
                                                     smtp_server: Mailbox) -> None:
    """Only newly created email invitations are mailed; a number gets an sms: link, a repeat nothing."""
    _invite(shopify, ["bea@example.com"])
    body = _invite(shopify, ["bea@example.com", "+14155550199"])
    assert [r["emailQueued"] for r in body["results"]] == [False, False]
    assert body["results"][1]["sendYourself"].startswith("sms:")
    assert len(smtp_server.messages) == 1


def test_hostile_names_are_escaped_in_the_email(shopify: ShopifyActions, advocate: Customer,
                                                smtp_server: Mailbox) -> None:
    """A hostile advocate or friend name is escaped in the HTML part and cannot break headers."""
    advocate.first_name = "<b>Ana</b>\r\nBcc: victim@example.com"
    db.session.commit()
    _invite(shopify, [{"email": "bea@example.com", "name": "<script>x</script>"}])
    message = smtp_server.messages[0]
    assert smtp_server.envelopes[0][1] == ["bea@example.com"]
    assert message["Bcc"] is None
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "<script>x</script>" not in html and "<b>Ana</b>" not in html
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html  # escaped; the friend's "name" is markup, so it is not greeted at all
