"""Background jobs on Huey: one queue per app, enqueued only once the current transaction commits.

Storage is SQLite in the instance folder by default, Redis when ``REDIS_URL`` is set, and memory with
immediate execution when ``HUEY_IMMEDIATE`` is on (tests). Job functions are plain functions registered
with :func:`job`; :func:`init_app` binds every one of them to the app's Huey instance, wrapped so that it
runs inside that app's context with a session of its own.

Jobs are enqueued from :func:`enqueue_after_commit`: the call is parked on the SQLAlchemy session and
handed to Huey in the session's ``after_commit`` hook, and dropped on rollback, so a job never sees
uncommitted rows and a rolled-back webhook enqueues nothing.

Transient failures (Shopify throttling, 5xx, timeouts, dropped connections) are retried with exponential
backoff; anything else is logged and not retried (the periodic sweeper still finds what stayed pending).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
import typing as t

import click
import redis
import requests
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext
from huey import Huey
from huey import MemoryHuey
from huey import RedisHuey
from huey import SqliteHuey
from huey import crontab
from huey.storage import RedisStorage
from huey.storage import SqliteStorage
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import SessionTransaction

from referral_plugin.errors import ShopifyAPIError
from referral_plugin.errors import ShopifyUnauthorized
from referral_plugin.errors import ShopifyUserErrors
from referral_plugin.job_batcher import JobBatcher

logger = logging.getLogger(__name__)

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

#: Longest wait between two attempts of a job, in seconds.
MAX_RETRY_DELAY = 3600
_PENDING_KEY = "referral_plugin.pending_jobs"
#: Modules whose import registers jobs; imported by :func:`init_app`.
JOB_MODULES = ("referral_plugin.rewards.tasks", "referral_plugin.webhooks.tasks", "referral_plugin.reports.tasks")


class TransientJobError(Exception):
    """Raise from a job to have it retried later with backoff."""


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A registered job: its function and retry policy, or its schedule for periodic jobs."""

    name: str
    func: t.Callable[..., t.Any]
    retries: int
    retry_delay: int
    schedule: t.Callable[[dt.datetime], bool] | None = None


_JOBS: dict[str, JobSpec] = {}


def job(name: str, *, retries: int = 8, retry_delay: int = 10) -> t.Callable[[F], F]:
    """Register a function as the background job ``name`` (retried ``retries`` times, delay doubling)."""

    def decorator(func: F) -> F:
        _JOBS[name] = JobSpec(name=name, func=func, retries=retries, retry_delay=retry_delay)
        return func

    return decorator


def periodic_job(name: str, schedule: t.Callable[[dt.datetime], bool]) -> t.Callable[[F], F]:
    """Register a function to run on ``schedule`` (a ``huey.crontab``) in every consumer's scheduler."""

    def decorator(func: F) -> F:
        _JOBS[name] = JobSpec(name=name, func=func, retries=0, retry_delay=0, schedule=schedule)
        return func

    return decorator


def every_minute() -> t.Callable[[dt.datetime], bool]:
    """Return the schedule of a job that runs once a minute."""
    return t.cast(t.Callable[[dt.datetime], bool], crontab())


def is_transient(error: BaseException) -> bool:
    """Tell whether a failure is worth retrying later (throttling, 5xx, timeouts, dropped connections)."""
    if isinstance(error, TransientJobError | requests.RequestException):
        return True
    if isinstance(error, ShopifyUserErrors | ShopifyUnauthorized):
        return False
    return isinstance(error, ShopifyAPIError)


def backoff_delay(base: int, attempt: int) -> int:
    """Return the wait before retry number ``attempt`` (0-based): ``base`` doubling, capped."""
    return int(min(base * (2 ** max(attempt, 0)), MAX_RETRY_DELAY))


