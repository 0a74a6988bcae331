"""Closed-loop HTTP load from its own process: N connections each sending signed webhooks back to back.

Usage (``bench/run.py`` calls it; it prints one JSON object)::

    python bench/load.py --url http://127.0.0.1:8000/webhooks --concurrency 200 --requests 4000 \
        --max-seconds 60 --first-order 1000000 --advocate-codes CODE1,CODE2,...

Each request is a distinct ``orders/paid`` delivery (its own order, friend and webhook id) using one of the
advocates' codes, signed with the test secret, so every one goes through attribution and the ledger. The client
is a small asyncio HTTP/1.1 client (keep-alive when the server allows it): cheap enough that one process can
keep 200 requests in flight on a small machine without becoming the bottleneck it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hush"
SHOP = "bench-shop.myshopify.com"


def order_payload(template: dict[str, t.Any], order_id: int, friend_id: int, code: str) -> bytes:
    """Return the body of one paid first order of a new friend, with an advocate's code."""
    order = dict(template)
    email = f"friend{friend_id}@bench.example"
    order.update(
        {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#B{order_id}",
            "order_number": order_id,
            "email": email,
            "contact_email": email,
            "financial_status": "paid",
            "test": False,
            "cancelled_at": None,
            "cancel_reason": None,
            "subtotal_price": "120.00",
            "current_subtotal_price": "120.00",
            "total_price": "120.00",
            "current_total_price": "120.00",
            "currency": "USD",
            "discount_codes": [{"code": code, "amount": "10.00", "type": "fixed_amount"}],
            "note_attributes": [],
            "landing_site": f"/?ref={code}",
            "customer": {
                **(template.get("customer") or {}),
                "id": friend_id,
                "email": email,
                "first_name": "Fran",
                "last_name": f"Friend{friend_id}",
                "phone": None,
                "admin_graphql_api_id": f"gid://shopify/Customer/{friend_id}",
            },
        }
    )
    return json.dumps(order).encode()


def build_request(host: str, path: str, body: bytes) -> bytes:
    """Return the raw HTTP request of one signed delivery."""
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "X-Shopify-Topic: orders/paid",
        f"X-Shopify-Hmac-Sha256: {signature}",
        f"X-Shopify-Shop-Domain: {SHOP}",
        "X-Shopify-API-Version: 2026-07",
        f"X-Shopify-Webhook-Id: {uuid.uuid4()}",
        "X-Shopify-Triggered-At: 2026-11-22T10:00:00.000000Z",
        "",
        "",
    ]
    return "\r\n".join(headers).encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    keep_alive = lines[0].startswith("HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection":
            keep_alive = value.strip().lower() == "keep-alive" or (keep_alive and value.strip().lower() != "close")
    if length:
        await reader.readexactly(length)
    return status, keep_alive


async def run_load(
    url: str, requests_: list[bytes], concurrency: int, max_seconds: float
) -> tuple[list[float], list[int], float]:
    """Send every request over ``concurrency`` connections; return latencies (s), statuses and wall time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in requests_:
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: list[int] = []
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.perf_counter() < deadline:
            try:
                raw = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(raw)
                await writer.drain()
                status, keep_alive = await asyncio.wait_for(_read_response(reader), timeout=30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                status, keep_alive = 599, False
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
            if not keep_alive and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


def percentile(values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def main(argv: t.Sequence[str]) -> int:
    """Run one load and print its numbers as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--first-order", type=int, default=1_000_000)
    parser.add_argument("--advocate-codes", required=True)
    parser.add_argument("--warmup", type=int, default=0, help="requests sent first and left out of the numbers")
    args = parser.parse_args(argv)

    template = json.loads((ROOT / "tests" / "fixtures" / "shopify" / "orders_paid.json").read_text())
    codes = args.advocate_codes.split(",")
    parts = urlsplit(args.url)
    host = parts.netloc
    path = parts.path or "/"
    total = args.warmup + args.requests
    bodies = [
        build_request(
            host,
            path,
            order_payload(template, args.first_order + i, 50_000_000 + args.first_order + i, codes[i % len(codes)]),
        )
        for i in range(total)
    ]
    # Wall-clock times, for bench/run.py to measure how long queued deliveries take to be processed after this.
    first_sent = time.time()
    if args.warmup:
        asyncio.run(run_load(args.url, bodies[: args.warmup], min(args.concurrency, args.warmup), args.max_seconds))
    latencies, statuses, wall = asyncio.run(
        run_load(args.url, bodies[args.warmup :], args.concurrency, args.max_seconds)
    )
    last_answered = time.time()
    ok = sum(1 for s in statuses if 200 <= s < 300)
    result = {
        "concurrency": args.concurrency,
        "sent": len(statuses),
        "ok": ok,
        "errors": len(statuses) - ok,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "seconds": round(wall, 3),
        "throughput": round(ok / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "warmup": args.warmup,
        "first_sent_at": first_sent,
        "last_answered_at": last_answered,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
