"""The referral engine: campaigns, customers, codes, invitations, attribution, qualification, ledger."""
