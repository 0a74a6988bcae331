"""Invitations: validation per channel, idempotency, and tracking invited -> joined -> purchased."""

from __future__ import annotations

import datetime as dt

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Invitation
from referral_plugin.models import Referral
from referral_plugin.models import Shop
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.invitations import invite
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


@pytest.fixture
def india_shop(shop: Shop) -> Shop:
    """Return the test shop set to India, as the Capillary examples assume."""
    shop.phone_region = "IN"
    db.session.commit()
    return shop


def test_email_and_mobile_invitations_are_normalized(india_shop: Shop) -> None:
    """An email is lower-cased; a mobile becomes E.164 digits without the plus (``917999836416``)."""
    advocate = upsert_customer(india_shop, 1, email="adv@example.com", phone="7999836466")
    by_email = invite(india_shop, advocate, "email", " Friend@Example.com ", source="test")
    by_mobile = invite(india_shop, advocate, "MOBILE", "7999836416", name="Shikhar", source="capillary",
                       external_ref="20240910T16:35:52.pV7BF")
    assert (by_email.status, by_email.identifier) == ("created", "friend@example.com")
    assert (by_mobile.status, by_mobile.identifier) == ("created", "917999836416")
    assert by_mobile.invitation is not None
    assert (by_mobile.invitation.name, by_mobile.invitation.external_ref) == ("Shikhar", "20240910T16:35:52.pV7BF")


@pytest.mark.parametrize(("channel", "identifier", "reason"), [
    ("email", "not-an-email", "INVALID_EMAIL"),
    ("email", None, "INVALID_EMAIL"),
    ("mobile", "79998364", "INVALID_MOBILE"),
    ("mobile", "call me", "INVALID_MOBILE"),
    ("fax", "123", "UNSUPPORTED_CHANNEL"),
    ("email", "ADV@example.com", "SELF_INVITE"),
    ("mobile", "+91 79998 36466", "SELF_INVITE"),
])
def test_invalid_invitations_have_stable_reasons(india_shop: Shop, channel: str, identifier: str | None,
                                                 reason: str) -> None:
    """Bad identifiers, unknown channels and self-invites answer ``invalid`` with a stable reason."""
    advocate = upsert_customer(india_shop, 1, email="adv@example.com", phone="7999836466")
    result = invite(india_shop, advocate, channel, identifier, source="test")
    assert (result.status, result.reason, result.invitation) == ("invalid", reason, None)
    assert db.session.query(Invitation).count() == 0


def test_repeat_invitation_is_a_duplicate_of_the_same_row(india_shop: Shop) -> None:
    """Inviting the same friend again (any spelling) answers ``duplicate`` with the first row."""
    advocate = upsert_customer(india_shop, 1, email="adv@example.com")
    first = invite(india_shop, advocate, "email", "friend@example.com", source="test")
    second = invite(india_shop, advocate, "email", "FRIEND@example.com", source="test")
    assert second.status == "duplicate"
    assert first.invitation is not None and second.invitation is not None
    assert second.invitation.id == first.invitation.id
    assert db.session.query(Invitation).count() == 1


def test_invited_friend_joins_then_purchases(store: Store) -> None:
    """The invited friend's registration binds the referral; their first paid order completes it."""
    advocate = store.register()
    advocate_row = store.customer(advocate)
    invitation = invite(store.shop, advocate_row, "email", "newfriend@example.com", source="test").invitation
    db.session.commit()
    assert invitation is not None and invitation.status == "invited"

    friend = store.register(email="NewFriend@example.com")
    db.session.expire_all()
    assert invitation.status == "joined" and invitation.friend_id == store.customer(friend).id
    referral = db.session.query(Referral).one()
    assert (referral.source, referral.status, referral.invitation_id) == ("invitation", "pending", invitation.id)

    store.pay(order_payload(friend))
    db.session.expire_all()
    assert invitation.status == "purchased" and invitation.purchased_at is not None
    assert referral.status == "rewarded"
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)


def test_earliest_invitation_wins_and_phone_matches(store: Store) -> None:
    """When two advocates invited the same friend, the earlier invitation binds the referral."""
    store.shop.phone_region = "US"
    first, second = store.register(), store.register()
    late = invite(store.shop, store.customer(second), "mobile", "415-555-2671", source="test").invitation
    early = invite(store.shop, store.customer(first), "mobile", "+1 415 555 2671", source="test").invitation
    assert late is not None and early is not None
    early.invited_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    db.session.commit()

    store.register(phone="+14155552671")
    referral = db.session.query(Referral).one()
    assert referral.advocate_id == store.customer(first).id
    assert referral.invitation_id == early.id
    db.session.expire_all()
    assert {late.status, early.status} == {"joined"}


@pytest.mark.parametrize("note", ["ref: {code}", "{code}", "Referred by a friend, code {dashed}.", "{lower}"])
def test_code_in_customer_note_binds_the_referral(store: Store, note: str) -> None:
    """A referral code written in the new customer's note binds them to its advocate."""
    advocate = store.register()
    code = store.code_of(advocate)
    dashed = f"{code[:4]}-{code[4:]}"
    friend = store.register(note=note.format(code=code, dashed=dashed, lower=code.lower()))
    referral = db.session.query(Referral).one()
    assert referral.advocate_id == store.customer(advocate).id
    assert referral.friend_id == store.customer(friend).id
    assert referral.source == "customer_note"


def test_note_without_a_known_code_binds_nothing(store: Store) -> None:
    """A note with no code of this shop leaves the customer unreferred."""
    store.register(note="This customer loves ice cream")
    store.register(note="ref: ZZZZ2222")
    assert db.session.query(Referral).count() == 0


def test_an_ended_campaign_takes_no_invitations_a_paused_or_scheduled_one_does(india_shop: Shop) -> None:
    """A friend invited into a program that is over could never earn anything: refused with CAMPAIGN_ENDED.
    A paused or not yet started program still takes them (they count once it runs)."""
    from referral_plugin.referrals.campaigns import ensure_default_campaign

    advocate = upsert_customer(india_shop, 1, email="adv@example.com")
    campaign = ensure_default_campaign(india_shop)
    now = dt.datetime.now(dt.UTC)

    campaign.ends_at = now - dt.timedelta(minutes=1)
    ended = invite(india_shop, advocate, "email", "late@example.com", source="test")
    assert (ended.status, ended.reason, ended.invitation) == ("invalid", "CAMPAIGN_ENDED", None)
    campaign.ends_at, campaign.status = None, "archived"
    archived = invite(india_shop, advocate, "email", "late@example.com", source="test")
    assert (archived.status, archived.reason) == ("invalid", "CAMPAIGN_ENDED")
    assert db.session.query(Invitation).count() == 0

    campaign.status = "paused"
    assert invite(india_shop, advocate, "email", "paused@example.com", source="test").status == "created"
    campaign.status, campaign.starts_at = "active", now + dt.timedelta(days=3)
    assert invite(india_shop, advocate, "email", "early@example.com", source="test").status == "created"
