"""Queued intake (``WEBHOOK_PROCESSING=queued``): one durable insert in the request, the handler in a job."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from huey.storage import RedisStorage
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from referral_plugin import create_app
from referral_plugin.errors import ConfigurationError
from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.jobs import start_inprocess_consumer
from referral_plugin.models import AuditEvent
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.webhooks import registry
from referral_plugin.webhooks.queued import PROCESS_JOB
from referral_plugin.webhooks.queued import backlog
from referral_plugin.webhooks.queued import process_stored_delivery
from referral_plugin.webhooks.queued import sweep_deliveries
from referral_plugin.webhooks.registry import Delivery
from tests.conftest import make_shop
from tests.conftest import run_scheduled_retries
from tests.engine.conftest import customer_payload
from tests.engine.conftest import order_payload
from tests.servers import RedisServer
from tests.servers import ServerUnavailable
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions

TOPIC = "referral-plugin-test/queued"


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run the intake in queued mode (jobs still run at commit: ``HUEY_IMMEDIATE``)."""
    return {**app_config, "WEBHOOK_PROCESSING": "queued", "METRICS_TOKEN": "queued-metrics"}


class Recorder:
    """A test-only handler: writes an audit row per run, raises while ``failures`` is above zero, can block."""

    def __init__(self) -> None:
        self.calls: list[Delivery] = []
        self.failures = 0
        self.entered = threading.Event()
        self.release: threading.Event | None = None

    def __call__(self, shop: Shop | None, payload: registry.Payload, delivery: Delivery) -> None:
        self.calls.append(delivery)
        assert shop is not None
        db.session.add(AuditEvent(shop_id=shop.id, actor="test", action="queued-marker",
                                  details={"n": payload.get("n")}))
        db.session.flush()
        self.entered.set()
        if self.release is not None:
            self.release.wait(30)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("handler exploded after writing")


@pytest.fixture
def recorder(app: Flask) -> Iterator[Recorder]:
    """Register a test-only handler for TOPIC, and remove it afterwards."""
    handler = Recorder()
    registry.register(TOPIC, handler)
    yield handler
    registry._HANDLERS.pop(TOPIC, None)


def _deliveries() -> list[WebhookDelivery]:
    db.session.rollback()  # a fresh snapshot: jobs commit on their own connections (SQLite WAL reads a snapshot)
    return list(db.session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def _markers() -> int:
    db.session.rollback()
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "queued-marker")
    return int(db.session.execute(query).scalar_one())


def _snapshot() -> dict[str, t.Any]:
    """Return what the engine recorded, without ids or times: referrals, attributions and earning rows."""
    db.session.rollback()
    referrals = db.session.execute(select(Referral.status, Referral.source, Referral.shopify_order_id)).all()
    attributions = db.session.execute(
        select(OrderAttribution.shopify_order_id, OrderAttribution.decision, OrderAttribution.reason)
    ).all()
    ledger = db.session.execute(
        select(LedgerEntry.entry_type, LedgerEntry.side, LedgerEntry.points, LedgerEntry.reward_kind,
               LedgerEntry.shopify_order_id)
    ).all()
    return {
        "referrals": sorted(map(tuple, referrals)),
        "attributions": sorted(map(tuple, attributions)),
        "ledger": sorted(map(tuple, ledger)),
        "customers": db.session.execute(select(func.count()).select_from(Customer)).scalar_one(),
    }


def _referral_story(shopify: ShopifyActions) -> list[dict[str, t.Any]]:
    """Register an advocate and a friend, and pay the friend's first order with the advocate's code."""
    from referral_plugin.referrals.codes import codes_of
    from referral_plugin.referrals.customers import get_customer

    advocate = customer_payload(4101)
    friend = customer_payload(4102)
    answers = [shopify.post_webhook("customers/create", advocate).get_json(),
               shopify.post_webhook("customers/create", friend).get_json()]
    shop = db.session.execute(select(Shop)).scalar_one()
    db.session.expire_all()
    advocate_row = get_customer(shop, 4101)
    assert advocate_row is not None
    code = codes_of(advocate_row)[0].code
    answers.append(shopify.post_webhook("orders/paid", order_payload(friend, order_id=5_100_001, code=code),
                                        webhook_id="story-order").get_json())
    return answers


