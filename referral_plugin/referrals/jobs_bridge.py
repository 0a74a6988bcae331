"""The engine's calls into JOBS' background work (discount codes in Shopify), in one place.

Each call parks a job that runs only after the current transaction commits (immediately in tests).
"""

from __future__ import annotations


def schedule_discount_issue(ledger_entry_id: int) -> None:
    """Have JOBS create the Shopify discount code of a GRANT (or RELEASE) row after commit."""
    from referral_plugin.jobs import schedule_discount_issue as schedule

    schedule(ledger_entry_id)


def schedule_discount_deactivation(ledger_entry_id: int) -> None:
    """Have JOBS deactivate the unused Shopify discount code of a reversed grant after commit."""
    from referral_plugin.jobs import schedule_discount_deactivation as schedule

    schedule(ledger_entry_id)


def schedule_code_discount_sync(referral_code_id: int) -> None:
    """Have JOBS make an advocate's code a live Shopify discount with the friend's offer after commit."""
    from referral_plugin.jobs import schedule_code_discount_sync as schedule

    schedule(referral_code_id)
