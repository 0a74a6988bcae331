"""WSGI and CLI entry point: ``flask --app app ...``, ``gunicorn app:app``, or ``python app.py``."""

from __future__ import annotations

from referral_plugin import create_app

app = create_app()

if __name__ == "__main__":
    from referral_plugin.demo.runner import serve

    serve(app)
