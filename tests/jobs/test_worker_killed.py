"""Fault proof: a worker killed in the middle of a job; the reward is still issued, and only once."""

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
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.rewards import schedule_discount_issue
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import user_errors
from tests.jobs.test_consumers import wait_for_issue

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class StatefulShopify:
    """A fake Admin API that keeps the discounts it creates and can hang on the first answer (a lost response)."""

    def __init__(self) -> None:
        self.discounts: dict[str, str] = {}
        self.creates = 0
        self.first_create_seen = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def answer(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Create, refuse a taken code, or look a code up, like Shopify."""
        if "codeDiscountNodeByCode" in body["query"]:
            node = self.discounts.get(body["variables"]["code"])
            return {"data": {"codeDiscountNodeByCode": {"id": node} if node else None}}
        code = body["variables"]["d"]["code"]
        with self.lock:
            if code in self.discounts:
                return user_errors({"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                                    "message": "Code must be unique. Please try a different code."})
            self.creates += 1
            self.discounts[code] = f"gid://shopify/DiscountCodeNode/{1000 + self.creates}"
            first = self.creates == 1
            node = self.discounts[code]
        if first:
            # The discount exists in Shopify now, but its answer never gets back to the worker.
            self.first_create_seen.set()
            self.release.wait(30)
        return {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": node}, "userErrors": []}}}


@pytest.fixture
def shopify_api() -> t.Iterator[tuple[StatefulShopify, str]]:
    """Serve the stateful fake Admin API on loopback."""
    state = StatefulShopify()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            answer = json.dumps(state.answer(json.loads(self.rfile.read(length)))).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the worker that asked is dead

        def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def app_config(app_config: dict[str, t.Any], redis_url: str,
               shopify_api: tuple[StatefulShopify, str]) -> dict[str, t.Any]:
    """Queue through Redis and call the stateful fake Shopify."""
    return {**app_config, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url,
            "SHOPIFY_BASE_URL_TEMPLATE": shopify_api[1]}


def start_worker(app_config: dict[str, t.Any], log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    """Start ``flask --app app worker`` on the test's database, Redis and fake Shopify."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SHOPIFY_", "MAIL_"))}
    env.update({
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app_config["REDIS_URL"],
        "SECRET_KEY": app_config["SECRET_KEY"], "SHOPIFY_API_KEY": app_config["SHOPIFY_API_KEY"],
        "SHOPIFY_API_SECRET": app_config["SHOPIFY_API_SECRET"],
        "SHOPIFY_BASE_URL_TEMPLATE": app_config["SHOPIFY_BASE_URL_TEMPLATE"], **extra_env,
    })
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", "1"],
                                cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a worker this test started."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_killed_worker_then_sweeper_issues_the_reward_once(
    app: Flask, app_config: dict[str, t.Any], tmp_path: Path, make_grant: GrantFactory,
    shopify_api: tuple[StatefulShopify, str],
) -> None:
    """SIGKILL after Shopify made the code but before the answer: the next worker's sweep adopts it, once."""
    state, _ = shopify_api
    huey = get_queue(app).huey
    huey.flush()
    log = tmp_path / "workers.log"
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.commit()

    first = start_worker(app_config, log)
    try:
        assert state.first_create_seen.wait(30), log.read_text()
    finally:
        stop(first, signal.SIGKILL)
    state.release.set()
    db.session.rollback()
    assert db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).first() is None
    assert "rewards.issue_discount" not in [task.name for task in huey.pending()]  # the job died with the worker

    # A new worker: its scheduler sweeps at start, and the grant is already past the re-queue delay.
    second = start_worker(app_config, log, DISCOUNT_REQUEUE_AFTER_MINUTES="0")
    try:
        issue = wait_for_issue(grant.id, timeout=45)
    finally:
        stop(second)
    time.sleep(0.2)
    assert state.creates == 1, log.read_text()
    assert issue.discount_node_id == "gid://shopify/DiscountCodeNode/1001"
    assert len(db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).all()) == 1
