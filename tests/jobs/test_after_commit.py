"""Jobs leave only after their transaction commits: never on rollback, never before the rows exist."""

from __future__ import annotations

import typing as t

import pytest
import responses as responses_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import backoff_delay
from referral_plugin.jobs import is_transient
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Shop
from referral_plugin.rewards import schedule_discount_issue
from referral_plugin.webhooks import registry
from referral_plugin.webhooks.registry import Delivery
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url
from tests.shopify_actions import ShopifyActions


def issued_count() -> int:
    """Return how many ISSUE rows exist."""
    return len(db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).all())


def test_nothing_runs_before_commit(app: Flask, make_grant: GrantFactory,
                                    mocked_responses: responses_lib.RequestsMock) -> None:
    """A scheduled job waits for the commit even after a flush; then it runs once."""
    mocked_responses.post(graphql_url(app), json=created())
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.flush()
    assert len(mocked_responses.calls) == 0

    db.session.commit()
    assert len(mocked_responses.calls) == 1
    assert issued_count() == 1


def test_rollback_drops_the_job(app: Flask, make_grant: GrantFactory,
                                mocked_responses: responses_lib.RequestsMock) -> None:
    """A rolled-back unit of work enqueues nothing, and a later commit does not resurrect its jobs."""
    grant = make_grant()
    schedule_discount_issue(grant.id)
    db.session.rollback()
    db.session.commit()

    assert len(mocked_responses.calls) == 0
    assert issued_count() == 0


def test_savepoint_rollback_drops_only_its_own_jobs(app: Flask, make_grant: GrantFactory,
                                                    mocked_responses: responses_lib.RequestsMock) -> None:
    """A job scheduled in a rolled-back savepoint is dropped; one scheduled outside it still runs at commit."""
    mocked_responses.post(graphql_url(app), json=created())
    kept = make_grant(order_id=1, commit=False)
    schedule_discount_issue(kept.id)
    dropped = make_grant(order_id=2, commit=False)
    savepoint = db.session.begin_nested()
    schedule_discount_issue(dropped.id)
    savepoint.rollback()
    released = db.session.begin_nested()
    schedule_discount_issue(kept.id)  # a duplicate inside a released savepoint waits for the outer commit
    released.commit()
    assert len(mocked_responses.calls) == 0

    db.session.commit()
    assert len(mocked_responses.calls) == 1
    [issue] = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalars()
    assert issue.related_entry_id == kept.id


@pytest.fixture
def failing_topic(app: Flask) -> t.Iterator[str]:
    """Register a webhook topic whose handler writes a discount grant, schedules it, then fails."""
    topic = "test/grant_then_fail"

    def handler(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
        assert shop is not None
        entry = LedgerEntry(shop_id=shop.id, entry_type=EntryType.GRANT, side="advocate", reward_kind="percentage",
                            amount=10, idempotency_key="grant:1:advocate")
        db.session.add(entry)
        db.session.flush()
        schedule_discount_issue(entry.id)
        raise RuntimeError("the database went away mid-webhook")

    registry.register(topic, handler)
    yield topic
    registry._HANDLERS.pop(topic, None)


def test_failed_webhook_enqueues_nothing(app: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions,
                                         failing_topic: str, mocked_responses: responses_lib.RequestsMock) -> None:
    """A webhook whose handler fails is answered 5xx, keeps no grant and sends nothing to Shopify."""
    response = shopify.post_webhook(failing_topic, {"id": 1})

    assert response.status_code >= 500
    assert len(mocked_responses.calls) == 0
    assert db.session.execute(select(LedgerEntry)).first() is None


def test_backoff_doubles_and_is_capped() -> None:
    """Retry delays double from the base and never exceed an hour."""
    assert [backoff_delay(10, n) for n in range(4)] == [10, 20, 40, 80]
    assert backoff_delay(10, 30) == 3600


def test_transient_failures_are_told_apart_from_permanent_ones() -> None:
    """Throttling, 5xx and network errors are retried; userErrors and a revoked token are not."""
    import requests

    from referral_plugin.errors import ShopifyAPIError
    from referral_plugin.errors import ShopifyThrottled
    from referral_plugin.errors import ShopifyUnauthorized
    from referral_plugin.errors import ShopifyUserErrors

    assert is_transient(ShopifyThrottled()) and is_transient(ShopifyAPIError()) and is_transient(requests.Timeout())
    assert not is_transient(ShopifyUserErrors()) and not is_transient(ShopifyUnauthorized())
    assert not is_transient(ValueError())
