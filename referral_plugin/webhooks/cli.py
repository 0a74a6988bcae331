"""``flask --app app webhooks ...``: the stored deliveries of the queued intake, for operators."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from referral_plugin.errors import InvalidShopDomain
from referral_plugin.security.shop_domain import require_shop_domain
from referral_plugin.webhooks.queued import backlog
from referral_plugin.webhooks.queued import replay_failed


@click.group("webhooks")
def webhooks_group() -> None:
    """Stored webhook deliveries (WEBHOOK_PROCESSING=queued): the backlog and the dead letters."""


@webhooks_group.command("backlog")
@with_appcontext
def backlog_command() -> None:
    """Print how many deliveries wait for a worker, are failing, and are dead letters."""
    for state, count in backlog().items():
        click.echo(f"{state} {count}")


@webhooks_group.command("replay")
@click.option("--id", "ids", type=click.IntRange(min=1), multiple=True,
              help="A failed delivery to run again (repeatable); without it, every dead letter.")
@click.option("--shop", "shop", help="Only this shop's deliveries (its myshopify.com domain).")
@click.option("--topic", help="Only deliveries of this topic, e.g. orders/paid.")
@click.option("--dry-run", is_flag=True, help="List what would be re-queued; change nothing.")
@with_appcontext
def replay_command(ids: tuple[int, ...], shop: str | None, topic: str | None, dry_run: bool) -> None:
    """Queue failed deliveries again with a fresh budget of attempts, once their cause is fixed."""
    domain = None
    if shop is not None:
        try:
            domain = require_shop_domain(shop)
        except InvalidShopDomain as exc:
            raise click.BadParameter(exc.message, param_hint="--shop") from None
    found = replay_failed(ids=ids, shop_domain=domain, topic=topic, dry_run=dry_run)
    verb = "would re-queue" if dry_run else "re-queued"
    listed = f": {', '.join(map(str, found))}" if found else ""
    click.echo(f"{verb} {len(found)} deliver{'y' if len(found) == 1 else 'ies'}{listed}")


def init_app(app: Flask) -> None:
    """Add the ``webhooks`` commands."""
    app.cli.add_command(webhooks_group)
