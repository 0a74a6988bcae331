"""Shopify install (OAuth) and the embedded-admin session-token guard."""