# --- Configuration ---------------------------------------------------------------------------------------------


def test_processing_mode_defaults_to_inline_and_is_read_from_the_environment(
    app_config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inline unless WEBHOOK_PROCESSING says queued; an unknown value stops the app at start."""
    base = {key: value for key, value in app_config.items() if key != "WEBHOOK_PROCESSING"}
    assert create_app(base).config["WEBHOOK_PROCESSING"] == "inline"
    monkeypatch.setenv("WEBHOOK_PROCESSING", "Queued")
    assert create_app(base).config["WEBHOOK_PROCESSING"] == "queued"
    with pytest.raises(ConfigurationError, match="WEBHOOK_PROCESSING"):
        create_app({**base, "WEBHOOK_PROCESSING": "later"})


# --- The request -------------------------------------------------------------------------------------------------


def test_accepted_delivery_is_processed_by_the_job_and_its_body_forgotten(
    shopify: ShopifyActions, recorder: Recorder, shop: Shop
) -> None:
    """200 ``queued``; the job runs the handler once, marks the row processed and clears the stored body."""
    response = shopify.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-1", event_id="ev-1")
    assert response.status_code == 200
    assert response.get_json() == {"status": "queued"}
    assert [d.webhook_id for d in recorder.calls] == ["wh-1"]
    assert recorder.calls[0].event_id == "ev-1" and recorder.calls[0].shop_domain == SHOP
    [row] = _deliveries()
    assert (row.status, row.attempts, row.payload, row.error) == ("processed", 1, None, None)
    assert row.processed_at is not None
    assert _markers() == 1


def test_stored_body_is_cleaned_like_the_inline_intake_cleans_it(shopify: ShopifyActions, shop: Shop) -> None:
    """NUL and a lone surrogate in a queued delivery's strings are cleaned by the job too: processed, not failed."""
    payload = customer_payload(9401, first_name="Ada\u0000", last_name="L\ud800")
    assert shopify.post_webhook("customers/create", payload).get_json() == {"status": "queued"}
    [row] = _deliveries()
    assert (row.status, row.error) == ("processed", None)
    customer = db.session.execute(select(Customer).where(Customer.shopify_customer_id == 9401)).scalar_one()
    assert (customer.first_name, customer.last_name) == ("Ada", "L\ufffd")


def test_queued_mode_gives_the_same_results_as_inline(
    app: Flask, shopify: ShopifyActions, shop: Shop, app_config: dict[str, t.Any], tmp_path: Path
) -> None:
    """A referral story through the queued intake records what the inline intake records: referral, attribution,
    both ledger rows."""
    assert _referral_story(shopify) == [{"status": "queued"}] * 3
    queued = _snapshot()
    assert all(d.status == "processed" and d.payload is None for d in _deliveries())

    inline_app = create_app({**app_config, "WEBHOOK_PROCESSING": "inline",
                             "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'inline.sqlite'}"})
    with inline_app.app_context():
        db.create_all()
        make_shop()
        assert _referral_story(ShopifyActions(inline_app.test_client())) == [{"status": "processed"}] * 3
        inline = _snapshot()
        db.session.remove()
        db.engine.dispose()
    assert queued == inline
    earning = [row for row in queued["ledger"] if row[0] in (EntryType.GRANT, EntryType.HOLD)]
    assert sorted(row[1] for row in earning) == ["advocate", "friend"]
    assert len(queued["referrals"]) == 1 and len(queued["attributions"]) == 1


def test_same_webhook_id_and_same_event_id_are_duplicates(
    shopify: ShopifyActions, recorder: Recorder, shop: Shop
) -> None:
    """A repeat by webhook id, or by (topic, event id) under a new webhook id, is 200 ``duplicate`` and runs nothing."""
    assert shopify.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-1", event_id="ev-1").get_json() == {
        "status": "queued"}
    again = shopify.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-1", event_id="ev-1")
    same_event = shopify.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-2", event_id="ev-1")
    assert (again.status_code, again.get_json()) == (200, {"status": "duplicate"})
    assert (same_event.status_code, same_event.get_json()) == (200, {"status": "duplicate"})
    assert len(recorder.calls) == 1
    assert len(_deliveries()) == 1
    assert _markers() == 1


