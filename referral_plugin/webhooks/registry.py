"""The per-topic handler table and the delivery metadata handlers receive.

A handler is ``handler(shop, payload, delivery) -> None``. It runs inside the transaction that
records the delivery: it must not commit, and whatever it raises rolls everything back and is
answered with a 5xx so Shopify retries. ``shop`` is None when the shop is unknown (a delivery
before install or after ``shop/redact``); handlers must cope.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from referral_plugin.models import Shop


@dataclass(frozen=True)
class Delivery:
    """What Shopify's headers say about one webhook delivery."""

    shop_domain: str
    topic: str
    webhook_id: str
    event_id: str | None
    triggered_at: dt.datetime | None
    api_version: str | None


Payload = dict[str, t.Any]
Handler = t.Callable[["Shop | None", Payload, Delivery], None]

_HANDLERS: dict[str, Handler] = {}


def register(topic: str, handler: Handler) -> None:
    """Make ``handler`` the one that handles ``topic``."""
    _HANDLERS[topic] = handler


def handler_for(topic: str) -> Handler | None:
    """Return the handler of ``topic``, or None when the app does not handle it."""
    return _HANDLERS.get(topic)


def handled_topics() -> list[str]:
    """Return every topic with a handler, sorted."""
    return sorted(_HANDLERS)
