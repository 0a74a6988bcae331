"""Webhook intake: verify, record, dedupe, dispatch to the per-topic handler table."""
