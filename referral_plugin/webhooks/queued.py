"""Queued intake (``WEBHOOK_PROCESSING=queued``): answer Shopify after one durable insert, process in a job.

The request verifies the HMAC on the raw bytes, checks the headers and that the body is a JSON object (so a
malformed body is still a 400; :func:`~referral_plugin.json_input.surely_object` checks without keeping what it
builds) and then does one statement, committed on its own (autocommit): ``INSERT ... ON CONFLICT DO
NOTHING RETURNING id`` of the delivery with its raw body and status ``queued``. Once it is committed it hands
``webhooks.process_delivery`` to the process's :class:`~referral_plugin.job_batcher.JobBatcher` and answers 200;
the batcher's thread puts the jobs of all deliveries that arrived within a few milliseconds on the queue in one
round trip. A repeat (same webhook id, or same topic and event id) inserts nothing and is answered 200 as a
duplicate, unless the earlier delivery ``failed``: then the repeat claims that row back to ``queued`` and
enqueues it again.

The job runs the topic's handler exactly as the inline intake does, in one transaction whose first statement
claims the row with a conditional update (``queued``/``failed`` → ``processed``): on PostgreSQL that row lock,
on SQLite the database's write lock, make a second worker running the same job wait and then find nothing to
claim. The raw body goes in the same transaction (it holds customer data). A handler that raises is rolled
back, recorded as ``failed`` in a short transaction of its own, and raised again so Huey retries with backoff.

Nothing is lost between the commit and the enqueue: the periodic :func:`sweep_deliveries` re-enqueues rows
left ``queued`` (a process died before its batcher handed the job over, or a worker died holding the job; Huey
does not acknowledge jobs; looked for only while the queue is empty, so a backlog is not enqueued twice) and
``failed`` rows under :data:`DEFAULT_MAX_ATTEMPTS`. Beyond that they stay ``failed``: the dead letters, counted
in ``/metrics``; ``flask --app app webhooks replay`` queues them again once their cause is fixed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import typing as t
import weakref

import psycopg
from flask import current_app
from sqlalchemy import Table
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from referral_plugin.extensions import db
from referral_plugin.jobs import TransientJobError
from referral_plugin.jobs import get_queue
from referral_plugin.json_input import loads_cleaned
from referral_plugin.models import WebhookDelivery
from referral_plugin.models import utcnow
from referral_plugin.webhooks.intake import DUPLICATE
from referral_plugin.webhooks.intake import FAILED
from referral_plugin.webhooks.intake import IGNORED
from referral_plugin.webhooks.intake import PROCESSED
from referral_plugin.webhooks.intake import IntakeResult
from referral_plugin.webhooks.intake import ShopifyHeaders
from referral_plugin.webhooks.intake import check_payload
from referral_plugin.webhooks.intake import error_text
from referral_plugin.webhooks.intake import run_handler
from referral_plugin.webhooks.intake import verify_delivery
from referral_plugin.webhooks.intake_connections import intake_connections
from referral_plugin.webhooks.registry import Delivery
from referral_plugin.webhooks.registry import handler_for

logger = logging.getLogger(__name__)

QUEUED = "queued"
#: A delivery dropped unprocessed because ``customers/redact`` erased the customer it is about.
REDACTED = "redacted"
#: Statuses a job may claim.
CLAIMABLE = (QUEUED, FAILED)
PROCESS_JOB = "webhooks.process_delivery"
SWEEP_JOB = "webhooks.sweep"

#: Seconds a delivery may stay ``queued`` before the sweeper enqueues it again (``WEBHOOK_REQUEUE_AFTER_SECONDS``).
DEFAULT_REQUEUE_AFTER_SECONDS = 120
#: Job runs of one delivery before it is left ``failed`` as a dead letter (``WEBHOOK_MAX_ATTEMPTS``).
DEFAULT_MAX_ATTEMPTS = 10
#: A ``failed`` delivery whose Huey retries are spent is tried again this long after its last attempt.
FAILED_RETRY_AFTER = dt.timedelta(minutes=10)
#: Most deliveries of each kind (lost, failed) re-enqueued per sweep; the next sweep takes the rest.
BATCH = 500

_TABLE = t.cast(Table, WebhookDelivery.__table__)
_C = _TABLE.c


# --- Intake (the request) ------------------------------------------------------------------------------------


def accept_webhook(body: bytes, found: ShopifyHeaders, *, secret: str,
                   old_secret: str | None = None) -> IntakeResult:
    """Verify one delivery like the inline intake, store it with its raw body and enqueue its processing."""
    delivery = verify_delivery(body, found, secret, old_secret)
    check_payload(body)
    return store_delivery(delivery, body)


def store_delivery(delivery: Delivery, body: bytes) -> IntakeResult:
    """Record ``delivery`` once with its raw body, then enqueue its job; see the module docstring.

    The insert is one statement on a connection of its own in autocommit mode (kept by the thread between
    requests, :mod:`~referral_plugin.webhooks.intake_connections`): its own transaction, one round trip (no
    BEGIN and COMMIT around it), and nothing the caller's session holds is touched.
    """
    handled = handler_for(delivery.topic) is not None
    body_text = body.decode("utf-8") if handled else None
    values = {
        "shop_domain": delivery.shop_domain,
        "topic": delivery.topic,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "triggered_at": delivery.triggered_at,
        "api_version": delivery.api_version,
        # Nothing to keep for a topic the app does not handle: record it as ignored, like the inline intake.
        "status": QUEUED if handled else IGNORED,
        "attempts": 0,
        "received_at": utcnow(),
        "payload": body_text,
    }
    row_id = intake_connections.run(lambda connection: _record(connection, delivery, values, body_text))
    if row_id is None:
        logger.info("duplicate webhook %s %s for %s", delivery.topic, delivery.webhook_id, delivery.shop_domain)
        return IntakeResult(DUPLICATE, delivery)
    if not handled:
        return IntakeResult(IGNORED, delivery)
    # After the commit (the insert committed itself), from a background thread that sends many deliveries
    # per round trip to the queue: the request does not wait for it. Lost if this process dies first: the
    # sweeper finds the row still queued and enqueues it again.
    get_queue().enqueue_soon(PROCESS_JOB, row_id)
    return IntakeResult(QUEUED, delivery)


def _record(connection: Connection, delivery: Delivery, values: dict[str, t.Any], body: str | None) -> int | None:
    """Insert the delivery, or take back its earlier failed row; return the row id, None for a duplicate."""
    row_id = _insert_once(connection, values)
    if row_id is None and body is not None:
        row_id = _requeue_failed(connection, delivery, body)
    return row_id


#: The insert of each dialect, built once: building it per request costs more than running it.
_INSERTS: dict[str, t.Any] = {
    "postgresql": pg_insert(_TABLE).on_conflict_do_nothing().returning(_C.id),
    "sqlite": sqlite_insert(_TABLE).on_conflict_do_nothing().returning(_C.id),
}


class DriverInsert:
    """The PostgreSQL insert as SQLAlchemy compiles it for a dialect, prepared once per connection, run in libpq.

    The intake's one statement is its hot path: through ``Connection.execute`` it costs about twice what the
    driver spends on it (a cache key, an execution context, a new cursor and a result per call), and through a
    psycopg cursor the Python around the libpq call (its state machine, the dumpers) still costs more than the
    call. So the statement (numbered ``$n`` parameters, each with its cast) and the columns' bind processors
    (aware datetimes to naive UTC) come from SQLAlchemy once per dialect; each request processes its values,
    sends them as text to the statement :meth:`~referral_plugin.webhooks.intake_connections.IntakeConnections.libpq`
    prepared on the thread's connection, and reads the new id: one blocking libpq call, the GIL released.
    """

    NAME = b"referral_plugin_intake_insert"

    def __init__(self, dialect: Dialect, columns: t.Iterable[str]) -> None:
        columns = list(columns)
        numbered = type(dialect)(paramstyle="numeric_dollar")  # type: ignore[call-arg]  # every dialect takes it
        compiled = _INSERTS["postgresql"].compile(dialect=numbered, column_keys=columns)
        order = list(compiled.positiontup or ())
        if sorted(order) != sorted(columns):
            raise RuntimeError(f"the compiled insert binds {sorted(order)}, not {sorted(columns)}")
        self.columns = frozenset(columns)
        self.sql = compiled.string.encode()
        #: Each parameter's column, in ``$n`` order, with its bind processor (None when it needs none).
        self.bindings = [(name, _C[name].type.bind_processor(dialect)) for name in order]

    def run(self, connection: Connection, values: dict[str, t.Any]) -> int | None:
        """Insert ``values`` (exactly the compiled columns); return the new id, None when the row exists."""
        params = [_as_text(values[name] if processor is None else processor(values[name]))
                  for name, processor in self.bindings]
        result = intake_connections.libpq(connection, self.NAME, self.sql).exec_prepared(self.NAME, params)
        if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result)
        return int(result.get_value(0, 0) or b"") if result.ntuples else None


def _as_text(value: t.Any) -> bytes | None:
    """Return a bound value in PostgreSQL's text form (each parameter is cast in the statement)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    if isinstance(value, dt.datetime) and value.tzinfo is None:  # UTCDateTime's processor made it naive UTC
        return value.isoformat(" ").encode()
    raise TypeError(f"the intake insert has no text form for {value!r}")