def test_repeat_of_a_delivery_still_queued_is_a_duplicate_without_a_second_job(
    app_config: dict[str, t.Any], tmp_path: Path, recorder: Recorder, shop: Shop, app: Flask
) -> None:
    """While the first copy waits in the queue, a redelivery is answered 200 and adds no job."""
    queued_app = create_app({**app_config, "HUEY_IMMEDIATE": False,
                             "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite")})
    with queued_app.app_context():
        huey = get_queue(queued_app).huey
        actions = ShopifyActions(queued_app.test_client())
        assert actions.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-q").get_json() == {"status": "queued"}
        assert actions.post_webhook(TOPIC, {"n": 1}, webhook_id="wh-q").get_json() == {"status": "duplicate"}
        get_queue(queued_app).batcher.flush()
        assert huey.pending_count() == 1
        [row] = _deliveries()
        assert row.status == "queued" and json.loads(row.payload or "") == {"n": 1}
        assert recorder.calls == []
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"valid": False}, 401),
        ({"body": b"{not json"}, 400),
        ({"body": b"[1, 2]"}, 400),
        ({"headers": {"X-Shopify-Topic": ""}}, 400),
        ({"headers": {"X-Shopify-Shop-Domain": "evil.example.com"}}, 400),
    ],
    ids=["bad-hmac", "malformed-json", "not-an-object", "missing-topic", "bad-shop-domain"],
)
def test_rejected_deliveries_store_nothing(shopify: ShopifyActions, recorder: Recorder, shop: Shop,
                                           change: dict[str, t.Any], status: int) -> None:
    """The same 401/400 rules as the inline intake, checked before anything is stored or queued."""
    body = change.get("body", b'{"n": 1}')
    response = shopify.post_webhook(TOPIC, body, valid=change.get("valid", True), headers=change.get("headers"))
    assert response.status_code == status
    assert _deliveries() == []
    assert recorder.calls == []


def test_unknown_topic_is_recorded_as_ignored_without_a_body(shopify: ShopifyActions, shop: Shop) -> None:
    """A topic the app does not handle is answered ``ignored``; nothing is kept to process."""
    response = shopify.post_webhook("referral-plugin-test/unknown", {"email": "someone@example.com"})
    assert response.get_json() == {"status": "ignored"}
    [row] = _deliveries()
    assert (row.status, row.payload) == ("ignored", None)


# --- The job -----------------------------------------------------------------------------------------------------


def test_handler_failure_is_recorded_retried_and_succeeds_once(
    app: Flask, shopify: ShopifyActions, recorder: Recorder, shop: Shop
) -> None:
    """Shopify still gets 200; the failed run leaves no rows and a ``failed`` delivery; Huey's retry processes it."""
    recorder.failures = 1
    response = shopify.post_webhook(TOPIC, {"n": 5}, webhook_id="wh-fail")
    assert (response.status_code, response.get_json()) == (200, {"status": "queued"})
    [row] = _deliveries()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error is not None and "handler exploded" in row.error
    assert row.payload is not None  # kept for the retry
    assert _markers() == 0  # the failed run's writes were rolled back

    assert run_scheduled_retries(app) == 1
    [row] = _deliveries()
    assert (row.status, row.attempts, row.payload, row.error) == ("processed", 2, None, None)
    assert _markers() == 1
    assert len(recorder.calls) == 2
    assert process_stored_delivery(row.id) == "duplicate"  # a late extra run changes nothing
    assert _markers() == 1


