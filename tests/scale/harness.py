"""Run the real app under gunicorn, play Shopify over HTTP, and drive load: shared by tests/scale and bench/.

- :class:`AppServer` starts ``gunicorn -c gunicorn.conf.py app:app`` on a free loopback port with its
  configuration in the environment, exactly as production does, and stops it.
- :class:`FakeShopify` is a small threaded HTTP server standing in for ``https://{shop}``: the OAuth token
  endpoint and the Admin GraphQL endpoint (discount codes, unique per shop as in Shopify), with scripted faults
  (429 with ``Retry-After``, 500, slow answers, dropped connections). The app reaches it through
  ``SHOPIFY_BASE_URL_TEMPLATE``.
- :func:`signed_webhook` builds a delivery signed like Shopify signs it.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from pathlib import Path

import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key"
API_SECRET = "hush"
SECRET_KEY = "scale-test-secret-key"
SHOP = "scale-shop.myshopify.com"
METRICS_TOKEN = "scale-metrics-token"

#: Environment variables of the developer's shell that must not leak into the server under test.
_SCRUBBED_PREFIXES = ("SHOPIFY_", "MAIL_", "GUNICORN_", "PROMETHEUS_")
_SCRUBBED = {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "APP_URL", "WEB_CONCURRENCY", "TOKEN_ENCRYPTION_KEY",
             "METRICS_TOKEN", "HUEY_IMMEDIATE", "LOG_FORMAT", "BENCH_BASELINE_ROUTE"}


def app_environment(
    database_url: str,
    *,
    redis_url: str | None = None,
    shopify_base_url_template: str | None = None,
    extra: t.Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment a production process of the app would get, pointing at these servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "SECRET_KEY": SECRET_KEY,
            "METRICS_TOKEN": METRICS_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    if shopify_base_url_template:
        env["SHOPIFY_BASE_URL_TEMPLATE"] = shopify_base_url_template
    env.update(extra or {})
    return env


def app_config(database_url: str, **extra: t.Any) -> dict[str, t.Any]:
    """Return the ``create_app`` config for the test process's own view of the same database."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        **extra,
    }


