"""Request ids, structured logs, Prometheus metrics and the readiness check.

One call, :func:`register_observability`, wires it all into the app:

- every request gets a request id (a well-formed incoming ``X-Request-Id`` or a fresh one), echoed in the
  response and carried by every log record written while the request runs, with the shop, topic and webhook
  id of a webhook delivery;
- every request is logged once, as it is answered, by ``referral_plugin.requests``: one line with everything
  about it (method, path, status, duration; a webhook's topic, outcome, shop and id), so gunicorn's access
  log, which would write a second line per request, is off by default (``gunicorn.conf.py``);
- logs are one JSON object per line when ``LOG_FORMAT=json``, plain text otherwise;
- ``GET /metrics`` serves Prometheus metrics: HTTP and webhook latency, webhook counts by topic and outcome,
  ledger rows by type and reward kind (grants, holds, issues, reversals...), the job queue depth and the stored
  webhook backlog (queued, failed, dead letters) of the queued intake. It needs
  ``Authorization: Bearer <METRICS_TOKEN>``; without a ``METRICS_TOKEN`` it answers 404 outside demo mode.
  Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` does) so every worker's numbers add up;
- ``GET /readyz`` answers 200 only when the database answers, its schema is at the newest migration and the
  job queue's storage answers; load balancers route traffic on it, while ``/healthz`` only says "alive".
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import re
import time
import typing as t
import uuid
from collections.abc import Iterable
from collections.abc import Iterator

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import has_request_context
from flask import jsonify
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.orm import Session

from referral_plugin.config import parse_bool
from referral_plugin.extensions import db
from referral_plugin.security.signatures import verify_webhook

REQUEST_ID_HEADER = "X-Request-Id"
BENCH_BASELINE_PATH = "/__bench/webhook-baseline"
#: Incoming ids are echoed into logs and headers, so only harmless characters get through.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_HEADER_VALUE_RE = re.compile(r"[^A-Za-z0-9._:/@+=-]")

log = logging.getLogger(__name__)
#: One line per request, written when it is answered (its "canonical" line: method, path, status, duration, and
#: the request id, shop, topic, webhook id and outcome of a webhook); it replaces gunicorn's access log.
request_log = logging.getLogger("referral_plugin.requests")
_PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

_LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_SECONDS = Histogram(
    "referral_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and status class.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
WEBHOOKS_TOTAL = Counter(
    "referral_webhooks",
    "Webhook deliveries by topic and outcome (processed, queued, duplicate, ignored, invalid_signature, "
    "bad_request, error).",
    ["topic", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "referral_webhook_duration_seconds",
    "Time to answer a webhook delivery, by topic.",
    ["topic"],
    buckets=_LATENCY_BUCKETS,
)
LEDGER_ENTRIES_TOTAL = Counter(
    "referral_ledger_entries",
    "Committed ledger rows by entry type (grant, hold, release, issue, reversal, adjustment, void), reward kind "
    "and side.",
    ["entry_type", "reward_kind", "side"],
)


def register_observability(app: Flask) -> None:
    """Add request ids, structured logs, ``/metrics`` and ``/readyz`` to ``app``."""
    app.config.setdefault("METRICS_TOKEN", os.environ.get("METRICS_TOKEN") or None)
    configure_logging(app)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz_view, methods=["GET"])
    app.config.setdefault("BENCH_BASELINE_ROUTE", os.environ.get("BENCH_BASELINE_ROUTE") or False)
    if parse_bool(app.config["BENCH_BASELINE_ROUTE"]):
        # Internal, for bench/run.py only: the cost of answering a webhook without doing its work.
        app.add_url_rule(BENCH_BASELINE_PATH, "bench_baseline", bench_baseline_view, methods=["POST"])
    _listen_for_ledger_rows()


# --- Request context -------------------------------------------------------------------------------------


def request_id() -> str | None:
    """Return the current request's id, or None outside a request."""
    if not has_request_context():
        return None
    return t.cast(str | None, g.get("request_id"))


def set_webhook_context(*, shop_domain: str | None, topic: str | None, webhook_id: str | None) -> None:
    """Tag the current request's logs and metrics with a webhook's shop, topic and id."""
    if not has_request_context():
        return
    g.shop_domain = _clip(shop_domain)
    g.webhook_topic = _clip(topic)
    g.webhook_id = _clip(webhook_id)


def set_webhook_outcome(outcome: str) -> None:
    """Record how the current webhook delivery ended (``processed``, ``duplicate``, ``ignored``...)."""
    if has_request_context():
        g.webhook_outcome = outcome