def test_redelivery_of_a_failed_delivery_requeues_it(shopify: ShopifyActions, recorder: Recorder, shop: Shop) -> None:
    """Shopify's copy of a delivery whose job failed claims the row back to the queue and is processed once."""
    recorder.failures = 1
    shopify.post_webhook(TOPIC, {"n": 6}, webhook_id="wh-again")
    assert [d.status for d in _deliveries()] == ["failed"]
    response = shopify.post_webhook(TOPIC, {"n": 6}, webhook_id="wh-again")
    assert response.get_json() == {"status": "queued"}
    [row] = _deliveries()
    assert (row.status, row.attempts, row.payload) == ("processed", 2, None)
    assert _markers() == 1


def test_two_concurrent_runs_of_one_job_process_it_once(app: Flask, recorder: Recorder, shop: Shop,
                                                        app_config: dict[str, t.Any], tmp_path: Path) -> None:
    """The claim is the first write of the job's transaction: a second run waits for the first, then finds nothing."""
    parked = create_app({**app_config, "HUEY_IMMEDIATE": False, "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite")})
    with parked.app_context():
        assert ShopifyActions(parked.test_client()).post_webhook(TOPIC, {"n": 2}).status_code == 200
        delivery_id = _deliveries()[0].id
        db.session.remove()
        db.engine.dispose()
    recorder.release = threading.Event()
    results: dict[str, str] = {}

    def run(name: str) -> None:
        with app.app_context():
            try:
                results[name] = process_stored_delivery(delivery_id)
            except Exception as exc:  # noqa: BLE001 - reported through the assertion below
                results[name] = repr(exc)
            finally:
                db.session.remove()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert recorder.entered.wait(30)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    time.sleep(0.3)  # let the second run reach its claim and wait on the first one's lock
    recorder.release.set()
    first.join(30)
    second.join(30)
    assert results == {"first": "processed", "second": "duplicate"}
    assert len(recorder.calls) == 1
    assert _markers() == 1


# --- The sweeper ---------------------------------------------------------------------------------------------


def _lose_jobs(app: Flask) -> None:
    """Drop every job handed over so far, the batcher's included, as a process dying before the enqueue would."""
    queue = get_queue(app)
    queue.batcher.flush()
    queue.huey.flush()


@pytest.fixture
def parked_app(app_config: dict[str, t.Any], tmp_path: Path, app: Flask) -> Iterator[Flask]:
    """Return a second app on the same database whose jobs wait in a SQLite queue instead of running."""
    parked = create_app({**app_config, "HUEY_IMMEDIATE": False, "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite")})
    with parked.app_context():
        yield parked
        db.session.remove()
        db.engine.dispose()


def test_sweeper_requeues_a_delivery_whose_job_was_lost(parked_app: Flask, recorder: Recorder, shop: Shop) -> None:
    """A delivery still ``queued`` after the interval (its job lost) is queued again, once per interval."""
    huey = get_queue(parked_app).huey
    ShopifyActions(parked_app.test_client()).post_webhook(TOPIC, {"n": 3}, webhook_id="wh-lost")
    _lose_jobs(parked_app)  # the job is lost: a process died between the commit and the enqueue
    now = dt.datetime.now(dt.UTC)
    assert sweep_deliveries(now) == {"lost": [], "failed": []}  # too fresh: its job may still be on its way

    later = now + dt.timedelta(minutes=3)
    [row] = _deliveries()
    huey.enqueue(get_queue(parked_app).tasks[PROCESS_JOB].s(0))  # another delivery's job waits in the queue
    assert sweep_deliveries(later)["lost"] == []  # a backlog, not a lost job: wait for the queue to drain
    huey.flush()
    assert sweep_deliveries(later)["lost"] == [row.id]
    assert sweep_deliveries(later)["lost"] == []  # not twice in one interval
    assert huey.pending_count() == 1
    huey.execute(huey.dequeue())
    [row] = _deliveries()
    assert (row.status, row.payload) == ("processed", None)
    assert _markers() == 1


