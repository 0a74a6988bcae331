"""The background job of the dashboard: keep every installed shop's summary roll-up built."""

from __future__ import annotations

import datetime as dt
import logging

from referral_plugin.jobs import every_minute
from referral_plugin.jobs import periodic_job

logger = logging.getLogger(__name__)

#: Every consumer's scheduler fires the job; one run per interval does the work.
WARM_EVERY = dt.timedelta(seconds=55)


@periodic_job("reports.warm_summaries", every_minute())
def warm_summaries_job() -> None:
    """Build the closed days each installed shop's roll-up lacks (after a deploy, or a write that retired it)."""
    from sqlalchemy import select

    from referral_plugin.extensions import db
    from referral_plugin.jobs import get_queue
    from referral_plugin.models import Shop
    from referral_plugin.models import utcnow
    from referral_plugin.reports.rollup import warm

    if not get_queue().claim("reports.warm_summaries", utcnow(), WARM_EVERY):
        return
    shops = db.session.execute(select(Shop).where(Shop.uninstalled_at.is_(None)).order_by(Shop.id)).scalars().all()
    for shop in shops:
        try:
            missing = warm(shop)
        except Exception:  # noqa: BLE001 - one shop's failed build must not stop the others; requests count raw
            logger.warning("summary roll-up warm-up failed for shop %s", shop.id, exc_info=True)
            db.session.rollback()
            continue
        if missing:
            logger.info("summary roll-up: built up to %d missing days for shop %s", missing, shop.id)
