"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py app:app``.

Every value can be overridden from the environment (names below) or the command line.

Timeouts follow Shopify's webhook budget: Shopify counts a delivery as failed when the whole answer takes more
than 5 s, so a request still running after that has already failed from Shopify's side and will be redelivered.
``timeout`` (10 s) is the hard limit after which the arbiter kills a stuck worker, ``graceful_timeout`` (6 s) is
how long a worker gets on shutdown or restart to finish the requests it holds: a webhook in flight either commits
within Shopify's 5 s budget or is rolled back and redelivered, never half-written.

``preload_app`` is on: the app is imported once in the arbiter and forked, which saves memory and makes a broken
deploy fail at start rather than in every worker. ``create_app`` opens no connection, and ``post_fork`` drops
any pool inherited from the parent anyway, so no socket is shared across processes. The cost: ``kill -HUP`` does
not load new code; deploy with a restart (or ``USR2`` + ``QUIT`` on the old arbiter).

Metrics: each worker writes its Prometheus samples under ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
directory unless set), which ``/metrics`` merges; a dead worker's live gauges are removed in ``child_exit``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import typing as t

# The multiprocess directory must exist before the app (and prometheus_client) is imported, and must be empty.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="referral-plugin-metrics-")
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
#: Two processes per core plus one keeps the cores busy while others wait on PostgreSQL; WEB_CONCURRENCY overrides.
workers = _int_env("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
#: Threads per worker (gthread): requests mostly wait on the database and Shopify, and threads keep
#: connections from the load balancer alive between requests.
threads = _int_env("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int_env("GUNICORN_TIMEOUT", 10)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 6)
#: Seconds an idle keep-alive connection stays open. Behind a load balancer that pools connections, set it above
#: the balancer's idle timeout, or the balancer may reuse a socket gunicorn just closed (sporadic 502s).
keepalive = _int_env("GUNICORN_KEEPALIVE", 5)
#: Recycle workers now and then so a slow leak cannot grow without bound; jitter avoids restarting all at once.
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int_env("GUNICORN_MAX_REQUESTS_JITTER", 500)
backlog = _int_env("GUNICORN_BACKLOG", 2048)
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() not in {"0", "false", "no", "off"}
#: Which proxies may set X-Forwarded-* (the load balancer's address); comma-separated.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files on tmpfs: a slow disk must not make the arbiter think workers hang.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

#: Off unless set (a path, or "-" for stdout): the app logs one line per request itself, with the request id and
#: the webhook's topic, shop, id and outcome (``referral_plugin.requests``), so this would be a second line each.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
if os.environ.get("LOG_FORMAT", "text").lower() == "json":
    access_log_format = (
        '{"ts": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
        '"status": %(s)s, "bytes": "%(b)s", "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", '
        '"topic": "%({x-shopify-topic}i)s", "shop": "%({x-shopify-shop-domain}i)s", '
        '"webhook_id": "%({x-shopify-webhook-id}i)s", "user_agent": "%(a)s"}'
    )
else:
    access_log_format = (
        '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s topic=%({x-shopify-topic}i)s '
        "shop=%({x-shopify-shop-domain}i)s webhook=%({x-shopify-webhook-id}i)s"
    )


def on_starting(server: t.Any) -> None:
    """Start from an empty metrics directory: stale files from a previous run would add up forever."""
    for name in os.listdir(_METRICS_DIR):
        path = os.path.join(_METRICS_DIR, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def post_fork(server: t.Any, worker: t.Any) -> None:
    """Drop any database connection inherited from the arbiter; each worker opens its own."""
    app = getattr(server.app, "callable", None)
    if app is None:
        return
    from referral_plugin.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)


def worker_exit(server: t.Any, worker: t.Any) -> None:
    """Hand the queue the jobs this worker still holds (queued webhooks) before it goes."""
    from referral_plugin.job_batcher import flush_all

    flush_all()


def child_exit(server: t.Any, worker: t.Any) -> None:
    """Forget a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