def test_failed_deliveries_are_retried_until_the_cap_then_counted_as_dead_letters(
    parked_app: Flask, recorder: Recorder, shop: Shop
) -> None:
    """The sweeper retries a ``failed`` delivery under WEBHOOK_MAX_ATTEMPTS; at the cap it stays failed and counted."""
    ShopifyActions(parked_app.test_client()).post_webhook(TOPIC, {"n": 4}, webhook_id="wh-dead")
    [row] = _deliveries()
    now = dt.datetime.now(dt.UTC)
    db.session.execute(update(WebhookDelivery).values(status="failed", attempts=3, error="boom",
                                                      processed_at=now - dt.timedelta(minutes=30)))
    db.session.commit()
    _lose_jobs(parked_app)
    assert sweep_deliveries(now)["failed"] == [row.id]
    assert backlog() == {"queued": 0, "failed": 1, "dead": 0}

    db.session.execute(update(WebhookDelivery).values(attempts=10))
    db.session.commit()
    assert sweep_deliveries(now + dt.timedelta(hours=1)) == {"lost": [], "failed": []}
    assert backlog() == {"queued": 0, "failed": 0, "dead": 1}
    metrics = parked_app.test_client().get("/metrics", headers={"Authorization": "Bearer queued-metrics"})
    assert 'referral_webhook_backlog{state="dead"} 1.0' in metrics.get_data(as_text=True)


def _dead_letter(actions: ShopifyActions, webhook_id: str, *, attempts: int = 10, body: bool = True) -> int:
    """Store a delivery and make it a failed one (a dead letter at the default cap of 10 attempts)."""
    actions.post_webhook(TOPIC, {"n": webhook_id}, webhook_id=webhook_id)
    row_id = db.session.execute(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook_id)).scalar_one()
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == row_id).values(
        status="failed", attempts=attempts, error="RuntimeError: boom", **({} if body else {"payload": None})))
    db.session.commit()
    return row_id


def test_replay_queues_dead_letters_again_with_a_fresh_budget(parked_app: Flask, recorder: Recorder,
                                                              shop: Shop) -> None:
    """``webhooks replay`` lists (``--dry-run``), then re-queues the dead letters that hold a body, and they run."""
    actions = ShopifyActions(parked_app.test_client())
    dead = _dead_letter(actions, "wh-dead-1")
    _dead_letter(actions, "wh-failing", attempts=3)  # still retried by the sweeper: not a dead letter
    _dead_letter(actions, "wh-no-body", body=False)  # nothing to run: Shopify's redelivery is the way
    huey = get_queue(parked_app).huey
    _lose_jobs(parked_app)
    runner = parked_app.test_cli_runner()

    listed = runner.invoke(args=["webhooks", "replay", "--dry-run"])
    assert (listed.exit_code, listed.output) == (0, f"would re-queue 1 delivery: {dead}\n")
    assert backlog() == {"queued": 0, "failed": 1, "dead": 2} and huey.pending_count() == 0

    result = runner.invoke(args=["webhooks", "replay"])
    assert (result.exit_code, result.output) == (0, f"re-queued 1 delivery: {dead}\n")
    row = db.session.get(WebhookDelivery, dead)
    assert row is not None and (row.status, row.attempts) == ("queued", 0)
    assert huey.pending_count() == 1
    huey.execute(huey.dequeue())
    db.session.expire_all()
    assert (row.status, row.payload, row.error) == ("processed", None, None)
    assert [call.webhook_id for call in recorder.calls] == ["wh-dead-1"]
    shown = runner.invoke(args=["webhooks", "backlog"])
    assert shown.output == "queued 0\nfailed 1\ndead 1\n"


def test_replay_by_id_shop_and_topic(parked_app: Flask, recorder: Recorder, shop: Shop) -> None:
    """``--id`` takes a failed delivery dead or not; ``--shop`` and ``--topic`` narrow; a bad domain is refused."""
    actions = ShopifyActions(parked_app.test_client())
    failing = _dead_letter(actions, "wh-failing", attempts=3)
    dead = _dead_letter(actions, "wh-dead-2")
    runner = parked_app.test_cli_runner()

    assert runner.invoke(args=["webhooks", "replay", "--shop", "other-shop.myshopify.com"]).output == (
        "re-queued 0 deliveries\n")
    assert runner.invoke(args=["webhooks", "replay", "--topic", "orders/paid"]).output == "re-queued 0 deliveries\n"
    refused = runner.invoke(args=["webhooks", "replay", "--shop", "evil.example.com"])
    assert refused.exit_code == 2 and "--shop" in refused.output
    assert backlog() == {"queued": 0, "failed": 1, "dead": 1}

    by_id = runner.invoke(args=["webhooks", "replay", "--id", str(failing), "--shop", SHOP, "--topic", TOPIC])
    assert (by_id.exit_code, by_id.output) == (0, f"re-queued 1 delivery: {failing}\n")
    assert backlog() == {"queued": 1, "failed": 0, "dead": 1}
    assert runner.invoke(args=["webhooks", "replay", "--id", str(failing)]).output == "re-queued 0 deliveries\n"
    assert dead != failing


