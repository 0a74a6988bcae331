#!/usr/bin/env bash
# Install the app and run it on its embedded default: SQLite, demo shop when no Shopify credentials are set.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
exec python3 app.py
