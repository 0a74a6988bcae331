"""Integrator API keys: create, list, revoke and authenticate, plus the ``api-key`` CLI.

A key looks like ``rpk_<prefix>_<secret>``: ``rpk_<prefix>`` is public (it names the key in lists and
logs), the secret carries about 206 bits from :mod:`secrets`. Only the SHA-256 of the whole key is
stored; the key itself is shown once, when it is created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import ApiKey
from referral_plugin.models import AuditEvent
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.security.shop_domain import sanitize_shop_domain

KEY_SCHEME = "rpk"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_PREFIX_LENGTH = 8
_SECRET_LENGTH = 40
#: ``last_used_at`` is refreshed at most this often, so a busy key does not write on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class NewApiKey:
    """A freshly created key: the row, and the only copy of the plain key."""

    api_key: ApiKey
    key: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_key(key: str) -> str:
    """Return the stored form of a key: its SHA-256 as hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


#: A whole key and a public prefix: only characters of :data:`_ALPHABET`, so text that is not a key (NUL from a
#: Basic header's base64, which PostgreSQL refuses in a query) never reaches the database.
_KEY = re.compile(rf"({KEY_SCHEME}_[{_ALPHABET}]{{{_PREFIX_LENGTH}}})_[{_ALPHABET}]+")
_PREFIX = re.compile(rf"{KEY_SCHEME}_[{_ALPHABET}]{{{_PREFIX_LENGTH}}}")


