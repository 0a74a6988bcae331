"""Command-line commands that are not owned by one resource module."""

from __future__ import annotations

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade


def init_db() -> None:
    """Create or upgrade the schema to the newest migration."""
    upgrade(directory=current_app.config.get("MIGRATIONS_DIR", _migrations_dir()))


def _migrations_dir() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the database schema from the migrations."""
    init_db()
    click.echo("Database schema is up to date.")


def register_commands(app: Flask) -> None:
    """Add the app's CLI commands."""
    from referral_plugin.webhooks import cli as webhooks_cli

    app.cli.add_command(init_db_command)
    webhooks_cli.init_app(app)
