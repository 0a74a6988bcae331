"""WSGI and CLI entry point: ``flask --app app ...``, ``gunicorn app:app``, or ``python app.py``."""

from __future__ import annotations

import os

from referral_plugin import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