class AppServer:
    """``gunicorn -c gunicorn.conf.py app:app`` on a free loopback port."""

    def __init__(self, env: t.Mapping[str, str], *, workers: int = 4, threads: int | None = None) -> None:
        self.port = free_port()
        self.metrics_dir = tempfile.mkdtemp(prefix="rp-metrics-")
        self.log_path = Path(tempfile.mkstemp(prefix="rp-gunicorn-", suffix=".log")[1])
        self.env = dict(env)
        self.env.update(
            {
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "WEB_CONCURRENCY": str(workers),
                "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
                "APP_URL": self.env.get("APP_URL", f"http://127.0.0.1:{self.port}"),
            }
        )
        # The arbiter waits out graceful_timeout on stop; tests stop servers that serve nothing any more.
        self.env.setdefault("GUNICORN_GRACEFUL_TIMEOUT", "2")
        if threads is not None:
            self.env["GUNICORN_THREADS"] = str(threads)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> AppServer:
        """Start gunicorn and wait until ``/healthz`` answers 200."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "app:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"gunicorn did not become healthy in {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        """Return what gunicorn and the app wrote so far (the last 20,000 characters)."""
        return self.log_path.read_text(errors="replace")[-20000:] if self.log_path.exists() else ""

    def stop(self, *, graceful: bool = True) -> None:
        """Stop (SIGTERM: graceful, SIGQUIT: at once), then hard after 20 s; remove temporary files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGQUIT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def webhook_hmac(body: bytes, secret: str = API_SECRET) -> str:
    """Return the base64 HMAC-SHA256 of ``body`` as Shopify sends it."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signed_webhook(
    topic: str,
    payload: t.Mapping[str, t.Any],
    *,
    shop: str = SHOP,
    webhook_id: str | None = None,
    event_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of one delivery of ``topic``, signed with the app's secret."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhook_hmac(body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-22T10:00:00.000000Z",
    }
    if event_id:
        headers["X-Shopify-Event-Id"] = event_id
    return body, headers


# --- Fake Shopify --------------------------------------------------------------------------------------------

#: Faults the fake can play, once each, in order, before answering normally again.
FAULTS = ("429", "500", "slow", "drop", "throttled")


class FakeShopify:
    """A loopback stand-in for ``https://{shop}``: OAuth token exchange and the Admin GraphQL endpoint.

    Discount codes are unique per shop, as in Shopify: creating a code that exists answers a ``TAKEN`` user
    error. ``faults`` is a queue of scripted failures for GraphQL calls; ``slow_seconds`` is how long a
    ``slow`` answer takes. ``hold`` (a :class:`threading.Event`), when set up, makes discount creation wait
    until released, so a test can kill a worker in the middle of a job.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: collections.deque[str] = collections.deque()
        self.slow_seconds = 15.0
        self.requests: list[dict[str, t.Any]] = []
        #: Every GraphQL call: when it arrived and the fault it got ("ok" when none).
        self.calls: list[tuple[float, str]] = []
        self.discounts: dict[str, dict[str, dict[str, t.Any]]] = collections.defaultdict(dict)
        self.tokens_issued = 0
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """Return the port it listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url_template(self) -> str:
        """Return the value for ``SHOPIFY_BASE_URL_TEMPLATE``."""
        return f"http://127.0.0.1:{self.port}/{{shop}}"

    def start(self) -> FakeShopify:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeShopify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *faults: str) -> None:
        """Queue faults for the next GraphQL calls."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}")
        with self.lock:
            self.faults.extend(faults)

    def discount_creations(self) -> list[dict[str, t.Any]]:
        """Return every discount-creating GraphQL call that reached the fake, answered or not."""
        with self.lock:
            return [r for r in self.requests if r.get("mutation", "").startswith("discountCode")]

    def codes(self, shop: str) -> dict[str, dict[str, t.Any]]:
        """Return the discount codes that exist in ``shop``."""
        with self.lock:
            return dict(self.discounts[shop])

    # -- request handling --

    def _next_fault(self) -> str | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def _graphql(self, shop: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        query = str(body.get("query", ""))
        variables = body.get("variables") or {}
        match = re.search(r"\b(discountCode\w+|discountAutomatic\w+|\w+)\s*\(", query.split("{", 1)[-1])
        mutation = match.group(1) if match and query.lstrip().startswith("mutation") else ""
        with self.lock:
            self.requests.append({"shop": shop, "mutation": mutation, "variables": variables, "at": time.time()})
        if mutation.startswith("discountCode") and mutation.endswith("Create"):
            if self.hold is not None:
                self.holding.set()
                self.hold.wait(60)
            return self._create_discount(shop, mutation, variables)
        if mutation.startswith("discountCode") and ("Deactivate" in mutation or "Delete" in mutation):
            node_id = str(variables.get("id", ""))
            return {"data": {mutation: {"userErrors": [], "codeDiscountNode": {"id": node_id}}}}
        # Lookups (codeDiscountNodeByCode and friends): answer from what exists.
        code = _find_code_variable(variables)
        if code is not None:
            with self.lock:
                existing = self.discounts[shop].get(code.upper())
            node = {"id": existing["id"], "codeDiscount": {"codes": {"nodes": [{"code": code}]}}} if existing else None
            return {"data": {"codeDiscountNodeByCode": node}}
        return {"data": {}}

    def _create_discount(self, shop: str, mutation: str, variables: dict[str, t.Any]) -> dict[str, t.Any]:
        discount = next((v for v in variables.values() if isinstance(v, dict)), {})
        code = str(discount.get("code") or "").upper()
        with self.lock:
            if code and code in self.discounts[shop]:
                return {
                    "data": {
                        mutation: {
                            "codeDiscountNode": None,
                            "userErrors": [
                                {
                                    "field": ["basicCodeDiscount", "code"],
                                    "message": "Code must be unique. Please try a different code.",
                                    "code": "TAKEN",
                                }
                            ],
                        }
                    }
                }
            node_id = f"gid://shopify/DiscountCodeNode/{len(self.discounts[shop]) + 1000}"
            self.discounts[shop][code] = {"id": node_id, "variables": variables}
        return {
            "data": {
                mutation: {
                    "codeDiscountNode": {
                        "id": node_id,
                        "codeDiscount": {"codes": {"nodes": [{"code": code}]}, "title": discount.get("title")},
                    },
                    "userErrors": [],
                }
            },
            "extensions": {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": 10,
                    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
                }
            },
        }

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - stdlib signature
                return

            def _send(self, status: int, body: t.Any, headers: t.Mapping[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                shop = parts[0] if parts else ""
                rest = "/".join(parts[1:])
                if rest == "admin/oauth/access_token":
                    with fake.lock:
                        fake.tokens_issued += 1
                    self._send(200, {"access_token": f"shpat_fake_{uuid.uuid4().hex}", "scope": _SCOPES})
                    return
                if not rest.endswith("graphql.json"):
                    self._send(404, {"errors": "Not Found"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"errors": "bad json"})
                    return
                fault = fake._next_fault()
                with fake.lock:
                    fake.calls.append((time.time(), fault or "ok"))
                if fault == "429":
                    self._send(429, {"errors": "Exceeded 2 calls per second for api client."}, {"Retry-After": "1"})
                    return
                if fault == "500":
                    self._send(500, {"errors": "Internal Server Error"})
                    return
                if fault == "throttled":
                    self._send(200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})
                    return
                if fault == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                self._send(200, fake._graphql(shop, body))

        return Handler


_SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"


def _find_code_variable(variables: t.Mapping[str, t.Any]) -> str | None:
    for key in ("code", "discountCode"):
        value = variables.get(key)
        if isinstance(value, str):
            return value
    return None


# --- Load ------------------------------------------------------------------------------------------------


def concurrently(calls: t.Sequence[t.Callable[[], t.Any]], *, timeout: float = 60.0) -> list[t.Any]:
    """Run ``calls`` at the same moment on one thread each (released by a barrier) and return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[t.Any] = [None] * len(calls)

    def run(index: int, call: t.Callable[[], t.Any]) -> None:
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - reported to the caller as the result
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"{sum(th.is_alive() for th in threads)} calls still running after {timeout}s")
    return results
