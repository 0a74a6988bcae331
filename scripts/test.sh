#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/test_factory.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# --- PostgreSQL + Redis servers for the second pass (SCALE) ---
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

# --- Two passes (SCALE): SQLite, then the same suite on PostgreSQL + Redis ---
# Pass 1 runs on SQLite files; tests that need PostgreSQL wait for pass 2.
python3 -m pytest -m "not postgres" "$@"
# Pass 2: tests/servers.py starts a throwaway PostgreSQL cluster (as an unprivileged user, private socket, free
# port) and Redis (free port, no persistence), exports TEST_DATABASE_URL and REDIS_URL_TEST, runs pytest, always
# stops and deletes both, and exits with pytest's status. Browser tests already ran in pass 1.
python3 -m tests.servers -- python3 -m pytest -m "not browser" "$@"
