"""Start throwaway PostgreSQL and Redis servers for tests, from the Debian binaries.

Used two ways:

- as a library by ``tests/scale/conftest.py`` (a developer can run ``pytest tests/scale`` on a bare machine
  with the Debian ``postgresql`` and ``redis-server`` packages installed);
- as a wrapper by ``scripts/test.sh``: ``python -m tests.servers -- python -m pytest ...`` starts both servers,
  exports ``TEST_DATABASE_URL``, ``DATABASE_URL_TEST_POSTGRES`` and ``REDIS_URL_TEST``, runs the command,
  always stops and removes both, and exits with the command's status.

PostgreSQL refuses to run as root, so when we are root the cluster runs as the ``postgres`` system user in a
temporary directory that user owns; otherwise as ourselves. The cluster listens on 127.0.0.1 and a private
socket directory, on a free port, with ``fsync=off`` (throwaway data). Host connections need a password.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

PG_SUPERUSER = "rp_test"


class ServerUnavailable(RuntimeError):
    """The binaries to start a server are not installed."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            time.sleep(0.05)


def postgres_bin_dir() -> Path | None:
    """Return the newest Debian PostgreSQL ``bin`` directory, or the one holding ``pg_ctl`` on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name.split(".")[0]))
    for directory in reversed(candidates):
        if (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _run_as() -> str | None:
    """Return the system user to run PostgreSQL as (``postgres`` when we are root), or None for ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServerUnavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class PostgresServer:
    """A throwaway PostgreSQL cluster; ``url`` points at its ``postgres`` database."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise ServerUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin_dir = bin_dir
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="rp-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.started = False

    @property
    def url(self) -> str:
        """Return the SQLAlchemy URL of the ``postgres`` database, with credentials."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """Return the SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+psycopg://{PG_SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
        )

    def start(self) -> str:
        """Create the cluster, start it and return its URL."""
        self.sockets.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                PG_SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            options = " ".join(
                [
                    f"-k {self.sockets}",
                    f"-p {self.port}",
                    "-c listen_addresses=127.0.0.1",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=300",
                    "-c shared_buffers=256MB",
                ]
            )
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o", options, "start"
            )
        except subprocess.CalledProcessError as error:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL failed to start: {error.stderr!r} {log}") from error
        self.started = True
        wait_for_port(self.port)
        return self.url

    def stop(self) -> None:
        """Stop the cluster at once and remove its files."""
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throwaway Redis with no persistence; ``url`` points at database 0."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
        )
        if binary is None:
            raise ServerUnavailable("Redis is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rp-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the Redis URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start Redis and return its URL."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop Redis and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Run a throwaway PostgreSQL for the duration of the block."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """Run a throwaway Redis for the duration of the block."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server ``url`` points at and return its URL."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name``, disconnecting whoever still uses it."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    """Turn a SQLAlchemy URL into a libpq one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def main(argv: t.Sequence[str]) -> int:
    """Start PostgreSQL and Redis, run the command after ``--`` with their URLs exported, stop them."""
    command = list(argv[argv.index("--") + 1 :] if "--" in argv else argv)
    if not command:
        print("usage: python -m tests.servers -- <command> [args...]", file=sys.stderr)
        return 2

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    with running_postgres() as pg, running_redis() as redis:
        database = create_database(pg.url, "referral_plugin_test")
        env = dict(os.environ)
        env["TEST_DATABASE_URL"] = database
        env["DATABASE_URL_TEST_POSTGRES"] = database
        env["REDIS_URL_TEST"] = redis.url
        print(f"tests.servers: PostgreSQL on 127.0.0.1:{pg.port}, Redis on 127.0.0.1:{redis.port}", flush=True)
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
