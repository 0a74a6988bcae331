#!/usr/bin/env bash
# Install the app and run it on its embedded default: SQLite, demo shop when no Shopify credentials are set.
# HOST and PORT choose where it listens (default 127.0.0.1:5000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh

"$PY" -m pip install --quiet --disable-pip-version-check -e .
exec "$PY" app.py