def _clip(value: str | None) -> str | None:
    """Keep a header value short and free of characters that could forge log lines."""
    if not value:
        return None
    return _HEADER_VALUE_RE.sub("_", value[:255])


def _start_request() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex


def _finish_request(response: Response) -> Response:
    rid = g.get("request_id")
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    started = g.get("request_started")
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    status = response.status_code
    HTTP_REQUEST_SECONDS.labels(request.method, route, f"{status // 100}xx").observe(elapsed)
    duration_ms = round(elapsed * 1000, 2)
    if request.blueprint == "webhooks":
        topic = _topic_label(g.get("webhook_topic"), status)
        outcome = _webhook_outcome(status)
        WEBHOOKS_TOTAL.labels(topic, outcome).inc()
        WEBHOOK_SECONDS.labels(topic).observe(elapsed)
        request_log.info("webhook %s %s in %.1f ms", topic, outcome, duration_ms,
                         extra={"status": status, "duration_ms": duration_ms, "outcome": outcome})
    else:
        # Probes come every few seconds from every balancer: kept out of the INFO stream.
        level = logging.DEBUG if route in _PROBE_ROUTES else logging.INFO
        path = _clip(request.path)
        request_log.log(level, "%s %s %s in %.1f ms", request.method, path, status, duration_ms,
                        extra={"method": request.method, "path": path, "status": status, "duration_ms": duration_ms})
    return response


def _topic_label(topic: str | None, status: int) -> str:
    """Bound label cardinality: only topics we handle, and only once the signature was good."""
    from referral_plugin.webhooks.registry import handler_for

    if status == 401:
        return "unverified"
    if topic and handler_for(topic) is not None:
        return topic
    return "other"


def _webhook_outcome(status: int) -> str:
    if 200 <= status < 300:
        return str(g.get("webhook_outcome") or "processed")
    if status == 401:
        return "invalid_signature"
    if status < 500:
        return "bad_request"
    return "error"


# --- Logging ---------------------------------------------------------------------------------------------


class RequestContextFilter(logging.Filter):
    """Copy the request id, shop, topic and webhook id of the current request onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.shop = g.get("shop_domain") or _shop_from_g()
            record.topic = g.get("webhook_topic")
            record.webhook_id = g.get("webhook_id")
        else:
            for name in ("request_id", "shop", "topic", "webhook_id"):
                if not hasattr(record, name):
                    setattr(record, name, None)
        return True


def _shop_from_g() -> str | None:
    shop = g.get("shop")
    return getattr(shop, "shopify_domain", None) if shop is not None else None


#: Attributes every LogRecord has; anything else was passed in ``extra=`` and goes into the JSON.
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, t.Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_") or value is None:
                continue
            entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Format a record as one readable line, with the request id and webhook fields when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            f"{name}={value}"
            for name in ("request_id", "shop", "topic", "webhook_id")
            if (value := getattr(record, name, None))
        ]
        return f"{line} [{' '.join(tags)}]" if tags else line


_HANDLER_MARK = "_referral_plugin_handler"


def configure_logging(app: Flask) -> None:
    """Send the app's logs to stderr, as JSON when ``LOG_FORMAT=json``, each record tagged with its request."""
    from flask.logging import default_handler

    logger = logging.getLogger("referral_plugin")
    logger.removeHandler(default_handler)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    json_logs = str(app.config.get("LOG_FORMAT", "text")).lower() == "json"
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    handler.addFilter(RequestContextFilter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG if app.debug else logging.INFO)


# --- Reward outcomes from the ledger ---------------------------------------------------------------------

_LISTENING = False


def _listen_for_ledger_rows() -> None:
    """Count ledger rows when their transaction commits (a rolled-back grant never happened)."""
    global _LISTENING
    if _LISTENING:
        return
    _LISTENING = True
    event.listen(Session, "after_flush", _collect_ledger_rows)
    event.listen(Session, "after_commit", _count_ledger_rows)
    event.listen(Session, "after_rollback", _forget_ledger_rows)


def _collect_ledger_rows(session: Session, _flush_context: object) -> None:
    from referral_plugin.models import LedgerEntry

    rows = [obj for obj in session.new if isinstance(obj, LedgerEntry)]
    if rows:
        session.info.setdefault("referral_plugin_new_ledger", []).extend(
            (str(row.entry_type), str(row.reward_kind), str(row.side)) for row in rows
        )


def _count_ledger_rows(session: Session) -> None:
    for labels in session.info.pop("referral_plugin_new_ledger", ()):
        LEDGER_ENTRIES_TOTAL.labels(*labels).inc()