def test_queued_outcome_is_counted_in_metrics(client: FlaskClient, shopify: ShopifyActions, recorder: Recorder,
                                              shop: Shop) -> None:
    """``/metrics`` counts accepted deliveries under the ``queued`` outcome."""
    from prometheus_client import REGISTRY

    def queued_count() -> float:
        return REGISTRY.get_sample_value("referral_webhooks_total", {"topic": TOPIC, "outcome": "queued"}) or 0.0

    before = queued_count()
    shopify.post_webhook(TOPIC, {"n": 9})
    assert queued_count() == before + 1


# --- Privacy -------------------------------------------------------------------------------------------------


def test_customers_redact_drops_that_customers_waiting_deliveries(
    parked_app: Flask, shop: Shop, app: Flask
) -> None:
    """Deliveries about the erased customer still waiting for a worker lose their body and are never processed."""
    actions = ShopifyActions(parked_app.test_client())
    theirs = customer_payload(4201, email="erase.me@example.com")
    others = customer_payload(4202, email="keep.me@example.com")
    actions.post_webhook("customers/create", theirs, webhook_id="c-theirs")
    actions.post_webhook("orders/paid", order_payload(theirs, order_id=6_000_001), webhook_id="o-theirs")
    actions.post_webhook("customers/create", others, webhook_id="c-others")
    redact = {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 4201, "email": "erase.me@example.com"},
              "orders_to_redact": [6_000_001]}
    actions.post_webhook("customers/redact", redact, webhook_id="redact-1")
    redact_row = next(d for d in _deliveries() if d.webhook_id == "redact-1")
    assert process_stored_delivery(redact_row.id) == "processed"

    rows = {d.webhook_id: d for d in _deliveries()}
    assert (rows["c-theirs"].status, rows["c-theirs"].payload) == ("redacted", None)
    assert (rows["o-theirs"].status, rows["o-theirs"].payload) == ("redacted", None)
    assert rows["c-others"].status == "queued" and rows["c-others"].payload is not None
    assert process_stored_delivery(rows["c-theirs"].id) == "duplicate"
    assert "erase.me" not in json.dumps([d.payload for d in _deliveries()])


def test_a_customers_redact_body_of_another_shop_drops_nothing_here(parked_app: Flask, shop: Shop) -> None:
    """A redact body naming another shop, replayed under this shop's header, leaves this shop's deliveries queued."""
    actions = ShopifyActions(parked_app.test_client())
    actions.post_webhook("customers/create", customer_payload(4211, email="stay@example.com"), webhook_id="c-stay")
    redact = {"shop_id": 2, "shop_domain": "other-shop.myshopify.com", "customer": {"id": 4211},
              "orders_to_redact": []}
    actions.post_webhook("customers/redact", redact, webhook_id="redact-other")
    redact_row = next(d for d in _deliveries() if d.webhook_id == "redact-other")
    assert process_stored_delivery(redact_row.id) == "processed"

    [kept] = [d for d in _deliveries() if d.webhook_id == "c-stay"]
    assert kept.status == "queued" and kept.payload is not None


