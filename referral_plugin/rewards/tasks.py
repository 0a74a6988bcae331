"""The background jobs of rewards and mail, registered with :mod:`referral_plugin.jobs`."""

from __future__ import annotations

import typing as t

from referral_plugin.jobs import every_minute
from referral_plugin.jobs import job
from referral_plugin.jobs import periodic_job


@job("rewards.issue_discount", retries=10, retry_delay=10)
def issue_discount_job(entry_id: int) -> str:
    """Create the Shopify discount of a discount grant."""
    from referral_plugin.rewards.discounts import issue_discount

    return issue_discount(entry_id)


@job("rewards.deactivate_discount", retries=10, retry_delay=10)
def deactivate_discount_job(entry_id: int) -> str:
    """Deactivate the Shopify discount of a reversed grant."""
    from referral_plugin.rewards.discounts import deactivate_discount

    return deactivate_discount(entry_id)


@job("rewards.sync_code_discount", retries=10, retry_delay=10)
def sync_code_discount_job(referral_code_id: int) -> str:
    """Make an advocate's referral code a live Shopify discount (or take it down)."""
    from referral_plugin.rewards.discounts import sync_code_discount

    return sync_code_discount(referral_code_id)


@job("rewards.repair_code_discount", retries=0)
def repair_code_discount_job(referral_code_id: int) -> str:
    """Redo a lost code sync (queued by the sweeper): nothing when the code already matches its campaign."""
    from referral_plugin.rewards.discounts import sync_code_discount

    return sync_code_discount(referral_code_id, repair_only=True)


@job("rewards.sync_campaign_codes", retries=3, retry_delay=30)
def sync_campaign_codes_job(campaign_id: int) -> int:
    """Queue a sync of every code of a campaign whose friend reward changed; return how many."""
    from referral_plugin.jobs import get_queue
    from referral_plugin.rewards.discounts import campaign_code_ids

    ids = campaign_code_ids(campaign_id)
    queue = get_queue()
    for referral_code_id in ids:
        queue.enqueue("rewards.sync_code_discount", referral_code_id)
    return len(ids)


@job("mail.send", retries=6, retry_delay=30)
def send_email_job(kind: str, ids: dict[str, t.Any]) -> bool:
    """Build and send one email of ``kind``."""
    from referral_plugin.rewards.emails import deliver

    return deliver(kind, **ids)


@periodic_job("rewards.sweep", every_minute())
def sweep_job() -> None:
    """Release due holds and re-queue the work of lost jobs (discounts, deactivations, code syncs, emails)."""
    from referral_plugin.rewards.sweeper import sweep

    sweep()
