#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/test_factory.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/_env.sh

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# --- PostgreSQL + Redis servers for the second pass (SCALE) ---
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
apt_install "${need_apt[@]}"

"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'

# --- Two passes (SCALE): SQLite, then the same suite on PostgreSQL + Redis ---
# Pass 1 runs on SQLite files; tests that need PostgreSQL wait for pass 2.
"$PY" -m pytest -m "not postgres" "$@"
# Pass 2: tests/servers.py starts a throwaway PostgreSQL cluster (as an unprivileged user, private socket, free
# port) and Redis (free port, no persistence), exports TEST_DATABASE_URL and REDIS_URL_TEST, runs pytest, always
# stops and deletes both, and exits with pytest's status. Browser tests already ran in pass 1.
"$PY" -m tests.servers -- "$PY" -m pytest -m "not browser" "$@"
