"""Liveness and readiness checks."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from referral_plugin.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok"}), 200