def split_prefix(key: str) -> str | None:
    """Return the public ``rpk_<prefix>`` part of a key, or None when it is not shaped like one."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def create_key(shop: Shop, name: str | None = None, *, actor: str = "cli") -> NewApiKey:
    """Create a key for ``shop`` and return it with its plain value (never stored)."""
    if name is not None and len(name) > 255:
        raise ValidationError("The key name is too long (255 characters at most).", field="name")
    if name is not None and any(ord(char) < 32 or ord(char) == 127 for char in name):
        # NUL cannot be stored on PostgreSQL, and a tab or newline would break ``api-key list``'s columns.
        raise ValidationError("The key name must not contain control characters.", field="name")
    while True:
        prefix = f"{KEY_SCHEME}_{_random(_PREFIX_LENGTH)}"
        if db.session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    key = f"{prefix}_{_random(_SECRET_LENGTH)}"
    api_key = ApiKey(shop_id=shop.id, name=name, prefix=prefix, key_hash=hash_key(key))
    db.session.add(api_key)
    db.session.flush()
    db.session.add(AuditEvent(shop_id=shop.id, actor=actor, action="api_key.created", subject_type="api_key",
                              subject_id=api_key.id, details={"prefix": prefix, "name": name}))
    return NewApiKey(api_key=api_key, key=key)


def list_keys(shop: Shop) -> list[ApiKey]:
    """Return the shop's keys, newest first, revoked ones included."""
    return list(db.session.scalars(
        select(ApiKey).where(ApiKey.shop_id == shop.id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    ))


def find_key(prefix_or_key: str, shop: Shop | None = None) -> ApiKey | None:
    """Return the key named by its public prefix (``rpk_ab12cd34`` or ``ab12cd34``) or its full value."""
    raw = prefix_or_key.strip()
    prefix = split_prefix(raw) or (raw if raw.startswith(f"{KEY_SCHEME}_") else f"{KEY_SCHEME}_{raw}")
    if not _PREFIX.fullmatch(prefix):
        return None
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    if shop is not None:
        query = query.where(ApiKey.shop_id == shop.id)
    return db.session.scalars(query).first()


def revoke_key(api_key: ApiKey, *, actor: str = "cli") -> ApiKey:
    """Revoke a key; revoking twice keeps the first revocation time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.session.add(AuditEvent(shop_id=api_key.shop_id, actor=actor, action="api_key.revoked",
                                  subject_type="api_key", subject_id=api_key.id,
                                  details={"prefix": api_key.prefix}))
    return api_key


_KEY_WITH_SHOP = (
    select(ApiKey, Shop).join(Shop, Shop.id == ApiKey.shop_id).where(ApiKey.prefix == bindparam("prefix", type_=String))
)


def authenticate(key: str, *, now: dt.datetime | None = None) -> tuple[ApiKey, Shop] | None:
    """Return the live key and its installed shop for a presented key, or None.

    The row is found by its public prefix and the hashes are compared in constant time. A revoked
    key, or a key of a shop that is uninstalled, authenticates nothing.
    """
    prefix = split_prefix(key.strip())
    if prefix is None:
        return None
    presented = hash_key(key.strip())
    found: ApiKey | None = None
    shop: Shop | None = None
    # The key and its shop in one round trip: this runs before every API request.
    for candidate, owner in db.session.execute(_KEY_WITH_SHOP, {"prefix": prefix}):
        if hmac.compare_digest(candidate.key_hash, presented):
            found, shop = candidate, owner
    if found is None or found.revoked_at is not None:
        return None
    if shop is None or not shop.is_installed:
        return None
    now = now or utcnow()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        # One conditional UPDATE, no read-modify-write: concurrent requests cannot fight over it.
        db.session.execute(update(ApiKey).where(ApiKey.id == found.id).values(last_used_at=now))
        found.last_used_at = now
    return found, shop


def describe_key(api_key: ApiKey) -> dict[str, str | None]:
    """Return a key's public description (never its hash)."""
    return {
        "prefix": api_key.prefix,
        "name": api_key.name,
        "createdAt": _iso(api_key.created_at),
        "lastUsedAt": _iso(api_key.last_used_at),
        "revokedAt": _iso(api_key.revoked_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _shop_by_domain(domain: str) -> Shop:
    canonical = sanitize_shop_domain(domain)
    if canonical is None:
        raise click.BadParameter(f"{domain!r} is not a {{handle}}.myshopify.com domain.", param_hint="SHOP")
    shop = db.session.scalars(select(Shop).where(Shop.shopify_domain == canonical)).first()
    if shop is None:
        raise click.ClickException(f"No shop {canonical} is known here; install the app on it first.")
    return shop


api_key_cli = AppGroup("api-key", help="Manage integrator API keys.")


@api_key_cli.command("create")
@click.argument("shop_domain")
@click.option("--name", default=None, help="A label for the key, e.g. the integrator's name.")
def create_command(shop_domain: str, name: str | None) -> None:
    """Create an API key for a shop and print it (on the last line) once."""
    shop = _shop_by_domain(shop_domain)
    if not shop.is_installed:
        click.echo(f"Warning: {shop.shopify_domain} is not installed; the key works once it is.", err=True)
    try:
        created = create_key(shop, name)
    except ValidationError as exc:
        raise click.BadParameter(exc.message, param_hint="--name") from None
    db.session.commit()
    click.echo(f"Created API key {created.api_key.prefix} for {shop.shopify_domain}. "
               "Store it now: it is not shown again.")
    click.echo(created.key)


@api_key_cli.command("revoke")
@click.argument("prefix")
def revoke_command(prefix: str) -> None:
    """Revoke the API key with this public prefix (rpk_xxxxxxxx)."""
    api_key = find_key(prefix)
    if api_key is None:
        raise click.ClickException(f"No API key with prefix {prefix!r}.")
    revoke_key(api_key)
    db.session.commit()
    click.echo(f"Revoked API key {api_key.prefix}.")


@api_key_cli.command("list")
@click.argument("shop_domain")
def list_command(shop_domain: str) -> None:
    """List a shop's API keys (prefix, name, created, last used, revoked)."""
    shop = _shop_by_domain(shop_domain)
    keys = list_keys(shop)
    if not keys:
        click.echo(f"{shop.shopify_domain} has no API keys.")
        return
    for api_key in keys:
        info = describe_key(api_key)
        state = f"revoked {info['revokedAt']}" if api_key.revoked_at else "active"
        click.echo(f"{info['prefix']}\t{info['name'] or '-'}\tcreated {info['createdAt']}\t"
                   f"last used {info['lastUsedAt'] or 'never'}\t{state}")


def register_api_key_commands(app: Flask) -> None:
    """Add the ``api-key`` command group."""
    app.cli.add_command(api_key_cli)


__all__ = [
    "NewApiKey",
    "authenticate",
    "create_key",
    "describe_key",
    "find_key",
    "hash_key",
    "list_keys",
    "register_api_key_commands",
    "revoke_key",
]