def _forget_ledger_rows(session: Session) -> None:
    session.info.pop("referral_plugin_new_ledger", None)


# --- /metrics --------------------------------------------------------------------------------------------


class QueueDepthCollector(Collector):
    """Report the number of jobs waiting in the Huey queue, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = _queue_depth()
        family = GaugeMetricFamily("referral_job_queue_depth", "Jobs waiting in the background queue.")
        if depth is not None:
            family.add_metric([], depth)
        yield family


class WebhookBacklogCollector(Collector):
    """Report the stored deliveries waiting for a job worker, failing, and given up on (queued intake)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "referral_webhook_backlog",
            "Stored webhook deliveries by state: queued (waiting for a worker), failed (to be retried) and dead "
            "(failed WEBHOOK_MAX_ATTEMPTS times; needs an operator).",
            labels=["state"],
        )
        try:
            from referral_plugin.webhooks.queued import backlog

            counts = backlog()
        except Exception:  # noqa: BLE001 - an unreachable database shows as missing samples, and in /readyz
            db.session.rollback()
            log.warning("webhook backlog unavailable", exc_info=True)
            counts = {}
        for state, value in counts.items():
            family.add_metric([state], value)
        yield family


class _ProcessRegistry(Collector):
    """Expose this process's own registry through a per-scrape registry."""

    def collect(self) -> Iterable[t.Any]:
        return REGISTRY.collect()


def _huey() -> t.Any:
    """Return the app's Huey instance (bound by ``referral_plugin.jobs.init_app``), or None."""
    return current_app.extensions.get("huey")


def _queue_depth() -> int | None:
    huey = _huey()
    if huey is None:
        return None
    try:
        return int(huey.pending_count())
    except Exception:  # noqa: BLE001 - an unreachable queue shows as a missing sample, and in /readyz
        log.warning("job queue depth unavailable", exc_info=True)
        return None


def metrics_view() -> Response:
    """Serve Prometheus metrics to a caller holding ``METRICS_TOKEN``."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        if not current_app.config.get("DEMO_MODE"):
            return Response("Not Found\n", status=404, mimetype="text/plain")
    else:
        supplied = request.headers.get("Authorization", "")
        scheme, _, value = supplied.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), str(token).encode()):
            response = Response("Unauthorized\n", status=401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessRegistry())
    registry.register(QueueDepthCollector())
    registry.register(WebhookBacklogCollector())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# --- /readyz ---------------------------------------------------------------------------------------------

_HEADS: dict[str, frozenset[str]] = {}


def _migration_heads(directory: str) -> frozenset[str]:
    """Return the newest revisions in the migrations folder (read once per process)."""
    if directory not in _HEADS:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", directory)
        _HEADS[directory] = frozenset(ScriptDirectory.from_config(config).get_heads())
    return _HEADS[directory]


def check_readiness() -> dict[str, str]:
    """Return each dependency's state: ``ok`` or what is wrong."""
    from alembic.runtime.migration import MigrationContext

    from referral_plugin.cli import _migrations_dir

    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
        directory = current_app.config.get("MIGRATIONS_DIR", _migrations_dir())
        checks["migrations"] = "ok" if current == _migration_heads(directory) else "behind"
    except Exception:  # noqa: BLE001 - any failure means "not ready", logged for the operator
        log.warning("readiness: database check failed", exc_info=True)
        checks.setdefault("database", "unreachable")
        checks.setdefault("migrations", "unknown")
    huey = _huey()
    if huey is None:
        checks["queue"] = "missing"
    else:
        try:
            huey.pending_count()
            checks["queue"] = "ok"
        except Exception:  # noqa: BLE001
            log.warning("readiness: queue check failed", exc_info=True)
            checks["queue"] = "unreachable"
    return checks


def readyz_view() -> tuple[Response, int]:
    """Answer 200 when the database, its migrations and the job queue are ready, 503 otherwise."""
    checks = check_readiness()
    ready = all(state == "ok" for state in checks.values())
    return jsonify({"status": "ready" if ready else "unavailable", "checks": checks}), 200 if ready else 503


# --- Benchmark baseline ----------------------------------------------------------------------------------


def bench_baseline_view() -> tuple[Response, int]:
    """Verify a webhook's HMAC and answer 200, doing nothing else (``BENCH_BASELINE_ROUTE``, never in production)."""
    body = request.get_data(cache=True)
    verify_webhook(
        body,
        request.headers.get("X-Shopify-Hmac-Sha256"),
        current_app.config["SHOPIFY_API_SECRET"],
        current_app.config.get("SHOPIFY_API_SECRET_OLD"),
    )
    return jsonify({"status": "ok"}), 200
