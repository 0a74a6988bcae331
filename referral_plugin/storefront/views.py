"""The storefront through the Shopify app proxy: widget, invitations, invite-link landing."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("storefront", __name__, url_prefix="/proxy")
