"""Widget render and invite-link landing time at 100,000 customers, and the size of widget.js.

Usage::

    python bench/widget.py                      # 100,000 customers, 500 requests per route
    python bench/widget.py --customers 20000 --requests 200 --json

Generates a shop in a temporary SQLite database with bulk inserts: customers, one code each, and for a
share of them clicks, invitations and referrals (so the widget's progress queries have rows to count).
Then it times signed app-proxy requests through the Flask test client (the app's own work, without a
network or server in the way) and prints a table of p50/p95/max per route.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
import typing as t
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from referral_plugin import create_app  # noqa: E402
from referral_plugin.extensions import db  # noqa: E402
from referral_plugin.models import Click  # noqa: E402
from referral_plugin.models import Customer  # noqa: E402
from referral_plugin.models import Invitation  # noqa: E402
from referral_plugin.models import Referral  # noqa: E402
from referral_plugin.models import ReferralCode  # noqa: E402
from referral_plugin.models import Shop  # noqa: E402
from referral_plugin.referrals.campaigns import ensure_default_campaign  # noqa: E402
from referral_plugin.security.crypto import encrypt  # noqa: E402
from referral_plugin.security.signatures import compute_proxy_signature  # noqa: E402

SHOP = "bench-shop.myshopify.com"
SECRET = "bench-secret"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
BATCH = 10_000


def _signed(customer_id: int | None) -> str:
    pairs = [("shop", SHOP), ("logged_in_customer_id", "" if customer_id is None else str(customer_id)),
             ("path_prefix", "/apps/referrals"), ("timestamp", str(int(time.time())))]
    pairs.append(("signature", compute_proxy_signature(pairs, SECRET)))
    return urlencode(pairs, quote_via=quote)


def _codes(count: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        seen.add("".join(secrets.choice(ALPHABET) for _ in range(8)))
    return list(seen)


def seed(customers: int, rng: random.Random) -> tuple[list[int], list[str]]:
    """Bulk-insert the shop's customers, codes and some activity; return Shopify ids and codes."""
    now = dt.datetime.now(dt.UTC)
    shop = Shop(shopify_domain=SHOP, name="Bench Shop", access_token_ciphertext=encrypt("shpat_bench"),
                scopes="write_app_proxy", installed_at=now)
    db.session.add(shop)
    db.session.commit()
    campaign = ensure_default_campaign(shop)
    db.session.commit()
    shopify_ids = list(range(1_000_001, 1_000_001 + customers))
    for start in range(0, customers, BATCH):
        chunk = shopify_ids[start:start + BATCH]
        db.session.execute(insert(Customer), [
            {"shop_id": shop.id, "shopify_customer_id": sid, "email": f"c{sid}@bench.example",
             "email_canonical": f"c{sid}@bench.example", "first_name": f"Customer{sid}", "created_at": now,
             "updated_at": now}
            for sid in chunk
        ])
    db.session.commit()
    ids = db.session.execute(db.select(Customer.id, Customer.shopify_customer_id)
                             .where(Customer.shop_id == shop.id)).all()
    internal = {sid: cid for cid, sid in ids}
    codes = _codes(customers)
    for start in range(0, customers, BATCH):
        db.session.execute(insert(ReferralCode), [
            {"shop_id": shop.id, "campaign_id": campaign.id, "customer_id": internal[sid], "code": code,
             "created_at": now}
            for sid, code in zip(shopify_ids[start:start + BATCH], codes[start:start + BATCH], strict=True)
        ])
    db.session.commit()
    code_ids = {code: cid for code, cid in db.session.execute(db.select(ReferralCode.code, ReferralCode.id))}
    # Activity for one customer in ten: 3 clicks, 2 invitations, 1 referral each.
    active = shopify_ids[::10]
    clicks, invitations, referrals = [], [], []
    for sid in active:
        advocate = internal[sid]
        code_id = code_ids[codes[sid - 1_000_001]]
        clicks += [{"shop_id": shop.id, "referral_code_id": code_id, "visitor_hash": secrets.token_hex(32),
                    "created_at": now} for _ in range(3)]
        invitations += [{"shop_id": shop.id, "campaign_id": campaign.id, "advocate_id": advocate, "channel": "email",
                         "identifier": f"friend{sid}-{k}@bench.example", "status": "invited", "source": "widget",
                         "invited_at": now} for k in range(2)]
        friend = internal[shopify_ids[(sid - 1_000_001 + 1) % customers]]
        referrals.append({"shop_id": shop.id, "campaign_id": campaign.id, "advocate_id": advocate,
                          "friend_id": friend, "source": "cart_attribute",
                          "status": rng.choice(["pending", "rewarded", "rejected"]), "reason": None,
                          "created_at": now})
    for table, rows in ((Click, clicks), (Invitation, invitations)):
        for start in range(0, len(rows), BATCH):
            db.session.execute(insert(table), rows[start:start + BATCH])
    # A friend is referred once per shop: keep the first referral per friend.
    unique: dict[int, dict[str, t.Any]] = {}
    for row in referrals:
        unique.setdefault(row["friend_id"], row)
    rows = list(unique.values())
    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(Referral), rows[start:start + BATCH])
    db.session.commit()
    return shopify_ids, codes


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": ordered[-1] * 1000}


