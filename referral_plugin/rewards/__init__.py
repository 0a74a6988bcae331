"""Rewards outside the ledger: discount codes in Shopify and reward emails, all through the job queue.

Every ``schedule_*`` call parks its job on the current database session; it is enqueued when that
session commits and dropped if it rolls back (see :mod:`referral_plugin.jobs`). Call them inside the
unit of work that wrote the rows the job needs, e.g. right after adding the grant.
"""

from __future__ import annotations

from referral_plugin.jobs import schedule_campaign_code_sync
from referral_plugin.jobs import schedule_code_discount_sync
from referral_plugin.jobs import schedule_discount_deactivation
from referral_plugin.jobs import schedule_discount_issue
from referral_plugin.jobs import schedule_email

__all__ = [
    "schedule_campaign_code_sync",
    "schedule_code_discount_sync",
    "schedule_discount_deactivation",
    "schedule_discount_issue",
    "schedule_email",
]
