"""Demo-mode shortcuts for the demo shop; registered only in demo mode."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("demo", __name__, url_prefix="/demo")
