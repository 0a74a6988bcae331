"""The background jobs of the queued webhook intake, registered with :mod:`referral_plugin.jobs`."""

from __future__ import annotations

from referral_plugin.jobs import every_minute
from referral_plugin.jobs import job
from referral_plugin.jobs import periodic_job


# Huey's retries cover a passing fault (a deadlock, a database restart) within minutes: 10, 20, 40, 80 and
# 160 s apart. After that the sweeper tries again every few minutes up to WEBHOOK_MAX_ATTEMPTS runs.
@job("webhooks.process_delivery", retries=5, retry_delay=10)
def process_delivery_job(delivery_id: int) -> str:
    """Run the topic handler of a delivery the queued intake stored."""
    from referral_plugin.webhooks.queued import process_stored_delivery

    return process_stored_delivery(delivery_id)


@periodic_job("webhooks.sweep", every_minute())
def sweep_deliveries_job() -> None:
    """Re-enqueue deliveries whose job was lost and failed ones with attempts to spare."""
    from referral_plugin.webhooks.queued import sweep_deliveries

    sweep_deliveries()
