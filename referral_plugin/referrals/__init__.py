"""The referral engine: campaigns, customers, codes, invitations, attribution, the ledger and reversals.

Services here flush but never commit: a webhook handler runs inside the delivery's transaction, and
a view commits once its service call returned.
"""