class JobQueue:
    """The jobs of one app, bound to that app's Huey instance."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        self.tasks: dict[str, t.Any] = {}
        self.batcher = JobBatcher(self)

    def bind(self, spec: JobSpec) -> None:
        """Register ``spec`` on this queue's Huey, wrapped to run inside the app context."""
        app = self.app

        if spec.schedule is not None:

            def run_periodic() -> None:
                with app.app_context():
                    spec.func()

            run_periodic.__module__ = __name__
            self.tasks[spec.name] = self.huey.periodic_task(spec.schedule, name=spec.name)(run_periodic)
            return

        def run(*args: t.Any, task: t.Any = None, **kwargs: t.Any) -> t.Any:
            with app.app_context():
                try:
                    return spec.func(*args, **kwargs)
                except Exception as exc:
                    if task is not None:
                        if is_transient(exc):
                            attempt = spec.retries - int(task.retries or 0)
                            task.retry_delay = backoff_delay(spec.retry_delay, attempt)
                            logger.warning("job %s failed (%s); retry in %ss, %s left", spec.name, exc,
                                           task.retry_delay, task.retries)
                        else:
                            task.retries = 0
                    raise

        run.__module__ = __name__
        self.tasks[spec.name] = self.huey.task(
            retries=spec.retries, retry_delay=spec.retry_delay, context=True, name=spec.name
        )(run)

    def enqueue(self, name: str, *args: t.Any, **kwargs: t.Any) -> None:
        """Hand the job to Huey now (runs at once in immediate mode)."""
        self.tasks[name](*args, **kwargs)

    def enqueue_soon(self, name: str, *args: t.Any) -> None:
        """Hand the job to Huey shortly, from a background thread batching calls (see :mod:`job_batcher`).

        Only for work recorded durably where the sweeper finds it: a process dying first loses the call.
        """
        self.batcher.submit(name, *args)

    def enqueue_many(self, calls: t.Sequence[tuple[str, tuple[t.Any, ...]]]) -> None:
        """Hand several jobs to Huey in order: on Redis one message (a :data:`FAN_OUT_JOB`), one call each elsewhere.

        Many calls travel as one message that a consumer turns into the separate jobs, each with its own retries:
        serializing a Huey task costs the web process as much as sending it, so the sender pays once per batch.
        """
        if len(calls) > 1 and self._on_redis():
            calls = [(FAN_OUT_JOB, ([(name, list(args)) for name, args in calls],))]
        self.push_each(calls)

    def push_each(self, calls: t.Sequence[tuple[str, tuple[t.Any, ...]]]) -> None:
        """Put each call on the queue as a job of its own, in order (one round trip on Redis)."""
        if not self._on_redis():
            for name, args in calls:
                self.enqueue(name, *args)
            return
        storage = self.huey.storage
        messages = [self.huey.serialize_task(self.tasks[name].s(*args)) for name, args in calls]
        # Huey's consumers pop from the tail: pushing in order at the head keeps first in, first out.
        storage.conn.lpush(storage.queue_key, *messages)

    def _on_redis(self) -> bool:
        return not self.huey.immediate and isinstance(self.huey.storage, RedisStorage)

    def enqueue_single_attempt(self, name: str, *args: t.Any) -> None:
        """Hand the job to Huey for one attempt only: whoever calls this is the retry mechanism."""
        task = self.tasks[name].s(*args)
        task.retries = 0
        self.huey.enqueue(task)

    def claim(self, key: str, now: dt.datetime, every: dt.timedelta) -> bool:
        """Return True at most once per ``every`` for ``key`` (kept in the queue's storage, shared by consumers)."""
        storage_key = f"claim:{key}"
        last = self.huey.get(storage_key, peek=True)
        if isinstance(last, float) and now.timestamp() - last < every.total_seconds():
            return False
        self.huey.put(storage_key, now.timestamp())
        return True

    def run_periodic(self, name: str) -> None:
        """Run a periodic job now, in this thread (for tests and the CLI)."""
        self.tasks[name].call_local()


def create_huey(app: Flask) -> Huey:
    """Return the Huey instance this app's configuration asks for."""
    name = "referral-plugin"
    if app.config.get("HUEY_IMMEDIATE"):
        return MemoryHuey(name, immediate=True, results=False, utc=True)
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        return RedisHuey(name, url=redis_url, results=False, utc=True)
    return SqliteHuey(name, filename=sqlite_queue_path(app), results=False, utc=True,
                      storage_class=LazySqliteStorage)


