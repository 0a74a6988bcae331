"""Discount rewards created in Shopify by the job queue: shape, retries, lost answers, failures, idempotency."""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal

import requests
import responses as responses_lib
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.models import AuditEvent
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.rewards import schedule_discount_issue
from referral_plugin.rewards.discounts import ISSUE_FAILED
from referral_plugin.rewards.discounts import reward_code_for
from tests.conftest import run_scheduled_retries
from tests.jobs.conftest import THROTTLED
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url
from tests.jobs.conftest import sent_bodies
from tests.jobs.conftest import user_errors


def issue_rows(grant: LedgerEntry) -> list[LedgerEntry]:
    """Return the ISSUE rows recorded for ``grant``."""
    return list(db.session.execute(
        select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE,
                                  LedgerEntry.related_entry_id == grant.id)).scalars())


def schedule(grant_id: int) -> None:
    """Schedule the grant's discount and commit, as the engine does when it writes a grant."""
    schedule_discount_issue(grant_id)
    db.session.commit()


def test_issue_creates_one_customer_targeted_discount_and_records_it(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A 10 % grant becomes one single-use discount for that customer, and an ISSUE row with code and node id."""
    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/501"))
    grant = make_grant()
    schedule(grant.id)

    [issue] = issue_rows(grant)
    code = reward_code_for(grant, shop.shopify_domain)
    assert issue.discount_code == code
    assert issue.discount_node_id == "gid://shopify/DiscountCodeNode/501"
    assert issue.idempotency_key == f"issue:{grant.id}"
    assert (issue.customer_id, issue.side, issue.reward_kind, issue.points) == (grant.customer_id, "advocate",
                                                                               "percentage", 0)
    [body] = sent_bodies(mocked_responses)
    assert "discountCodeBasicCreate" in body["query"]
    data = body["variables"]["d"]
    assert data["code"] == code and code.startswith("REF-") and len(code) == 16
    assert data["usageLimit"] == 1
    assert data["appliesOncePerCustomer"] is True
    assert data["context"] == {"customers": {"add": ["gid://shopify/Customer/7001"]}}
    assert data["customerGets"] == {"value": {"percentage": 0.1}, "items": {"all": True}}
    assert dt.datetime.fromisoformat(data["startsAt"].replace("Z", "+00:00")) <= dt.datetime.now(dt.UTC)
    assert mocked_responses.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_test_token"


def test_fixed_amount_reward_sends_a_discount_amount(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A fixed-amount grant is sent as ``discountAmount`` with a two-decimal amount, not a percentage."""
    mocked_responses.post(graphql_url(app), json=created())
    grant = make_grant(kind=RewardKind.FIXED_AMOUNT, amount=Decimal("15"))
    schedule(grant.id)

    value = sent_bodies(mocked_responses)[0]["variables"]["d"]["customerGets"]["value"]
    assert value == {"discountAmount": {"amount": "15.00", "appliesOnEachItem": False}}
    assert len(issue_rows(grant)) == 1


def test_code_is_stable_per_grant_and_differs_between_grants(app: Flask, shop: Shop,
                                                             make_grant: GrantFactory) -> None:
    """The reward code is derived from the grant: the same on every attempt, different for another grant."""
    first = make_grant(order_id=1)
    second = make_grant(order_id=2)
    assert reward_code_for(first, shop.shopify_domain) == reward_code_for(first, shop.shopify_domain)
    assert reward_code_for(first, shop.shopify_domain) != reward_code_for(second, shop.shopify_domain)


def test_throttled_then_success_creates_one_discount(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A THROTTLED answer is waited out and retried; the grant ends with exactly one discount."""
    mocked_responses.post(graphql_url(app), json=THROTTLED, headers={"Retry-After": "0"})
    mocked_responses.post(graphql_url(app), status=429, headers={"Retry-After": "0"}, json={"errors": "Throttled"})
    mocked_responses.post(graphql_url(app), json=created())
    grant = make_grant()
    schedule(grant.id)

    assert len(mocked_responses.calls) == 3
    assert len(issue_rows(grant)) == 1
    codes = {body["variables"]["d"]["code"] for body in sent_bodies(mocked_responses)}
    assert len(codes) == 1


def test_server_error_leaves_the_grant_pending_then_the_retry_issues_it(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A 500 keeps the reward pending with a retry scheduled (backoff); the retry issues it once."""
    url = graphql_url(app)
    mocked_responses.post(url, status=500, body="oops")
    grant = make_grant()
    schedule(grant.id)

    assert issue_rows(grant) == []
    [parked] = get_queue(app).huey.scheduled()
    assert parked.retry_delay == 10 and parked.retries == 9

    mocked_responses.post(url, json=created())
    assert run_scheduled_retries(app) == 1
    db.session.expire_all()
    assert len(issue_rows(grant)) == 1
    assert len(mocked_responses.calls) == 2


def test_dropped_connection_is_retried_with_a_longer_delay(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """Connection errors are transient: each retry waits twice as long, and the reward is issued once."""
    url = graphql_url(app)
    mocked_responses.post(url, body=requests.ConnectionError("connection reset"))
    mocked_responses.post(url, body=requests.Timeout("read timeout"))
    grant = make_grant()
    schedule(grant.id)
    [parked] = get_queue(app).huey.scheduled()
    assert parked.retry_delay == 10

    run_scheduled_retries(app)
    [parked] = get_queue(app).huey.scheduled()
    assert parked.retry_delay == 20
    assert issue_rows(grant) == []

    mocked_responses.post(url, json=created())
    run_scheduled_retries(app)
    db.session.expire_all()
    assert len(issue_rows(grant)) == 1
    assert get_queue(app).huey.scheduled() == []


def test_lost_answer_then_code_taken_adopts_the_existing_discount(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """When Shopify says the code is taken (an earlier attempt made it), the code is looked up and recorded once."""
    url = graphql_url(app)
    mocked_responses.post(url, json=user_errors(
        {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
         "message": "Code must be unique. Please try a different code."}))
    mocked_responses.post(url, json={"data": {"codeDiscountNodeByCode": {"id": "gid://shopify/DiscountCodeNode/77"}}})
    grant = make_grant()
    schedule(grant.id)

    [issue] = issue_rows(grant)
    assert issue.discount_node_id == "gid://shopify/DiscountCodeNode/77"
    create, lookup = sent_bodies(mocked_responses)
    assert "codeDiscountNodeByCode" in lookup["query"]
    assert lookup["variables"] == {"code": create["variables"]["d"]["code"]} == {"code": issue.discount_code}

    schedule(grant.id)  # a late duplicate job finds the ISSUE row and calls nobody
    assert len(mocked_responses.calls) == 2
    assert len(issue_rows(grant)) == 1


def test_other_user_errors_are_recorded_and_the_grant_is_kept(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A refusal other than "taken" is audited with Shopify's errors, not retried, and the grant stays pending."""
    errors = [{"field": ["basicCodeDiscount", "customerGets"], "code": "INVALID", "message": "Value is invalid"}]
    mocked_responses.post(graphql_url(app), json=user_errors(*errors))
    grant = make_grant()
    schedule(grant.id)

    assert issue_rows(grant) == []
    assert db.session.get(LedgerEntry, grant.id) is not None
    [audit] = db.session.execute(select(AuditEvent).where(AuditEvent.action == ISSUE_FAILED)).scalars()
    assert (audit.shop_id, audit.subject_type, audit.subject_id) == (shop.id, "ledger_entry", grant.id)
    assert audit.details == {"reason": "SHOPIFY_USER_ERRORS", "errors": errors}
    assert get_queue(app).huey.scheduled() == []


def test_running_the_job_twice_creates_one_discount(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """Two jobs for one grant (a redelivery, the sweeper) make one Shopify call and one ISSUE row."""
    mocked_responses.post(graphql_url(app), json=created())
    grant = make_grant()
    schedule(grant.id)
    schedule(grant.id)

    assert len(mocked_responses.calls) == 1
    assert len(issue_rows(grant)) == 1


def test_reversed_grant_is_not_issued(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A grant reversed before its job ran gets no discount in Shopify."""
    grant = make_grant(commit=False)
    db.session.add(LedgerEntry(
        shop_id=grant.shop_id, customer_id=grant.customer_id, campaign_id=grant.campaign_id,
        entry_type=EntryType.REVERSAL, side=grant.side, reward_kind=grant.reward_kind, amount=-grant.amount,
        related_entry_id=grant.id, idempotency_key=f"reversal:cancel:{grant.id}", reason="ORDER_CANCELLED",
    ))
    schedule(grant.id)

    assert len(mocked_responses.calls) == 0
    assert issue_rows(grant) == []


def test_points_rows_and_codes_applied_at_checkout_are_not_issued(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """Only discount grants without a code are issued: points and a code already used at checkout are not."""
    points = make_grant(kind=RewardKind.POINTS, amount=0, order_id=11)
    applied = make_grant(order_id=12, commit=False)
    applied.discount_code = "ADA-CODE"
    db.session.commit()
    schedule(points.id)
    schedule(applied.id)

    assert len(mocked_responses.calls) == 0


def test_uninstalled_shop_keeps_the_reward_pending(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """Without a live token nothing is called and nothing is recorded as failed: the sweeper issues it later."""
    shop.uninstalled_at = dt.datetime.now(dt.UTC)
    grant = make_grant()
    schedule(grant.id)

    assert len(mocked_responses.calls) == 0
    assert issue_rows(grant) == []
    assert db.session.execute(select(AuditEvent)).first() is None


def test_engine_grant_of_a_discount_reward_is_issued_after_commit(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock,
    advocate: t.Any, friend: t.Any
) -> None:
    """The engine's grant of a discount reward reaches Shopify through the queue, once, after the commit."""
    from referral_plugin.models import Referral
    from referral_plugin.models import ReferralStatus
    from referral_plugin.referrals.campaigns import ensure_default_campaign
    from referral_plugin.referrals.ledger import grant_referral_rewards

    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/9"))
    campaign = ensure_default_campaign(shop)
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, friend_id=friend.id,
                        source="discount_code", status=ReferralStatus.REWARDED, shopify_order_id=555)
    db.session.add(referral)
    db.session.flush()
    grant_referral_rewards(shop, referral, campaign, order_id=555, hold=False, available_at=None)
    assert len(mocked_responses.calls) == 0  # nothing leaves before the commit
    db.session.commit()

    [issue] = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalars()
    assert issue.side == "advocate" and issue.discount_node_id == "gid://shopify/DiscountCodeNode/9"
    assert len(mocked_responses.calls) == 1


def test_code_taken_but_not_found_is_retried_not_failed(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """"Taken" with no discount found yet is transient: retried later, never recorded as a failure."""
    url = graphql_url(app)
    mocked_responses.post(url, json=user_errors({"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                                                 "message": "Code must be unique."}))
    mocked_responses.post(url, json={"data": {"codeDiscountNodeByCode": None}})
    grant = make_grant()
    schedule(grant.id)

    assert issue_rows(grant) == []
    assert db.session.execute(select(AuditEvent)).first() is None
    assert len(get_queue(app).huey.scheduled()) == 1