def test_shop_redact_deletes_the_shops_stored_bodies(parked_app: Flask, shop: Shop) -> None:
    """``shop/redact`` leaves no stored delivery of the shop behind, queued or failed."""
    actions = ShopifyActions(parked_app.test_client())
    actions.post_webhook("customers/create", customer_payload(4301), webhook_id="c-1")
    actions.post_webhook("shop/redact", {"shop_id": 1, "shop_domain": SHOP}, webhook_id="redact-shop")
    redact_row = next(d for d in _deliveries() if d.webhook_id == "redact-shop")
    process_stored_delivery(redact_row.id)
    assert [d for d in _deliveries() if d.shop_domain == SHOP] == []


# --- A real queue and consumer -------------------------------------------------------------------------------


def _wait_processed(count: int, timeout: float = 30.0) -> list[WebhookDelivery]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _deliveries()
        if len(rows) == count and all(row.status == "processed" for row in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"not processed after {timeout}s: {[(r.webhook_id, r.status) for r in rows]}")
        time.sleep(0.05)


def _consume(app: Flask, shop: Shop) -> None:
    """Post a referral story's deliveries, let a consumer thread drain the queue, check the grants."""
    huey = get_queue(app).huey
    huey.flush()
    actions = ShopifyActions(app.test_client())
    advocate, friend = customer_payload(4401), customer_payload(4402)
    for payload in (advocate, friend):
        assert actions.post_webhook("customers/create", payload).get_json() == {"status": "queued"}
    get_queue(app).batcher.flush()
    # On Redis the batch travels as one fan-out message; the SQLite queue takes each job as it comes.
    assert huey.pending_count() == (1 if isinstance(huey.storage, RedisStorage) else 2)
    assert [row.status for row in _deliveries()] == ["queued", "queued"]
    consumer = start_inprocess_consumer(app, workers=2)
    try:
        _wait_processed(2)
        from referral_plugin.referrals.codes import codes_of
        from referral_plugin.referrals.customers import get_customer

        advocate_row = get_customer(shop, 4401)
        assert advocate_row is not None
        order = order_payload(friend, order_id=7_000_001, code=codes_of(advocate_row)[0].code)
        for n in range(3):  # Shopify's at-least-once: the same order under three webhook ids
            assert actions.post_webhook("orders/paid", order, webhook_id=f"real-{n}").status_code == 200
        rows = _wait_processed(5)
    finally:
        consumer.stop(graceful=True)
    assert all(row.payload is None for row in rows)
    db.session.rollback()
    earning = db.session.execute(
        select(LedgerEntry.side).where(LedgerEntry.entry_type.in_([EntryType.GRANT, EntryType.HOLD]))
    ).scalars().all()
    assert sorted(earning) == ["advocate", "friend"]
    assert huey.pending_count() == 0


class TestSqliteQueue:
    """The default queue storage: a SQLite file, consumed by an in-process consumer."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], tmp_path: Path) -> dict[str, t.Any]:
        """Queue through a SQLite file instead of running jobs inline."""
        return {**app_config, "HUEY_IMMEDIATE": False, "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite")}

    def test_consumer_processes_queued_deliveries_once(self, app: Flask, shop: Shop) -> None:
        """Deliveries wait in the queue until a consumer runs them; repeats of one order still grant once."""
        _consume(app, shop)


@pytest.mark.slow
class TestRedisQueue:
    """Huey on a real Redis, as in production."""

    @pytest.fixture(scope="class")
    def redis_url(self) -> Iterator[str]:
        """Start a throwaway ``redis-server`` for this class."""
        try:
            server = RedisServer()
        except ServerUnavailable as exc:
            pytest.skip(f"redis-server binary is missing: {exc}")
        yield server.start()
        server.stop()

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], redis_url: str) -> dict[str, t.Any]:
        """Queue through Redis."""
        return {**app_config, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url}

    def test_consumer_processes_queued_deliveries_once(self, app: Flask, shop: Shop) -> None:
        """The same story through Redis: every delivery processed by the consumer, one grant per side."""
        assert type(get_queue(app).huey).__name__ == "RedisHuey"
        _consume(app, shop)


def test_process_job_is_registered(app: Flask) -> None:
    """The job and the periodic sweep are bound to the app's queue."""
    tasks = get_queue(app).tasks
    assert PROCESS_JOB in tasks and "webhooks.sweep" in tasks