_DRIVER_INSERTS: weakref.WeakKeyDictionary[Dialect, DriverInsert] = weakref.WeakKeyDictionary()


def _driver_insert(dialect: Dialect, values: dict[str, t.Any]) -> DriverInsert:
    """Return the dialect's compiled insert of these columns, compiling it on first use."""
    compiled = _DRIVER_INSERTS.get(dialect)
    if compiled is None or compiled.columns != values.keys():
        compiled = _DRIVER_INSERTS[dialect] = DriverInsert(dialect, values)
    return compiled


def _insert_once(connection: Connection, values: dict[str, t.Any]) -> int | None:
    """Insert the delivery row; return its id, or None when a unique constraint says it exists."""
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _driver_insert(dialect, values).run(connection, values)
    statement = _INSERTS.get(dialect.name)
    if statement is not None:
        return t.cast(int | None, connection.execute(statement, values).scalar())
    try:
        return t.cast(int, connection.execute(insert(_TABLE).returning(_C.id), values).scalar_one())
    except IntegrityError:
        return None


def _same_delivery(delivery: Delivery) -> t.Any:
    """Match the row a repeat of ``delivery`` collides with: same webhook id, or same topic event."""
    same = _C.webhook_id == delivery.webhook_id
    if delivery.event_id is not None:
        same = or_(same, and_(_C.topic == delivery.topic, _C.event_id == delivery.event_id))
    return and_(_C.shop_domain == delivery.shop_domain, same)


