"""Real consumers: Huey on a real Redis and on SQLite, in-process threads and the ``flask worker`` command."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest
import redis
import responses as responses_lib
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.jobs import start_inprocess_consumer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.rewards import schedule_discount_issue
from tests.conftest import wait_until
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def wait_for_issue(grant_id: int, timeout: float = 30.0) -> LedgerEntry:
    """Poll the database until the grant's ISSUE row is committed by the consumer."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        issue = db.session.execute(
            select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE,
                                      LedgerEntry.related_entry_id == grant_id)
        ).scalar_one_or_none()
        if issue is not None:
            return issue
        if time.monotonic() > deadline:
            raise AssertionError(f"no ISSUE row for grant {grant_id} after {timeout}s")
        time.sleep(0.1)



class TestRedisConsumer:
    """Huey on a real Redis with a consumer running in this process."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], redis_url: str) -> dict[str, t.Any]:
        """Queue through Redis instead of running jobs inline."""
        return {**app_config, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url}

    def test_job_goes_through_redis_and_a_consumer_issues_the_discount(
        self, app: Flask, redis_url: str, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
    ) -> None:
        """The committed job sits in Redis until a consumer thread takes it and issues the discount once."""
        huey = get_queue(app).huey
        huey.flush()
        mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/42"))
        grant = make_grant(commit=False)
        schedule_discount_issue(grant.id)
        assert huey.pending_count() == 0  # not before the commit
        db.session.commit()
        assert redis.Redis.from_url(redis_url).llen("huey.redis.referralplugin") == 1

        consumer = start_inprocess_consumer(app, workers=2)
        try:
            issue = wait_for_issue(grant.id)
            # The scheduler enqueues the periodic sweepers as it starts; the workers drain those too.
            drained = wait_until(lambda: huey.pending_count() == 0)
        finally:
            consumer.stop(graceful=True)
        assert issue.discount_node_id == "gid://shopify/DiscountCodeNode/42"
        assert drained, f"{huey.pending_count()} job(s) still queued"
        assert len(mocked_responses.calls) == 1


class TestSqliteConsumer:
    """The default storage: a SQLite file next to the app's data, consumed in-process."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], tmp_path: Path) -> dict[str, t.Any]:
        """Queue through a SQLite file instead of running jobs inline."""
        return {**app_config, "HUEY_IMMEDIATE": False, "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite")}

    def test_in_process_consumer_runs_the_job(
        self, app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
    ) -> None:
        """``python app.py`` style: a consumer thread in the web process issues the queued discount."""
        huey = get_queue(app).huey
        assert type(huey).__name__ == "SqliteHuey"
        mocked_responses.post(graphql_url(app), json=created())
        grant = make_grant(commit=False)
        schedule_discount_issue(grant.id)
        db.session.commit()
        assert huey.pending_count() == 1

        consumer = start_inprocess_consumer(app)
        try:
            wait_for_issue(grant.id)
        finally:
            consumer.stop(graceful=True)
        assert len(mocked_responses.calls) == 1


class FakeShopify(http.server.BaseHTTPRequestHandler):
    """Answer every Admin GraphQL call with a created discount; remember the bodies."""

    bodies: t.ClassVar[list[dict[str, t.Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """Record the call and answer like ``discountCodeBasicCreate``."""
        length = int(self.headers.get("Content-Length") or 0)
        FakeShopify.bodies.append(json.loads(self.rfile.read(length)))
        answer = json.dumps(created("gid://shopify/DiscountCodeNode/7")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - http.server's signature
        """Keep the test output quiet."""


@pytest.fixture
def fake_shopify() -> t.Iterator[str]:
    """Run a fake Shopify Admin API on loopback; return its base URL."""
    FakeShopify.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeShopify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestWorkerCommand:
    """``flask --app app worker`` as its own process, on Redis, against a fake Shopify on loopback."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], redis_url: str, fake_shopify: str) -> dict[str, t.Any]:
        """Queue through Redis and call the fake Shopify."""
        return {**app_config, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url,
                "SHOPIFY_BASE_URL_TEMPLATE": fake_shopify}

    def test_worker_process_consumes_the_queue(self, app: Flask, app_config: dict[str, t.Any], tmp_path: Path,
                                               make_grant: GrantFactory) -> None:
        """A separate worker process picks the job from Redis and issues the discount; SIGTERM stops it."""
        get_queue(app).huey.flush()
        grant = make_grant(commit=False)
        schedule_discount_issue(grant.id)
        db.session.commit()

        env = {key: value for key, value in os.environ.items() if not key.startswith(("SHOPIFY_", "MAIL_"))}
        env.update({
            "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app_config["REDIS_URL"],
            "SECRET_KEY": app_config["SECRET_KEY"], "SHOPIFY_API_KEY": app_config["SHOPIFY_API_KEY"],
            "SHOPIFY_API_SECRET": app_config["SHOPIFY_API_SECRET"],
            "SHOPIFY_BASE_URL_TEMPLATE": app_config["SHOPIFY_BASE_URL_TEMPLATE"],
        })
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", "1"],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            issue = wait_for_issue(grant.id)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.close()
        output = (tmp_path / "worker.log").read_text()
        assert issue.discount_node_id == "gid://shopify/DiscountCodeNode/7", output
        assert len(FakeShopify.bodies) == 1
        assert FakeShopify.bodies[0]["variables"]["d"]["usageLimit"] == 1
        assert "Job consumer on redis storage with 1 worker(s)" in output
