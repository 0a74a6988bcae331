"""Time the Capillary lookup (``GET /v2/customers/lookup/referrals``) on a shop with a million referrals.

Usage::

    python bench/lookup.py --database postgresql+psycopg://...   # an empty PostgreSQL database
    python bench/lookup.py --database ... --referrals 200000 --requests 300 --json
    python bench/lookup.py                        # a throwaway PostgreSQL cluster, removed afterwards
    python bench/lookup.py --reuse /tmp/lookup-pg # keep the loaded cluster there; later runs skip the load

The data is generated inside PostgreSQL with ``INSERT ... SELECT generate_series`` (a minute, not an hour):
100,000 advocates with one code each, a new friend per referral (10 referrals per advocate), an invitation
per referral, and for 40 % of the referrals an attribution and the two grants they earned; a second shop
shares the tables so every query must scope by shop; then ``VACUUM ANALYZE``, as autovacuum would do
soon after such a load. Then signed API requests (``X-Api-Key``) for random advocates are timed through
the Flask test client (the app's own work, no network) by e-mail and by external id, and a table of
p50/p95/max is printed. ``--heavy N`` adds one advocate with N referrals (an influencer: referrals per
advocate follow a power law in real shops) and a third row timing random pages of its lists.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHOP = "bench-lookup.myshopify.com"
OTHER_SHOP = "bench-other.myshopify.com"


def _load(referrals: int, advocates: int) -> dict[str, t.Any]:
    """Create both shops and the rows; return the ids the timing needs."""
    from sqlalchemy import text

    from referral_plugin.apikeys import create_key
    from referral_plugin.extensions import db
    from referral_plugin.installs import install_shop

    shops = {}
    for domain in (SHOP, OTHER_SHOP):
        shop = install_shop(domain, "shpat_bench", "read_customers,write_customers,read_orders,write_discounts")
        shops[domain] = shop
    key = create_key(shops[SHOP], "bench").key
    db.session.commit()
    from referral_plugin.models import Campaign

    campaign_ids = {
        d: db.session.scalar(db.select(Campaign.id).where(Campaign.shop_id == s.id, Campaign.is_default))
        for d, s in shops.items()
    }
    base = 10_000_000
    for domain, shop in shops.items():
        n_refs = referrals if domain == SHOP else max(1, referrals // 10)
        n_adv = advocates if domain == SHOP else max(1, advocates // 10)
        params = {
            "shop": shop.id,
            "campaign": campaign_ids[domain],
            "base": base,
            "adv": n_adv,
            "refs": n_refs,
            "dom": domain.split(".")[0],
        }
        statements = [
            # Advocates: Shopify ids base+1..base+adv; friends: base+adv+1..base+adv+refs.
            """INSERT INTO customers (shop_id, shopify_customer_id, email, email_canonical, first_name, last_name,
                   created_at, updated_at, paid_orders_count)
               SELECT :shop, :base + g, 'adv' || g || '@' || :dom || '.example',
                      'adv' || g || '@' || :dom || '.example',
                      'Ada' || g, 'Advocate', (now() at time zone 'utc') - (g % 730) * interval '1 day',
                      now() at time zone 'utc', 0
               FROM generate_series(1, :adv) g""",
            """INSERT INTO customers (shop_id, shopify_customer_id, email, email_canonical, first_name, last_name,
                   created_at, updated_at, paid_orders_count)
               SELECT :shop, :base + :adv + g, 'friend' || g || '@' || :dom || '.example',
                      'friend' || g || '@' || :dom || '.example', 'Fran' || g, 'Friend',
                      (now() at time zone 'utc') - (g % 730) * interval '1 day', now() at time zone 'utc',
                      CASE WHEN g % 5 < 2 THEN 1 ELSE 0 END
               FROM generate_series(1, :refs) g""",
            """INSERT INTO referral_codes (shop_id, campaign_id, customer_id, code, created_at)
               SELECT :shop, :campaign, c.id, upper(:dom) || 'C' || (c.shopify_customer_id - :base),
                      now() at time zone 'utc'
               FROM customers c WHERE c.shop_id = :shop AND c.shopify_customer_id <= :base + :adv""",
            """CREATE TEMP TABLE bench_pairs ON COMMIT DROP AS
               SELECT g, a.id AS advocate_id, f.id AS friend_id, rc.id AS code_id, f.email AS friend_email,
                      (now() at time zone 'utc') - (g % 730) * interval '1 day' AS at
               FROM generate_series(1, :refs) g
               JOIN customers a ON a.shop_id = :shop AND a.shopify_customer_id = :base + 1 + (g % :adv)
               JOIN customers f ON f.shop_id = :shop AND f.shopify_customer_id = :base + :adv + g
               JOIN referral_codes rc ON rc.customer_id = a.id""",
            *_referral_inserts("bench_pairs", 900_000_000),
            """INSERT INTO order_attributions (shop_id, shopify_order_id, referral_id, referral_code_id, advocate_id,
                   friend_id, source, decision, subtotal, total, currency, test, created_at)
               SELECT r.shop_id, r.shopify_order_id, r.id, r.referral_code_id, r.advocate_id, r.friend_id,
                      'discount_code', 'qualified', 120, 120, 'USD', false, r.created_at
               FROM referrals r WHERE r.shop_id = :shop AND r.shopify_order_id IS NOT NULL""",
            """INSERT INTO ledger_entries (shop_id, customer_id, referral_id, campaign_id, entry_type, side,
                   reward_kind, points, amount, idempotency_key, shopify_order_id, created_at)
               SELECT r.shop_id, CASE s.side WHEN 'advocate' THEN r.advocate_id ELSE r.friend_id END, r.id,
                      r.campaign_id, 'grant', s.side, 'points', s.points, 0,
                      'grant:' || r.shopify_order_id || ':' || s.side, r.shopify_order_id, r.created_at
               FROM referrals r
               CROSS JOIN (VALUES ('advocate', 100), ('friend', 50)) AS s(side, points)
               WHERE r.shop_id = :shop AND r.shopify_order_id IS NOT NULL""",
        ]
        with db.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params)
        base += 50_000_000
    _vacuum_analyze()
    return {"key": key, "advocates": advocates, "base": 10_000_000}


def _referral_inserts(pairs: str, first_order_id: int) -> list[str]:
    """Return the invitation and referral inserts for the rows of the temp table ``pairs``.

    Two in five referrals are rewarded first orders, numbered from ``first_order_id``.
    """
    return [
        f"""INSERT INTO invitations (shop_id, campaign_id, advocate_id, channel, identifier, status, source,
               friend_id, invited_at)
           SELECT :shop, :campaign, advocate_id, 'email', friend_email,
                  CASE WHEN g % 5 < 2 THEN 'purchased' ELSE 'joined' END, 'widget', friend_id, at
           FROM {pairs}""",
        f"""INSERT INTO referrals (shop_id, campaign_id, referral_code_id, advocate_id, friend_id, source, status,
               shopify_order_id, order_subtotal, order_total, currency, created_at, decided_at)
           SELECT :shop, :campaign, code_id, advocate_id, friend_id, 'discount_code',
                  CASE WHEN g % 5 < 2 THEN 'rewarded' ELSE 'pending' END,
                  CASE WHEN g % 5 < 2 THEN {first_order_id} + g END, 120, 120, 'USD', at,
                  CASE WHEN g % 5 < 2 THEN at END
           FROM {pairs}""",
    ]


#: Shopify id of the one heavy advocate (below the generated ranges), and the first id of its friends.
HEAVY_ID = 9_000_000
HEAVY_FRIENDS = 8_000_000


def _load_heavy(referrals: int) -> None:
    """Give the bench shop one advocate with ``referrals`` referrals (an influencer), unless it has them already.

    Referrals per advocate follow a power law in real shops; this one tells what a big advocate costs.
    Each referral has its friend and invitation, and 40 % of them the two grants they earned.
    """
    from sqlalchemy import text

    from referral_plugin.extensions import db

    params = {"heavy": HEAVY_ID, "friends": HEAVY_FRIENDS, "refs": referrals}
    with db.engine.begin() as connection:
        shop, campaign = connection.execute(text(
            "SELECT s.id, c.id FROM shops s JOIN campaigns c ON c.shop_id = s.id AND c.is_default "
            "WHERE s.shopify_domain = :domain"), {"domain": SHOP}).one()
        params.update(shop=shop, campaign=campaign)
        have = connection.execute(text(
            "SELECT count(*) FROM referrals r JOIN customers c ON c.id = r.advocate_id "
            "WHERE c.shop_id = :shop AND c.shopify_customer_id = :heavy"), params).scalar_one()
        if have == referrals:
            return
        if have:
            raise SystemExit(f"the heavy advocate has {have} referrals, not {referrals}: load afresh")
        statements = [
            """INSERT INTO customers (shop_id, shopify_customer_id, email, email_canonical, first_name, last_name,
                   created_at, updated_at, paid_orders_count)
               VALUES (:shop, :heavy, 'heavy@bench-lookup.example', 'heavy@bench-lookup.example', 'Hedy',
                       'Influencer', now() at time zone 'utc', now() at time zone 'utc', 0)""",
            """INSERT INTO customers (shop_id, shopify_customer_id, email, email_canonical, first_name, last_name,
                   created_at, updated_at, paid_orders_count)
               SELECT :shop, :friends + g, 'hfriend' || g || '@bench-lookup.example',
                      'hfriend' || g || '@bench-lookup.example', 'Hal' || g, 'Friend',
                      (now() at time zone 'utc') - (g % 730) * interval '1 day', now() at time zone 'utc',
                      CASE WHEN g % 5 < 2 THEN 1 ELSE 0 END
               FROM generate_series(1, :refs) g""",
            """INSERT INTO referral_codes (shop_id, campaign_id, customer_id, code, created_at)
               SELECT :shop, :campaign, id, 'HEAVYC1', now() at time zone 'utc'
               FROM customers WHERE shop_id = :shop AND shopify_customer_id = :heavy""",
            """CREATE TEMP TABLE heavy_pairs ON COMMIT DROP AS
               SELECT g, a.id AS advocate_id, f.id AS friend_id, rc.id AS code_id, f.email AS friend_email,
                      (now() at time zone 'utc') - (g % 730) * interval '1 day' - g * interval '1 second' AS at
               FROM generate_series(1, :refs) g
               JOIN customers a ON a.shop_id = :shop AND a.shopify_customer_id = :heavy
               JOIN customers f ON f.shop_id = :shop AND f.shopify_customer_id = :friends + g
               JOIN referral_codes rc ON rc.customer_id = a.id""",
            *_referral_inserts("heavy_pairs", 800_000_000),
            """INSERT INTO ledger_entries (shop_id, customer_id, referral_id, campaign_id, entry_type, side,
                   reward_kind, points, amount, idempotency_key, shopify_order_id, created_at)
               SELECT r.shop_id, CASE s.side WHEN 'advocate' THEN r.advocate_id ELSE r.friend_id END, r.id,
                      r.campaign_id, 'grant', s.side, 'points', s.points, 0,
                      'grant:' || r.shopify_order_id || ':' || s.side, r.shopify_order_id, r.created_at
               FROM referrals r JOIN heavy_pairs p ON p.friend_id = r.friend_id
               CROSS JOIN (VALUES ('advocate', 100), ('friend', 50)) AS s(side, points)
               WHERE r.shop_id = :shop AND r.shopify_order_id IS NOT NULL""",
        ]
        for statement in statements:
            connection.execute(text(statement), params)
    _vacuum_analyze()


def _time(client: t.Any, paths: list[str], key: str) -> dict[str, float]:
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path, headers={"X-Api-Key": key})
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
    samples.sort()
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))] * 1000, 2),
        "max_ms": round(samples[-1] * 1000, 2),
    }


class KeptPostgres:
    """A PostgreSQL cluster kept in a directory between runs, so the million rows are loaded only once.

    It reuses the throwaway server of ``tests/servers.py`` for the first start (initdb, options,
    unprivileged user), then restarts the same data directory on later runs; ``stop`` keeps the files.
    """

    def __init__(self, root: Path) -> None:
        from tests.servers import PostgresServer

        self.root = root
        self.state_file = root / "bench-state.json"
        self.server = PostgresServer()
        shutil.rmtree(self.server.root, ignore_errors=True)  # it made a temporary directory: use ours
        state = self.state()
        if state.get("password"):
            self.server.password = state["password"]
        self.server.root = root
        self.server.data = root / "data"
        self.server.sockets = root / "sock"

    def state(self) -> dict[str, t.Any]:
        """Return what earlier runs recorded (password, loaded rows), or an empty dict."""
        try:
            loaded: dict[str, t.Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    def save(self, **values: t.Any) -> None:
        """Merge ``values`` into the recorded state."""
        self.state_file.write_text(json.dumps({**self.state(), **values}))

    def start(self, referrals: int) -> str:
        """Start the cluster and return the URL of the bench database.

        The cluster is created afresh the first time, and when it holds another number of referrals or a
        load that did not finish.
        """
        from tests.servers import create_database
        from tests.servers import wait_for_port

        if (self.server.data / "PG_VERSION").exists() and self.state().get("referrals") == referrals:
            # Same options as tests/servers.py; only the port is new on each run.
            options = (f"-k {self.server.sockets} -p {self.server.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
                       "-c shared_buffers=256MB")
            self.server._run("pg_ctl", "-D", str(self.server.data), "-l", str(self.root / "log"), "-w", "-t", "120",
                             "-o", options, "start")
            self.server.started = True
            wait_for_port(self.server.port)
        else:
            for child in ("data", "sock", "pwfile", "log"):
                path = self.root / child
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            self.state_file.unlink(missing_ok=True)
            self.root.mkdir(parents=True, exist_ok=True)
            self.server.password = secrets.token_hex(12)
            self.server.start()
            self.save(password=self.server.password)
            create_database(self.server.url, "bench_lookup")
        return self.server.url_for("bench_lookup")

    def stop(self) -> None:
        """Stop the cluster cleanly and keep its files for the next run."""
        if self.server.started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.server._run("pg_ctl", "-D", str(self.server.data), "-m", "fast", "-w", "stop")
            self.server.started = False


@contextlib.contextmanager
def _database(url: str | None, reuse: Path | None, referrals: int) -> Iterator[tuple[str, KeptPostgres | None]]:
    """Yield the database to use: ``url``, a kept cluster in ``reuse``, or a throwaway cluster."""
    if url:
        yield url, None
        return
    if reuse is not None:
        kept = KeptPostgres(reuse)
        try:
            yield kept.start(referrals), kept
        finally:
            kept.stop()
        return
    from tests.servers import create_database
    from tests.servers import running_postgres

    with running_postgres() as server:
        yield create_database(server.url, "bench_lookup"), None


def _ensure_schema() -> None:
    """Create missing tables, and indexes added to the models since the data was loaded (kept clusters)."""
    from referral_plugin.extensions import db

    db.create_all()
    with db.engine.begin() as connection:
        for table in db.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)
    _vacuum_analyze()


def _vacuum_analyze() -> None:
    """VACUUM ANALYZE every table, as autovacuum would soon after a bulk load (statistics and visibility map)."""
    from sqlalchemy import text

    from referral_plugin.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def run(database: str, referrals: int, requests: int, kept: KeptPostgres | None = None,
        heavy: int = 0) -> dict[str, t.Any]:
    """Load the data into ``database`` (unless ``kept`` already holds it) and time the lookup; return the figures.

    With ``heavy``, one more advocate has that many referrals and a third row times its pages.
    """
    from referral_plugin import create_app
    from referral_plugin.extensions import db

    app = create_app(
        {
            "TESTING": False,
            "SECRET_KEY": "bench",
            "SHOPIFY_API_KEY": "bench-key",
            "SHOPIFY_API_SECRET": "bench-secret",
            "SQLALCHEMY_DATABASE_URI": database,
            "HUEY_IMMEDIATE": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "API_RATE_LIMIT": "1000000 per minute",
        }
    )
    advocates = max(1, referrals // 10)
    state = kept.state() if kept is not None else {}
    with app.app_context():
        if state.get("referrals") == referrals and state.get("key"):
            _ensure_schema()
            loaded = {"key": state["key"], "advocates": advocates, "base": state["base"]}
            load_seconds = float(state["load_seconds"])
        else:
            db.create_all()
            started = time.perf_counter()
            loaded = _load(referrals, advocates)
            load_seconds = time.perf_counter() - started
            if kept is not None:
                kept.save(referrals=referrals, key=loaded["key"], base=loaded["base"],
                          load_seconds=round(load_seconds, 1))
        if heavy:
            _load_heavy(heavy)
        db.session.remove()
    client = app.test_client()
    rng = random.Random(7)
    by_email = [
        "/v2/customers/lookup/referrals?source=INSTORE&identifierName=email"
        f"&identifierValue=adv{rng.randint(1, advocates)}%40bench-lookup.example"
        for _ in range(requests)
    ]
    by_id = [
        "/v2/customers/lookup/referrals?source=INSTORE&identifierName=externalId"
        f"&identifierValue={loaded['base'] + rng.randint(1, advocates)}"
        for _ in range(requests)
    ]
    # Random pages of the heavy advocate's lists (Capillary clients page with limit/offset).
    by_heavy = [
        "/v2/customers/lookup/referrals?source=INSTORE&identifierName=externalId"
        f"&identifierValue={HEAVY_ID}&limit=10&offset={rng.randrange(0, heavy, 10)}"
        for _ in range(requests // 3 if heavy else 0)
    ]
    _time(client, by_email[:20], loaded["key"])  # warm caches and the connection pool
    figures: dict[str, t.Any] = {
        "referrals": referrals,
        "load_seconds": round(load_seconds, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "routes": {
            "GET /v2/customers/lookup/referrals (email)": _time(client, by_email, loaded["key"]),
            "GET /v2/customers/lookup/referrals (externalId)": _time(client, by_id, loaded["key"]),
        },
    }
    if by_heavy:
        _time(client, by_heavy[:5], loaded["key"])
        name = f"GET /v2/customers/lookup/referrals (advocate with {heavy:,} referrals, random page)"
        figures["routes"][name] = _time(client, by_heavy, loaded["key"])
    with app.app_context():
        db.engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Build the data, time the lookup, print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="SQLAlchemy URL of an empty PostgreSQL database "
                        "(default: a throwaway cluster started here)")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="keep the cluster and its loaded rows in DIR (outside the repository, e.g. "
                        "/tmp/lookup-pg); later runs with the same --referrals skip the load")
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--heavy", type=int, default=0, metavar="N",
                        help="also give one advocate N referrals and time random pages of its lists")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.reuse is not None:
        if args.database:
            parser.error("--reuse starts its own cluster; give it or --database, not both")
        args.reuse = args.reuse.resolve()
        if args.reuse == ROOT or ROOT in args.reuse.parents:
            parser.error("--reuse must be outside the repository (e.g. /tmp/lookup-pg)")
        if args.reuse.is_dir() and any(args.reuse.iterdir()) and not (args.reuse / "bench-state.json").exists():
            parser.error(f"--reuse {args.reuse} holds other files: give a new or empty directory")
    with _database(args.database, args.reuse, args.referrals) as (url, kept):
        reused = kept is not None and kept.state().get("referrals") == args.referrals
        figures = run(url, args.referrals, args.requests, kept, args.heavy)
    how = "reused from an earlier run" if reused else "loaded"
    print(f"Capillary lookup: {figures['referrals']:,} referrals on PostgreSQL ({how} in {figures['load_seconds']} s);"
          f" load average {figures['load_average']:.2f} when timing started")
    width = max(50, *(len(name) for name in figures["routes"]))
    print(f"{'route':<{width}} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, row in figures["routes"].items():
        print(f"{name:<{width}} {row['n']:>5} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['max_ms']:>8.2f}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