class LazySqliteStorage(SqliteStorage):  # type: ignore[misc]  # huey ships no type hints
    """Huey's SQLite storage, creating its file and tables on first use rather than when the app is built."""

    def initialize_schema(self) -> None:
        """Defer the schema to the first connection (``create_app`` must not touch the disk)."""
        self._schema_lock = threading.Lock()
        self._schema_pending = True

    def _create_connection(self) -> t.Any:
        conn = super()._create_connection()
        with self._schema_lock:
            if self._schema_pending:
                cursor = conn.cursor()
                try:
                    cursor.execute(self.begin_sql)
                    for statement in self.ddl:
                        cursor.execute(statement)
                    conn.commit()
                finally:
                    cursor.close()
                self._schema_pending = False
        return conn


def sqlite_queue_path(app: Flask) -> str:
    """Return the SQLite file of the queue: ``HUEY_SQLITE_PATH``, else ``huey.sqlite`` beside a SQLite database.

    Beside the database, so two databases (a test's and the real one) never share one queue of row ids;
    in the instance folder for other databases.
    """
    configured = app.config.get("HUEY_SQLITE_PATH")
    if configured:
        return str(configured)
    url = make_url(str(app.config.get("SQLALCHEMY_DATABASE_URI") or ""))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return os.path.join(os.path.dirname(os.path.abspath(url.database)), "huey.sqlite")
    return os.path.join(app.instance_path, "huey.sqlite")


def init_app(app: Flask) -> JobQueue:
    """Create this app's job queue, bind every registered job to it and add the ``worker`` command."""
    import importlib

    for module in JOB_MODULES:
        importlib.import_module(module)
    queue = JobQueue(app, create_huey(app))
    for spec in _JOBS.values():
        queue.bind(spec)
    app.extensions["huey"] = queue.huey
    app.extensions["jobs"] = queue
    app.cli.add_command(worker_command)
    _listen_to_sessions()
    return queue


