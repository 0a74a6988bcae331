"""Faults: Shopify failing in every way, a database error inside a webhook, a worker killed in the middle of a job.

The app runs as in production: gunicorn (4 workers) on PostgreSQL, a Huey consumer (``flask --app app worker``)
on Redis, and Shopify played by a fake on loopback that the app reaches through ``SHOPIFY_BASE_URL_TEMPLATE``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from referral_plugin import create_app
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from referral_plugin.models import WebhookDelivery
from tests.scale.harness import ROOT
from tests.scale.harness import SHOP
from tests.scale.harness import AppServer
from tests.scale.harness import FakeShopify
from tests.scale.harness import app_config
from tests.scale.harness import app_environment
from tests.scale.harness import signed_webhook
from tests.scale.scenario import advocate_with_code
from tests.scale.scenario import count
from tests.scale.scenario import earning_rows_by_side
from tests.scale.scenario import install
from tests.scale.scenario import paid_order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


class Worker:
    """``flask --app app worker`` as its own process group, so it can be killed like a crashed machine."""

    def __init__(self, env: t.Mapping[str, str]) -> None:
        self.log = Path(tempfile.mkstemp(prefix="rp-worker-", suffix=".log")[1])
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", "2", "--no-periodic"],
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acknowledgement, like a lost machine."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop it (SIGINT, then SIGKILL) and remove its log."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.unlink(missing_ok=True)

    def output(self) -> str:
        """Return what the worker wrote."""
        return self.log.read_text(errors="replace")[-10000:]


@pytest.fixture
def start_worker(pg_database: str, redis_url: str, fake_shopify: FakeShopify) -> Iterator[Callable[[], Worker]]:
    """Return a function that starts a job consumer on the test database and Redis."""
    workers: list[Worker] = []

    def start() -> Worker:
        env = app_environment(
            pg_database, redis_url=redis_url, shopify_base_url_template=fake_shopify.base_url_template
        )
        worker = Worker(env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def discount_campaign(scale_app: Flask) -> tuple[Shop, str]:
    """Install the shop with a default campaign that rewards the advocate with a $10 discount code."""
    shop = install(SHOP)
    campaign = db.session.scalar(select(Campaign).where(Campaign.shop_id == shop.id, Campaign.is_default))
    assert campaign is not None
    campaign.advocate_reward_kind = RewardKind.FIXED_AMOUNT
    campaign.advocate_reward_value = t.cast(t.Any, 10)
    db.session.commit()
    _, code = advocate_with_code(shop, 7001, "ada@example.com")
    return shop, code.code


def _deliver(server: AppServer, topic: str, payload: dict[str, t.Any], webhook_id: str | None = None) -> int:
    body, headers = signed_webhook(topic, payload, webhook_id=webhook_id or str(uuid.uuid4()))
    return requests.post(server.url + "/webhooks", data=body, headers=headers, timeout=30).status_code


def _advocate_grant(shop: Shop) -> LedgerEntry:
    db.session.expire_all()
    grant = db.session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.shop_id == shop.id,
            LedgerEntry.side == Side.ADVOCATE,
            LedgerEntry.entry_type.in_([EntryType.GRANT, EntryType.HOLD]),
        )
    )
    assert grant is not None
    return grant


def _issue_rows(shop: Shop) -> list[LedgerEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.shop_id == shop.id, LedgerEntry.entry_type == EntryType.ISSUE)
        )
    )


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()}")
        time.sleep(0.25)


def _sweep(pg_database: str, redis_url: str, fake: FakeShopify) -> list[int]:
    """Run the periodic sweeper once, as the consumer's scheduler would, with no grace period."""
    from referral_plugin.rewards.sweeper import sweep

    sweeper = create_app(
        app_config(
            pg_database,
            HUEY_IMMEDIATE=False,
            REDIS_URL=redis_url,
            DISCOUNT_REQUEUE_AFTER_MINUTES=0,
            SHOPIFY_BASE_URL_TEMPLATE=fake.base_url_template,
        )
    )
    with sweeper.app_context():
        result = sweep()
        db.session.remove()
        db.engine.dispose()
    return list(result.requeued)


