"""``python app.py``: prepare the embedded database, seed the demo shop, start the jobs, serve."""

from __future__ import annotations

import importlib
import logging
import os
import typing as t

from flask import Flask

from referral_plugin.demo.seed import seed_demo

logger = logging.getLogger(__name__)


def is_embedded_database(app: Flask) -> bool:
    """Tell whether the app runs on SQLite, the database ``python app.py`` looks after itself."""
    return str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite")


def prepare_database(app: Flask, echo: t.Callable[[str], None] = print) -> None:
    """Create or upgrade the schema on the embedded database; elsewhere that is ``flask --app app init-db``."""
    from referral_plugin.cli import init_db

    if not is_embedded_database(app):
        echo("Not on the embedded SQLite database: run `flask --app app init-db` to migrate it.")
        return
    with app.app_context():
        init_db()
        lag = schema_lag()
    if lag:
        echo("Note: the migrations lag the models (regenerate them): " + "; ".join(lag))


def schema_lag() -> list[str]:
    """Return what the models have that the migrated schema lacks (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from referral_plugin.extensions import db

    with db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), db.metadata)
    lag: list[str] = []
    for diff in diffs:
        if isinstance(diff, tuple) and diff and diff[0] == "add_table":
            lag.append(f"table {diff[1].name}")
        elif isinstance(diff, tuple) and diff and diff[0] == "add_column":
            lag.append(f"column {diff[2]}.{diff[3].name}")
    return lag


def start_job_consumer(app: Flask, echo: t.Callable[[str], None] = print) -> t.Any:
    """Start the in-process job consumer when the jobs module offers one."""
    try:
        jobs = importlib.import_module("referral_plugin.jobs")
    except ImportError:
        return None
    start = getattr(jobs, "start_inprocess_consumer", None)
    if start is None:
        return None
    consumer = start(app)
    if consumer is not None:
        echo("Background jobs run in this process.")
    return consumer


def local_base_url(host: str, port: int) -> str:
    """Return the URL a browser on this machine uses to reach the server."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    return f"http://{shown_host}:{port}"


def banner(app: Flask, host: str, port: int, advocate_ids: t.Sequence[int] = ()) -> list[str]:
    """Return the lines telling a newcomer what to open."""
    base = local_base_url(host, port)
    lines = [f"referral-plugin is serving on {base}"]
    if app.config.get("DEMO_MODE"):
        lines += [
            "Demo mode (no Shopify credentials set). Open:",
            f"  demo index        {base}/demo",
            f"  dashboard         {base}/demo/admin",
            f"  widget (visitor)  {base}/demo/widget",
        ]
        if advocate_ids:
            lines.append(f"  widget (customer) {base}/demo/widget?customer={advocate_ids[0]}")
    lines.append(f"  health            {base}/healthz")
    return lines


def serve(app: Flask) -> None:
    """Run the app the one-command way: schema, demo data, jobs, then the development server."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if app.config.get("DEMO_MODE") and not os.environ.get("APP_URL"):
        # Pages link their assets through APP_URL: in the demo that is wherever this server listens.
        app.config["APP_URL"] = local_base_url(host, port)
    prepare_database(app)
    advocate_ids: list[int] = []
    if app.config.get("DEMO_MODE"):
        print("Seeding the demo shop...", flush=True)
        report = seed_demo(app)
        advocate_ids = report.advocate_ids
        print("  " + ", ".join(f"{count} {label}" for label, count in report.counts.items()), flush=True)
    consumer = start_job_consumer(app)
    print("\n".join(banner(app, host, port, advocate_ids)), flush=True)
    try:
        app.run(host=host, port=port, use_reloader=False)
    finally:
        if consumer is not None:
            # The consumer's threads would keep the process alive after Ctrl+C: let running jobs finish.
            consumer.stop(graceful=True)