def _requeue_failed(connection: Connection, delivery: Delivery, body: str) -> int | None:
    """Put an earlier ``failed`` row of this delivery back in the queue with the redelivered body; its id or None.

    The conditional update is the lock: of two concurrent redeliveries only one sees ``failed``. The body
    is taken again because a row that failed in inline mode never stored one.
    """
    claimed = connection.execute(
        update(_TABLE)
        .where(_same_delivery(delivery), _C.status == FAILED)
        .values(status=QUEUED, payload=body)
        .returning(_C.id)
    ).first()
    return int(claimed[0]) if claimed is not None else None


# --- Processing (the job) ------------------------------------------------------------------------------------


def process_stored_delivery(delivery_id: int) -> str:
    """Run the handler of a stored delivery once; return ``processed``, ``ignored`` or ``duplicate``.

    ``duplicate`` means there was nothing to claim: another run processed it, or it is gone (``shop/redact``).

    :raise TransientJobError: when the handler (or the commit) failed; the row is then ``failed``.
    """
    db.session.commit()
    claimed = db.session.execute(
        update(_TABLE)
        .where(_C.id == delivery_id, _C.status.in_(CLAIMABLE))
        .values(status=PROCESSED, attempts=_C.attempts + 1, processed_at=utcnow(), error=None)
        .returning(_C.shop_domain, _C.topic, _C.webhook_id, _C.event_id, _C.triggered_at, _C.api_version,
                   _C.payload)
    ).first()
    if claimed is None:
        db.session.rollback()
        return DUPLICATE
    delivery = Delivery(shop_domain=claimed.shop_domain, topic=claimed.topic, webhook_id=claimed.webhook_id,
                        event_id=claimed.event_id, triggered_at=claimed.triggered_at,
                        api_version=claimed.api_version)
    handler = handler_for(delivery.topic)
    if handler is None or claimed.payload is None:
        # The topic lost its handler since (a deploy), or there is no body to run it on.
        _forget_payload(delivery_id, IGNORED)
        db.session.commit()
        return IGNORED
    try:
        # Parsed as the inline intake parses it: NUL and lone surrogates cleaned out of the strings.
        run_handler(handler, delivery, loads_cleaned(claimed.payload))
        # The body goes in the same transaction as the work: processed means its customer data is gone.
        _forget_payload(delivery_id)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        logger.exception("queued webhook failed: %s %s for %s", delivery.topic, delivery.webhook_id,
                         delivery.shop_domain)
        _record_failure(delivery_id, exc)
        raise TransientJobError(f"webhook {delivery.topic} {delivery.webhook_id} failed: {exc}") from exc
    return PROCESSED


