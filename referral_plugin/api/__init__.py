"""The integrator REST API at the seeds' paths (Capillary, Joy) plus campaigns and the OpenAPI document."""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    """Mount the API blueprints."""