def test_shopify_failures_leave_the_reward_pending_then_issue_it_once(
    scale_app: Flask,
    discount_campaign: tuple[Shop, str],
    start_server: Callable[..., AppServer],
    start_worker: Callable[[], Worker],
    fake_shopify: FakeShopify,
    pg_database: str,
    redis_url: str,
) -> None:
    """429 with Retry-After, 500, THROTTLED, a dropped connection and a timeout: pending, then exactly one code."""
    shop, code = discount_campaign
    server = start_server()
    fake_shopify.slow_seconds = 12  # longer than the Admin client's 10 s timeout; Shopify still creates it
    fake_shopify.script("429", "500", "throttled", "drop", "slow")
    assert _deliver(server, "orders/paid", paid_order_payload(5_560_001, 8001, "fran@example.org", code)) == 200
    grant = _advocate_grant(shop)
    assert _issue_rows(shop) == []  # Shopify's state never holds up the webhook: the reward waits, recorded
    worker = start_worker()

    def log() -> str:
        return worker.output() + server.log()

    # 429 (client waits Retry-After), 500, THROTTLED, dropped connection: the job fails and is retried with backoff;
    # then a timeout, after which Shopify creates the code anyway and the answer is lost.
    _wait_for(lambda: not fake_shopify.faults and len(fake_shopify.codes(SHOP)) == 1, 90, "the faults to play", log)
    assert _issue_rows(shop) == []  # still pending: nothing recorded while Shopify failed
    # The sweeper re-queues the stale grant rather than waiting for the job's next backoff; the job adopts the
    # code the lost answer created, and the job's own pending retry later finds it issued.
    _sweep(pg_database, redis_url, fake_shopify)
    _wait_for(lambda: bool(_issue_rows(shop)), 60, "the discount to be issued", log)
    time.sleep(1)
    issues = _issue_rows(shop)
    assert len(issues) == 1, log()
    assert issues[0].related_entry_id == grant.id
    codes = fake_shopify.codes(SHOP)
    assert len(codes) == 1, fake_shopify.discount_creations()
    assert issues[0].discount_code is not None and issues[0].discount_code.upper() in codes


def test_worker_killed_mid_job_runs_again_and_issues_once(
    scale_app: Flask,
    discount_campaign: tuple[Shop, str],
    start_server: Callable[..., AppServer],
    start_worker: Callable[[], Worker],
    fake_shopify: FakeShopify,
    pg_database: str,
    redis_url: str,
) -> None:
    """SIGKILL the consumer while Shopify is creating the discount: the sweeper re-queues it, one code results."""
    shop, code = discount_campaign
    server = start_server()
    fake_shopify.hold = threading.Event()
    assert _deliver(server, "orders/paid", paid_order_payload(5_560_002, 8002, "frank@example.org", code)) == 200
    first = start_worker()
    _wait_for(fake_shopify.holding.is_set, 60, "the job to reach Shopify", first.output)
    first.kill()
    # Shopify finishes creating the discount the dead worker asked for; its answer goes nowhere.
    fake_shopify.hold.set()
    _wait_for(lambda: len(fake_shopify.codes(SHOP)) == 1, 10, "Shopify to create the code", first.output)
    assert _issue_rows(shop) == []  # the job died before recording anything: the reward is still pending
    fake_shopify.hold = None

    second = start_worker()
    requeued = _sweep(pg_database, redis_url, fake_shopify)
    assert _advocate_grant(shop).id in requeued
    _wait_for(lambda: bool(_issue_rows(shop)), 60, "the re-queued job to issue the discount", second.output)
    time.sleep(1)
    assert len(_issue_rows(shop)) == 1
    assert len(fake_shopify.codes(SHOP)) == 1  # adopted the code the dead worker created, made no second one


FAIL_ONCE_SQL = """
CREATE SEQUENCE scale_fail_once;
CREATE FUNCTION scale_fail_once() RETURNS trigger AS $$
BEGIN
  -- Sequences are not transactional: the rollback of the failed delivery does not reset the count.
  IF nextval('scale_fail_once') = 1 THEN
    RAISE EXCEPTION 'injected failure in the middle of a webhook';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER scale_fail_once BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION scale_fail_once();
"""


def test_database_error_mid_webhook_leaves_nothing_and_the_redelivery_succeeds(
    scale_app: Flask, start_server: Callable[..., AppServer]
) -> None:
    """The first ledger insert fails: 5xx, no attribution, referral or ledger row; Shopify's retry then succeeds."""
    shop = install(SHOP)
    _, code = advocate_with_code(shop, 7001, "ada@example.com")
    with db.engine.begin() as connection:
        connection.execute(text(FAIL_ONCE_SQL))
    server = start_server()
    order = paid_order_payload(5_560_003, 8003, "fay@example.org", code.code)
    webhook_id = str(uuid.uuid4())

    first = _deliver(server, "orders/paid", order, webhook_id)
    assert 500 <= first < 600, server.log()
    db.session.expire_all()
    assert count(OrderAttribution, shop) == 0
    assert count(Referral, shop) == 0
    assert earning_rows_by_side(shop) == {}
    failed = db.session.scalar(
        select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "failed")
    )
    assert failed == 1

    assert _deliver(server, "orders/paid", order, webhook_id) == 200  # Shopify's retry: same webhook id
    assert earning_rows_by_side(shop) == {"advocate": 1, "friend": 1}
    assert count(OrderAttribution, shop) == 1
    assert count(Referral, shop) == 1