def _forget_payload(delivery_id: int, status: str | None = None) -> None:
    """Clear the stored body of a delivery (and set its status)."""
    values: dict[str, t.Any] = {"payload": None}
    if status is not None:
        values["status"] = status
    db.session.execute(update(_TABLE).where(_C.id == delivery_id).values(**values))


def _record_failure(delivery_id: int, exc: BaseException) -> None:
    """Record a failed attempt in its own short transaction; the body stays for the retry."""
    try:
        db.session.execute(
            update(_TABLE)
            .where(_C.id == delivery_id, _C.status.in_(CLAIMABLE))
            .values(status=FAILED, error=error_text(exc), attempts=_C.attempts + 1, processed_at=utcnow())
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        logger.exception("could not record the failure of webhook delivery %s", delivery_id)


# --- Sweeper -------------------------------------------------------------------------------------------------


def requeue_after() -> dt.timedelta:
    """Return how long a delivery may stay ``queued`` before it is enqueued again (config)."""
    seconds = current_app.config.get("WEBHOOK_REQUEUE_AFTER_SECONDS", DEFAULT_REQUEUE_AFTER_SECONDS)
    return dt.timedelta(seconds=float(seconds))


def max_attempts() -> int:
    """Return how many job runs a delivery gets before it stays ``failed`` (config)."""
    return int(current_app.config.get("WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def lost_deliveries(now: dt.datetime, older_than: dt.timedelta, limit: int = BATCH) -> list[int]:
    """Return ids of deliveries still ``queued`` since before ``now - older_than`` (their job was lost)."""
    query = (
        select(_C.id)
        .where(_C.status == QUEUED, _C.received_at <= now - older_than, _C.payload.is_not(None))
        .order_by(_C.received_at)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def retryable_failures(now: dt.datetime, limit: int = BATCH) -> list[int]:
    """Return ids of ``failed`` deliveries with a body and attempts to spare, idle since :data:`FAILED_RETRY_AFTER`."""
    query = (
        select(_C.id)
        .where(_C.status == FAILED, _C.payload.is_not(None), _C.attempts < max_attempts(),
               func.coalesce(_C.processed_at, _C.received_at) <= now - FAILED_RETRY_AFTER)
        .order_by(_C.received_at)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def sweep_deliveries(now: dt.datetime | None = None) -> dict[str, list[int]]:
    """Re-enqueue lost and retryable failed deliveries (each at most once per interval); return their ids."""
    now = now or utcnow()
    every = requeue_after()
    queue = get_queue()
    # A delivery still queued behind a backlog is not lost: its job is waiting. Only an empty queue tells
    # the two apart, so lost jobs are looked for then (a flash sale's backlog is not enqueued twice).
    backlogged = _pending_jobs(queue) > 0
    try:
        found = {"lost": [] if backlogged else lost_deliveries(now, every), "failed": retryable_failures(now)}
    finally:
        db.session.rollback()  # nothing to keep; end the read transaction before the jobs run
    done: dict[str, list[int]] = {"lost": [], "failed": []}
    for kind, ids in found.items():
        for delivery_id in ids:
            if not queue.claim(f"sweep:webhook:{delivery_id}", now, every):
                continue
            if kind == "lost":
                queue.enqueue(PROCESS_JOB, delivery_id)
            else:
                # One attempt each: whatever is still failing waits for the next interval, then the cap.
                queue.enqueue_single_attempt(PROCESS_JOB, delivery_id)
            done[kind].append(delivery_id)
        if done[kind]:
            logger.info("webhook sweeper re-queued %d %s deliveries", len(done[kind]), kind)
    return done


def _pending_jobs(queue: t.Any) -> int:
    """Return how many jobs wait in the queue (0 when the storage cannot say)."""
    try:
        return int(queue.huey.pending_count())
    except Exception:  # noqa: BLE001 - an unknown depth must not stop the sweep
        return 0


def backlog() -> dict[str, int]:
    """Count deliveries waiting for a worker (``queued``), failing (``failed``) and dead letters (``dead``)."""
    over_cap = func.sum(case((_C.attempts >= max_attempts(), 1), else_=0))
    rows = db.session.execute(
        select(_C.status, func.count(), over_cap).where(_C.status.in_(CLAIMABLE)).group_by(_C.status)
    ).all()
    counts = {QUEUED: 0, FAILED: 0, "dead": 0}
    for status, n, dead in rows:
        dead = int(dead or 0) if status == FAILED else 0
        counts[str(status)] += int(n) - dead
        counts["dead"] += dead
    return counts


def replay_failed(*, ids: t.Sequence[int] = (), shop_domain: str | None = None, topic: str | None = None,
                  dry_run: bool = False) -> list[int]:
    """Put failed deliveries back in the queue with a fresh budget of attempts; return their ids.

    Without ``ids``: the dead letters (``failed`` at :func:`max_attempts`), of one shop or topic if given, once
    their cause is fixed. With ``ids``: those deliveries if they are ``failed``, dead or not. Only rows that
    still hold their body: an inline failure or a redacted delivery has none, and Shopify's redelivery is the
    way for those. ``dry_run`` only lists them.
    """
    where = [_C.status == FAILED, _C.payload.is_not(None)]
    where.append(_C.id.in_(ids) if ids else _C.attempts >= max_attempts())
    if shop_domain:
        where.append(_C.shop_domain == shop_domain)
    if topic:
        where.append(_C.topic == topic)
    if dry_run:
        found = list(db.session.execute(select(_C.id).where(*where).order_by(_C.id)).scalars())
        db.session.rollback()
        return found
    # The conditional update claims them: a job or sweep running meanwhile finds them queued, not failed.
    requeued = sorted(db.session.execute(
        update(_TABLE).where(*where).values(status=QUEUED, attempts=0).returning(_C.id)
    ).scalars())
    db.session.commit()
    if requeued:
        get_queue().enqueue_many([(PROCESS_JOB, (delivery_id,)) for delivery_id in requeued])
        logger.info("re-queued %d failed webhook deliveries", len(requeued))
    return requeued


# --- Privacy -------------------------------------------------------------------------------------------------


def forget_customer_deliveries(shop_domain: str, redact_payload: t.Mapping[str, t.Any]) -> list[int]:
    """Drop the stored, unprocessed deliveries of a shop that are about the customer ``customers/redact`` erases.

    Processing them later would write the erased data back (an order's email onto the customer), so they
    are marked ``redacted`` and their bodies cleared, and no job will claim them. Return their ids.
    """
    customer = _mapping(redact_payload.get("customer"))
    customer_ids = {str(customer.get("id"))} if customer.get("id") not in (None, "") else set()
    contacts = {str(customer[key]).strip().lower() for key in ("email", "phone") if customer.get(key)}
    orders_raw = redact_payload.get("orders_to_redact")
    orders = {str(order) for order in orders_raw} if isinstance(orders_raw, list) else set()
    if not (customer_ids or contacts or orders):
        return []
    rows = db.session.execute(
        select(_C.id, _C.topic, _C.payload)
        .where(_C.shop_domain == shop_domain, _C.status.in_(CLAIMABLE), _C.payload.is_not(None))
    ).all()
    dropped = []
    for row in rows:
        about = _subjects(row.topic, row.payload)
        if about["customers"] & customer_ids or about["contacts"] & contacts or about["orders"] & orders:
            dropped.append(int(row.id))
    if dropped:
        db.session.execute(
            update(_TABLE)
            .where(_C.id.in_(dropped), _C.status.in_(CLAIMABLE))
            .values(status=REDACTED, payload=None, error="dropped unprocessed by customers/redact")
        )
    return dropped


def _mapping(value: t.Any) -> dict[str, t.Any]:
    """Return ``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _subjects(topic: str, raw: str) -> dict[str, set[str]]:
    """Return the customer ids, contacts and order ids a stored delivery body is about."""
    subjects: dict[str, set[str]] = {"customers": set(), "contacts": set(), "orders": set()}
    try:
        payload = json.loads(raw)
    except ValueError:
        return subjects
    if not isinstance(payload, dict):
        return subjects
    customer = _mapping(payload.get("customer"))
    if customer.get("id") not in (None, ""):
        subjects["customers"].add(str(customer["id"]))
    if topic.startswith("customers/") and payload.get("id") not in (None, ""):
        subjects["customers"].add(str(payload["id"]))
    for source, key in ((payload, "email"), (payload, "contact_email"), (payload, "phone"),
                        (customer, "email"), (customer, "phone")):
        if source.get(key):
            subjects["contacts"].add(str(source[key]).strip().lower())
    if topic.startswith("orders/") and payload.get("id") not in (None, ""):
        subjects["orders"].add(str(payload["id"]))
    if payload.get("order_id") not in (None, ""):
        subjects["orders"].add(str(payload["order_id"]))
    return subjects
