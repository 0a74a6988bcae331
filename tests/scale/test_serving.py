"""Production serving: migrations on an empty PostgreSQL, gunicorn readiness, metrics merged across workers."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest
import requests

from tests.scale.harness import METRICS_TOKEN
from tests.scale.harness import ROOT
from tests.scale.harness import AppServer
from tests.scale.harness import app_environment

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _init_db(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "init-db"],
        cwd=ROOT,
        env=app_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tables(database_url: str) -> set[str]:
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_init_db_migrates_an_empty_postgresql_database_and_is_idempotent(pg_database: str) -> None:
    """``flask --app app init-db`` creates the schema on an empty PostgreSQL, and a second run changes nothing."""
    first = _init_db(pg_database)
    assert first.returncode == 0, first.stdout + first.stderr
    tables = _tables(pg_database)
    assert {"alembic_version", "shops", "customers", "referrals", "ledger_entries", "webhook_deliveries"} <= tables
    second = _init_db(pg_database)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _tables(pg_database) == tables


def _sample_sum(metrics: str, name: str, **labels: str) -> float:
    """Sum every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_gunicorn_is_ready_after_migrations_and_merges_every_workers_metrics(
    pg_database: str, start_server: Callable[..., AppServer]
) -> None:
    """Under 4 gunicorn workers /readyz is 200 after init-db, and /metrics counts requests served by all of them."""
    assert _init_db(pg_database).returncode == 0
    server = start_server(workers=4)
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "queue": "ok"}

    session = requests.Session()  # keep-alive would pin one worker; close each connection instead
    for _ in range(40):
        response = session.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=10)
        assert response.status_code == 200
        assert response.headers["X-Request-Id"]
    assert requests.get(server.url + "/metrics", timeout=10).status_code == 401
    metrics = requests.get(
        server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    served = _sample_sum(metrics, "referral_http_request_duration_seconds_count", route="/healthz", status="2xx")
    assert served >= 40
    assert "referral_job_queue_depth 0.0" in metrics


def test_readyz_is_unavailable_on_an_unmigrated_database(start_server: Callable[..., AppServer]) -> None:
    """A server started before the migrations ran answers /readyz 503 (the balancer keeps traffic away)."""
    server = start_server(workers=1)
    response = requests.get(server.url + "/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "behind"