def run(customers: int = 100_000, requests: int = 500, seed_value: int = 7) -> dict[str, t.Any]:
    """Seed the database, time each route, and return the figures."""
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "SHOPIFY_API_KEY": "bench", "SHOPIFY_API_SECRET": SECRET,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite", "HUEY_IMMEDIATE": True,
            "RATELIMIT_STORAGE_URI": "memory://", "APP_URL": "https://referrals.bench.example",
        })
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            shopify_ids, codes = seed(customers, rng)
            seed_seconds = time.perf_counter() - started
            client = app.test_client()
            routes: dict[str, t.Callable[[], str]] = {
                "GET /proxy/widget (known customer)": lambda: f"/proxy/widget?{_signed(rng.choice(shopify_ids))}",
                "GET /proxy/widget.json (known customer)":
                    lambda: f"/proxy/widget.json?{_signed(rng.choice(shopify_ids))}",
                "GET /proxy/widget (anonymous)": lambda: f"/proxy/widget?{_signed(None)}",
                "GET /proxy/r/<code> (landing)": lambda: f"/proxy/r/{rng.choice(codes)}?{_signed(None)}",
            }
            results: dict[str, dict[str, float]] = {}
            for name, url in routes.items():
                for _ in range(20):  # warm caches and the connection pool
                    client.get(url()).close()
                samples = []
                for _ in range(requests):
                    target = url()
                    began = time.perf_counter()
                    response = client.get(target)
                    response.get_data()
                    samples.append(time.perf_counter() - began)
                    if response.status_code not in (200, 302):
                        raise SystemExit(f"{name}: unexpected {response.status_code} {response.get_data()[:200]!r}")
                    response.close()
                results[name] = _percentiles(samples)
            db.session.remove()
            db.engine.dispose()
    js = (ROOT / "static" / "widget.js").read_bytes()
    css = (ROOT / "static" / "widget.css").read_bytes()
    return {
        "customers": customers,
        "seed_seconds": round(seed_seconds, 2),
        "routes": results,
        "widget_js_bytes": len(js),
        "widget_js_gzip_bytes": len(gzip.compress(js, compresslevel=9)),
        "widget_css_gzip_bytes": len(gzip.compress(css, compresslevel=9)),
    }


def print_table(figures: t.Mapping[str, t.Any]) -> None:
    """Print the figures as a table."""
    print(f"Widget benchmark: {figures['customers']:,} customers on SQLite "
          f"(seeded in {figures['seed_seconds']} s), Flask test client, signed app-proxy requests")
    print()
    print(f"{'route':<42} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    print("-" * 75)
    for name, row in figures["routes"].items():
        print(f"{name:<42} {row['n']:>5} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['max_ms']:>8.2f}")
    print()
    print(f"widget.js: {figures['widget_js_bytes']:,} bytes, {figures['widget_js_gzip_bytes']:,} bytes gzipped "
          f"(budget 6,144); widget.css: {figures['widget_css_gzip_bytes']:,} bytes gzipped")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    figures = run(args.customers, args.requests)
    print_table(figures)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