def get_queue(app: Flask | None = None) -> JobQueue:
    """Return the job queue of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    return t.cast(JobQueue, target.extensions["jobs"])


def enqueue_after_commit(name: str, *args: t.Any, **kwargs: t.Any) -> None:
    """Enqueue job ``name`` once the current session commits; forget it if the session rolls back.

    Savepoints are honoured: a job scheduled inside a savepoint that rolls back is dropped, one
    scheduled inside a savepoint that is released waits for the outer commit.
    """
    from referral_plugin.extensions import db

    queue = get_queue()
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(_PENDING_KEY, []).append(_Pending(transaction, queue, name, args, kwargs))


#: The job that turns one message of many calls (:meth:`JobQueue.enqueue_many` on Redis) into those jobs.
FAN_OUT_JOB = "jobs.fan_out"


@job(FAN_OUT_JOB, retries=5, retry_delay=1)
def fan_out(calls: t.Sequence[tuple[str, t.Sequence[t.Any]]]) -> None:
    """Enqueue each of ``calls`` as a job of its own, in order; a name no longer registered is logged and skipped."""
    queue = get_queue()
    known: list[tuple[str, tuple[t.Any, ...]]] = []
    for name, args in calls:
        if name in queue.tasks:
            known.append((name, tuple(args)))
        else:  # renamed or removed by a deploy since it was sent
            logger.error("fan-out dropped a call of unknown job %s", name)
    try:
        queue.push_each(known)
    except redis.RedisError as exc:
        raise TransientJobError(f"could not fan out {len(known)} job(s): {exc}") from exc


def enqueue_now(name: str, *args: t.Any, **kwargs: t.Any) -> None:
    """Enqueue job ``name`` at once, for callers with nothing uncommitted (the sweeper, the CLI)."""
    get_queue().enqueue(name, *args, **kwargs)


def schedule_discount_issue(ledger_entry_id: int) -> None:
    """Create the Shopify discount code of a discount grant (or release) once this transaction commits."""
    enqueue_after_commit("rewards.issue_discount", ledger_entry_id)


def schedule_discount_deactivation(ledger_entry_id: int) -> None:
    """Deactivate the issued code of a grant (pass the grant, its ISSUE or its REVERSAL row) after commit."""
    enqueue_after_commit("rewards.deactivate_discount", ledger_entry_id)


def schedule_code_discount_sync(referral_code_id: int) -> None:
    """Make the advocate's referral code match the campaign's friend discount in Shopify, after commit."""
    enqueue_after_commit("rewards.sync_code_discount", referral_code_id)


def schedule_campaign_code_sync(campaign_id: int) -> None:
    """Re-sync every advocate code of a campaign in Shopify after commit (call when its friend reward changes)."""
    enqueue_after_commit("rewards.sync_campaign_codes", campaign_id)


def schedule_email(kind: str, **ids: t.Any) -> None:
    """Send an email of ``kind`` (e.g. ``invitation``, ``invitation_id=...``) after commit, when SMTP is set."""
    enqueue_after_commit("mail.send", kind, dict(ids))


@dataclasses.dataclass
class _Pending:
    """A job waiting for the transaction it was scheduled in (and that one's parents) to commit."""

    transaction: SessionTransaction
    queue: JobQueue
    name: str
    args: tuple[t.Any, ...]
    kwargs: dict[str, t.Any]


def _after_commit(session: Session) -> None:
    pending: list[_Pending] = session.info.get(_PENDING_KEY) or []
    if not pending:
        return
    nested = session.get_nested_transaction() if session.in_nested_transaction() else None
    if nested is not None:
        # A savepoint was released: its jobs now wait for the enclosing transaction.
        for job_ in pending:
            if job_.transaction is nested and nested.parent is not None:
                job_.transaction = nested.parent
        return
    session.info.pop(_PENDING_KEY, None)
    for job_ in pending:
        try:
            job_.queue.enqueue(job_.name, *job_.args, **job_.kwargs)
        except Exception:
            # The rows are committed; the sweeper re-queues whatever did not make it into the queue.
            logger.exception("could not enqueue job %s", job_.name)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[_Pending] = session.info.get(_PENDING_KEY) or []
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
        return
    session.info[_PENDING_KEY] = [job_ for job_ in pending if job_.transaction is not previous_transaction]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        # The outermost transaction ended without a commit (e.g. the session closed): nothing to run.
        session.info.pop(_PENDING_KEY, None)


_listen_lock = threading.Lock()


def _listen_to_sessions() -> None:
    with _listen_lock:
        if not event.contains(Session, "after_commit", _after_commit):
            event.listen(Session, "after_commit", _after_commit)
            event.listen(Session, "after_soft_rollback", _after_soft_rollback)
            event.listen(Session, "after_transaction_end", _after_transaction_end)


def create_consumer(app: Flask, workers: int = 1, periodic: bool = True) -> t.Any:
    """Return a (not yet started) Huey consumer for this app's queue, with thread workers."""
    return get_queue(app).huey.create_consumer(
        workers=workers, worker_type="thread", periodic=periodic, check_worker_health=True
    )


def start_inprocess_consumer(app: Flask, workers: int = 1) -> t.Any:
    """Start a consumer on background threads of this process (``python app.py``); return it, or None.

    Immediate mode needs no consumer. Signal handlers are left to the host process: call
    ``consumer.stop(graceful=True)`` to stop it.
    """
    queue = get_queue(app)
    if queue.huey.immediate:
        return None
    consumer = create_consumer(app, workers=workers)
    consumer.scheduler.start()
    for _, worker in consumer.worker_threads:
        worker.start()
    logger.info("in-process job consumer started with %s worker(s)", workers)
    return consumer


@click.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker threads executing jobs.")
@click.option("--no-periodic", is_flag=True, default=False, help="Do not run periodic jobs (the sweeper).")
@with_appcontext
def worker_command(workers: int, no_periodic: bool) -> None:
    """Run the background job consumer (discount codes, emails, the sweeper) until stopped."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue = get_queue(app)
    if queue.huey.immediate:
        raise click.ClickException("HUEY_IMMEDIATE is on: jobs run inline, there is nothing to consume.")
    if not logging.getLogger("huey").handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    storage = "redis" if app.config.get("REDIS_URL") else "sqlite"
    click.echo(f"Job consumer on {storage} storage with {workers} worker(s). Ctrl+C stops it.")
    create_consumer(app, workers=workers, periodic=not no_periodic).run()
