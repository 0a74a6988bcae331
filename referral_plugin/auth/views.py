"""Shopify install (OAuth) and the embedded-admin session-token guard."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")
