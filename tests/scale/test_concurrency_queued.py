"""Exactly-once with the queued intake: gunicorn answers after the insert, two consumer processes run the jobs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
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

from referral_plugin.extensions import db
from referral_plugin.models import OrderAttribution
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from tests.scale.harness import ROOT
from tests.scale.harness import SHOP
from tests.scale.harness import AppServer
from tests.scale.harness import FakeShopify
from tests.scale.harness import app_environment
from tests.scale.harness import concurrently
from tests.scale.harness import signed_webhook
from tests.scale.scenario import advocate_with_code
from tests.scale.scenario import count
from tests.scale.scenario import earning_rows_by_side
from tests.scale.scenario import install
from tests.scale.scenario import paid_order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DELIVERIES = 50
QUEUED = {"WEBHOOK_PROCESSING": "queued"}


@pytest.fixture
def consumers(pg_database: str, redis_url: str, fake_shopify: FakeShopify) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start two ``flask --app app worker`` processes (4 threads each) on the test database and Redis."""
    env = app_environment(pg_database, redis_url=redis_url,
                          shopify_base_url_template=fake_shopify.base_url_template, extra=QUEUED)
    logs = [Path(tempfile.mkstemp(prefix="rp-consumer-", suffix=".log")[1]) for _ in range(2)]
    processes = []
    for log in logs:
        with open(log, "wb") as out:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", "4"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            ))
    yield processes
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for log in logs:
        log.unlink(missing_ok=True)


def _post(server: AppServer, body: bytes, headers: dict[str, str]) -> Callable[[], t.Any]:
    def call() -> t.Any:
        response = requests.post(server.url + "/webhooks", data=body, headers=headers, timeout=30)
        return response.status_code, response.json()["status"]

    return call


def _drained(expected_rows: int, timeout: float = 120.0) -> dict[str, int]:
    """Wait until every stored delivery left the queue; return the rows per status."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        rows = {str(status): int(n) for status, n in db.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()}
        if sum(rows.values()) == expected_rows and not rows.get("queued") and not rows.get("failed"):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries still waiting after {timeout}s: {rows}")
        time.sleep(0.2)


@pytest.fixture
def referral_setup(scale_app: Flask) -> tuple[Shop, ReferralCode]:
    """Install the shop and give an advocate a code."""
    shop = install(SHOP)
    _, code = advocate_with_code(shop, 7001, "ada@example.com")
    return shop, code


def test_same_order_with_distinct_webhook_ids_grants_once_after_the_workers_drain(
    scale_app: Flask, referral_setup: tuple[Shop, ReferralCode], start_server: Callable[..., AppServer],
    consumers: list[subprocess.Popen[bytes]],
) -> None:
    """50 deliveries of one paid order under 50 webhook ids, at once: all queued, one grant per side."""
    shop, code = referral_setup
    server = start_server(**QUEUED)
    order = paid_order_payload(5_560_001, 8101, "fran@example.org", code.code)
    calls = []
    for _ in range(DELIVERIES):
        body, headers = signed_webhook("orders/paid", order, webhook_id=str(uuid.uuid4()))
        calls.append(_post(server, body, headers))
    results = concurrently(calls)
    assert results == [(200, "queued")] * DELIVERIES, server.log()
    assert _drained(DELIVERIES) == {"processed": DELIVERIES}
    assert earning_rows_by_side(shop) == {"advocate": 1, "friend": 1}
    assert count(OrderAttribution, shop) == 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(WebhookDelivery.payload.is_not(None))) == 0


def test_same_delivery_fifty_times_is_stored_and_processed_once(
    scale_app: Flask, referral_setup: tuple[Shop, ReferralCode], start_server: Callable[..., AppServer],
    consumers: list[subprocess.Popen[bytes]],
) -> None:
    """50 copies of one delivery at once: one ``queued`` answer, 49 duplicates, one row, one grant per side."""
    shop, code = referral_setup
    server = start_server(**QUEUED)
    order = paid_order_payload(5_560_002, 8102, "frank@example.org", code.code)
    body, headers = signed_webhook("orders/paid", order, webhook_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()))
    results = concurrently([_post(server, body, headers) for _ in range(DELIVERIES)])
    assert sorted(results) == [(200, "duplicate")] * (DELIVERIES - 1) + [(200, "queued")], server.log()
    assert _drained(1) == {"processed": 1}
    assert earning_rows_by_side(shop) == {"advocate": 1, "friend": 1}
    assert count(OrderAttribution, shop) == 1
