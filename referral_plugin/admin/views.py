"""The embedded merchant dashboard and its JSON endpoints."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)
