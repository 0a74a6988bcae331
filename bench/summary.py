"""Time ``shop_summary`` on a shop with a million referrals, on a throwaway SQLite file (or ``--database``).

Usage::

    python bench/summary.py                       # 1,000,000 referrals, fresh temp SQLite
    python bench/summary.py --referrals 200000    # smaller
    python bench/summary.py --database postgresql+psycopg://.../bench   # an empty database of yours
    python bench/summary.py --keep                # ... then: --database sqlite:///PATH --reuse

Rows are bulk-inserted in batches (``COPY`` on PostgreSQL, executemany elsewhere): customers, codes, a
million referrals spread over two years up to now, clicks (3 per referral), invitations, an attribution for
40 % of the referrals and the ledger rows those orders earn (grants, some holds/releases, reversals,
discount issues). A second, smaller shop shares the tables so every query must scope by shop.

Then, for the last 30 and the last 365 days, the path the app serves (closed days from the roll-up, the
open tail raw) is timed: the whole roll-up built at once, each request on an empty roll-up until it is
whole (a request builds within its time budget, then counts raw), warm requests, and the raw count
without any roll-up; the cached figures are checked equal to the raw ones. Also timed: the request after
one more day closed (one day built), and a few pages of the referral log. On PostgreSQL the tables are
``VACUUM ANALYZE``d before timing, as autovacuum would have done. ``--reuse`` keeps the data of an
earlier ``--keep`` (then "today" is the last day of that data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import typing as t
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 20_000
# The data ends now, so the summary's recent days are the open tail a real shop has (counted raw).
NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
SPAN_DAYS = 730


def _batches(rows: t.Iterable[dict[str, t.Any]], size: int = BATCH) -> t.Iterator[list[dict[str, t.Any]]]:
    batch: list[dict[str, t.Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _load(model: t.Any, rows: list[dict[str, t.Any]]) -> None:
    """Insert ``rows``: ``COPY`` on PostgreSQL (executemany there takes ~20 minutes a million), else executemany."""
    from sqlalchemy import insert

    from referral_plugin.extensions import db

    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(insert(model), rows)
        return
    table = model.__table__
    given = {key for row in rows for key in row}
    names = [column.name for column in table.columns if column.name in given or column.default is not None]
    defaults = {column.name: column.default for column in table.columns if column.default is not None}

    def value(row: dict[str, t.Any], name: str) -> t.Any:
        if name in row:
            found = row[name]
        elif name in defaults:
            default = defaults[name]
            found = default.arg(None) if callable(default.arg) else default.arg  # type: ignore[union-attr]
        else:
            found = None
        if isinstance(found, dt.datetime):
            return found.astimezone(dt.UTC).replace(tzinfo=None)
        return found

    driver = db.session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([value(row, name) for name in names])


def populate(shop_id: int, referrals: int, *, seed: int, id_base: int) -> None:
    """Insert one shop's history: customers, codes, referrals, clicks, invitations, attributions, ledger."""
    from referral_plugin.extensions import db
    from referral_plugin.models import Campaign
    from referral_plugin.models import Click
    from referral_plugin.models import Customer
    from referral_plugin.models import Invitation
    from referral_plugin.models import LedgerEntry
    from referral_plugin.models import OrderAttribution
    from referral_plugin.models import Referral
    from referral_plugin.models import ReferralCode

    rng = random.Random(seed)
    campaign = Campaign(shop_id=shop_id, token=f"B{seed % 10000:04d}", name="Bench", is_default=True)
    db.session.add(campaign)
    db.session.flush()
    advocates = max(referrals // 20, 1)
    # Ids are assigned here so the bulk inserts need no round trips to learn them.
    advocate_ids = range(id_base, id_base + advocates)
    friend_ids = range(id_base + advocates, id_base + advocates + referrals)
    code_ids = range(id_base, id_base + advocates)
    created = NOW - dt.timedelta(days=SPAN_DAYS + 1)

    def customers() -> t.Iterator[dict[str, t.Any]]:
        for cid in [*advocate_ids, *friend_ids]:
            yield {"id": cid, "shop_id": shop_id, "shopify_customer_id": cid, "email": f"c{cid}@example.com",
                   "email_canonical": f"c{cid}@example.com", "first_name": f"C{cid}", "created_at": created,
                   "updated_at": created}

    for batch in _batches(customers()):
        _load(Customer, batch)
    for batch in _batches({"id": code_id, "shop_id": shop_id, "campaign_id": campaign.id, "customer_id": code_id,
                           "code": f"B{code_id:09d}", "created_at": created} for code_id in code_ids):
        _load(ReferralCode, batch)

    plan: list[tuple[int, int, int, dt.datetime]] = []  # (referral id, advocate id, friend id, bound at)
    for index, friend_id in enumerate(friend_ids):
        advocate = advocate_ids[int(rng.paretovariate(1.2)) % advocates]
        bound = NOW - dt.timedelta(seconds=rng.uniform(0, SPAN_DAYS * 86400))
        plan.append((id_base + index, advocate, friend_id, bound))

    statuses = ["rewarded"] * 30 + ["pending"] * 50 + ["rejected"] * 10 + ["held"] * 5 + ["reversed"] * 5

    def referral_rows() -> t.Iterator[dict[str, t.Any]]:
        for rid, advocate, friend, bound in plan:
            status = statuses[rid % len(statuses)]
            ordered = status != "pending"
            yield {"id": rid, "shop_id": shop_id, "campaign_id": campaign.id, "referral_code_id": advocate,
                   "advocate_id": advocate, "friend_id": friend, "source": "discount_code", "status": status,
                   "reason": None if status == "pending" else "QUALIFIED", "created_at": bound,
                   "shopify_order_id": rid if ordered else None, "order_name": f"#{rid}" if ordered else None,
                   "order_subtotal": Decimal("60.00") if ordered else None,
                   "order_total": Decimal("64.50") if ordered else None, "currency": "USD" if ordered else None}

    for batch in _batches(referral_rows()):
        _load(Referral, batch)

    def clicks() -> t.Iterator[dict[str, t.Any]]:
        for rid, advocate, _, bound in plan:
            for k in range(3):
                yield {"shop_id": shop_id, "referral_code_id": advocate, "visitor_hash": f"{rid:x}{k}",
                       "created_at": bound - dt.timedelta(hours=k + 1)}

    for batch in _batches(clicks()):
        _load(Click, batch)

    def invitations() -> t.Iterator[dict[str, t.Any]]:
        for _rid, advocate, friend, bound in plan[::4]:
            yield {"shop_id": shop_id, "campaign_id": campaign.id, "advocate_id": advocate, "channel": "email",
                   "identifier": f"c{friend}@example.com", "source": "widget", "status": "joined",
                   "invited_at": bound - dt.timedelta(days=1), "friend_id": friend}

    for batch in _batches(invitations()):
        _load(Invitation, batch)

    def attributions() -> t.Iterator[dict[str, t.Any]]:
        for rid, advocate, friend, bound in plan:
            status = statuses[rid % len(statuses)]
            if status == "pending":
                continue
            decision = {"rejected": "rejected", "held": "held"}.get(status, "qualified")
            yield {"shop_id": shop_id, "shopify_order_id": rid, "order_name": f"#{rid}", "referral_id": rid,
                   "referral_code_id": advocate, "advocate_id": advocate, "friend_id": friend,
                   "source": "discount_code", "decision": decision, "reason": "QUALIFIED",
                   "subtotal": Decimal("60.00"), "total": Decimal("64.50"), "currency": "USD", "test": False,
                   "created_at": bound + dt.timedelta(hours=2)}

    for batch in _batches(attributions()):
        _load(OrderAttribution, batch)

    def ledger() -> t.Iterator[dict[str, t.Any]]:
        for rid, advocate, friend, bound in plan:
            status = statuses[rid % len(statuses)]
            if status in ("pending", "rejected"):
                continue
            at = bound + dt.timedelta(hours=2)
            kind = "hold" if status == "held" else "grant"
            for side, customer, points in (("advocate", advocate, 100), ("friend", friend, 50)):
                yield {"shop_id": shop_id, "customer_id": customer, "referral_id": rid, "campaign_id": campaign.id,
                       "entry_type": kind, "side": side, "reward_kind": "points", "points": points,
                       "amount": Decimal(0), "idempotency_key": f"{kind}:{rid}:{side}", "shopify_order_id": rid,
                       "created_at": at, "available_at": at + dt.timedelta(days=30) if kind == "hold" else None}
                if status == "reversed":
                    yield {"shop_id": shop_id, "customer_id": customer, "referral_id": rid,
                           "campaign_id": campaign.id, "entry_type": "reversal", "side": side,
                           "reward_kind": "points", "points": -points, "amount": Decimal(0),
                           "idempotency_key": f"reversal:{rid}:{side}", "shopify_order_id": rid,
                           "created_at": at + dt.timedelta(days=5)}
            if rid % 10 == 0:
                yield {"shop_id": shop_id, "customer_id": friend, "referral_id": rid, "campaign_id": campaign.id,
                       "entry_type": "issue", "side": "friend", "reward_kind": "fixed_amount", "points": 0,
                       "amount": Decimal("5.00"), "idempotency_key": f"issue:{rid}", "shopify_order_id": rid,
                       "created_at": at + dt.timedelta(minutes=1)}

    for batch in _batches(ledger()):
        _load(LedgerEntry, batch)
    db.session.commit()


def time_range(shop: t.Any, start: dt.date, end: dt.date, runs: int) -> dict[str, t.Any]:
    """Time one range: the full roll-up build alone, then cold requests (roll-up emptied first) until the
    roll-up is whole, warm requests, and raw; check that the cached and the raw figures agree."""
    from referral_plugin.extensions import db
    from referral_plugin.reports import rollup
    from referral_plugin.reports.summary import day_list
    from referral_plugin.reports.summary import shop_summary
    from referral_plugin.reports.summary import shop_zone

    zone = shop_zone(shop)
    closed = day_list(start, min(end, rollup.closed_through(zone)))
    clear_rollup(shop)
    budget = rollup.BUILD_BUDGET_SECONDS
    rollup.BUILD_BUDGET_SECONDS = float("inf")
    began = time.perf_counter()
    rollup._build(shop, zone, closed)
    build = time.perf_counter() - began
    rollup.BUILD_BUDGET_SECONDS = budget

    clear_rollup(shop)
    cold = []
    while len(cold) < 20:
        db.session.expire_all()
        began = time.perf_counter()
        result = shop_summary(shop, start, end)
        cold.append(time.perf_counter() - began)
        db.session.rollback()
        whole = rollup._days_present(shop, zone, rollup._version(shop), closed[0], closed[-1]) == len(closed)
        db.session.rollback()
        if whole:
            break
    warm, raw = [], []
    for _ in range(runs):
        db.session.expire_all()
        began = time.perf_counter()
        result = shop_summary(shop, start, end)
        warm.append(time.perf_counter() - began)
        db.session.rollback()
    reference: dict[str, t.Any] = {}
    for _ in range(max(runs // 2, 1)):
        db.session.expire_all()
        began = time.perf_counter()
        reference = shop_summary(shop, start, end, cached=False)
        raw.append(time.perf_counter() - began)
        db.session.rollback()
    return {"days": (end - start).days + 1, "build": build, "cold": cold, "warm_best": min(warm),
            "warm_median": statistics.median(warm), "raw_best": min(raw), "equal": result == reference,
            "result": result}


def clear_rollup(shop: t.Any) -> None:
    """Empty the shop's roll-up, as before its first summary."""
    from sqlalchemy import delete

    from referral_plugin.extensions import db
    from referral_plugin.models import SummaryDay
    from referral_plugin.models import SummaryDayKey

    for model in (SummaryDay, SummaryDayKey):
        db.session.execute(delete(model).where(model.shop_id == shop.id))
    db.session.commit()


def time_new_day(shop: t.Any, today: dt.date) -> float:
    """Time the 365-day summary after one more day closed: only that day is counted into the roll-up."""
    from sqlalchemy import delete
    from sqlalchemy import func
    from sqlalchemy import select

    from referral_plugin.extensions import db
    from referral_plugin.models import SummaryDay
    from referral_plugin.models import SummaryDayKey
    from referral_plugin.reports.summary import shop_summary

    newest = db.session.execute(select(func.max(SummaryDay.day)).where(SummaryDay.shop_id == shop.id)).scalar_one()
    for model in (SummaryDay, SummaryDayKey):
        db.session.execute(delete(model).where(model.shop_id == shop.id, model.day == newest))
    db.session.commit()
    db.session.expire_all()
    began = time.perf_counter()
    shop_summary(shop, today - dt.timedelta(days=364), today)
    elapsed = time.perf_counter() - began
    db.session.rollback()
    return elapsed


def main() -> None:
    """Build the data, time the summary, print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: a temp SQLite file)")
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument("--keep", action="store_true", help="keep the temp SQLite file (its path is printed)")
    parser.add_argument("--reuse", action="store_true", help="time the data already in --database (kept earlier)")
    args = parser.parse_args()

    for key in list(os.environ):
        if key.startswith("SHOPIFY_"):
            del os.environ[key]
    from referral_plugin import create_app
    from referral_plugin.extensions import db
    from referral_plugin.models import Referral
    from referral_plugin.models import Shop
    from referral_plugin.reports.summary import shop_zone

    workdir = tempfile.mkdtemp(prefix="summary-bench-")
    url = args.database or f"sqlite:///{workdir}/bench.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        started = time.perf_counter()
        if args.reuse:
            db.create_all()  # adds the tables the models gained since the data was kept...
            for table in db.metadata.sorted_tables:  # ... and the indexes (create_all skips existing tables)
                for index in table.indexes:
                    index.create(db.engine, checkfirst=True)
            big = db.session.scalars(db.select(Shop).where(Shop.shopify_domain == "bench-shop.myshopify.com")).one()
        else:
            db.drop_all()
            db.create_all()
            big = Shop(shopify_domain="bench-shop.myshopify.com", timezone=args.timezone,
                       point_value=Decimal("0.01"))
            small = Shop(shopify_domain="other-shop.myshopify.com")
            db.session.add_all([big, small])
            db.session.commit()
            populate(big.id, args.referrals, seed=1, id_base=1)
            populate(small.id, max(args.referrals // 10, 1), seed=2, id_base=10_000_000)
        if url.startswith("sqlite"):
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        elif db.engine.dialect.name == "postgresql":
            # As autovacuum would by now in production: statistics for the planner, and the visibility map
            # that lets the covering indexes answer index-only (without it every row is fetched from the heap).
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        load_seconds = time.perf_counter() - started
        counts = {name: db.session.execute(db.text(f"SELECT count(*) FROM {name}")).scalar_one()
                  for name in ("referrals", "clicks", "invitations", "order_attributions", "ledger_entries")}

        # A kept file may be from another day: "today" is the last day of its data, as when it was made.
        last = db.session.execute(db.select(db.func.max(Referral.created_at))
                                  .where(Referral.shop_id == big.id)).scalar_one()
        today = last.astimezone(shop_zone(big)).date()
        rows = []
        for days in (30, 365):
            rows.append(time_range(big, today - dt.timedelta(days=days - 1), today, args.runs))
        incremental = time_new_day(big, today)
        from referral_plugin.reports import rollup

        cold_budget = rollup.BUILD_BUDGET_SECONDS
        from referral_plugin.reports.log import LogFilters
        from referral_plugin.reports.log import list_referrals

        log_rows = []
        for label, filters in (("log page 1", LogFilters()), ("log page 400", LogFilters(page=400)),
                               ("log held", LogFilters(status="held")),
                               ("log by email", LogFilters(query="c2@example.com")),
                               ("log by code", LogFilters(query="B000000002"))):
            timings = []
            for _ in range(args.runs):
                db.session.expire_all()
                began = time.perf_counter()
                page = list_referrals(big, filters)
                timings.append(time.perf_counter() - began)
            log_rows.append((label, min(timings), statistics.median(timings), page.total))
        dialect = db.engine.dialect.name

    print(f"\nshop_summary benchmark on {dialect}; data loaded in {load_seconds:.0f} s")
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    print("warm = every request once the range's closed days are in the roll-up (the open tail counted raw);")
    print("cold = the first request(s) on an empty roll-up: each builds newest days first for up to "
          f"{cold_budget:.1f} s, then counts raw until the roll-up is whole;")
    print("build = building the whole range's roll-up at once; raw = counting from the raw rows only, as before.")
    # bench/run.py reads "N d | best | median |": the warm figures, what every request after the first costs.
    print(f"{'range':>7} | {'warm best':>9} | {'warm med':>8} | {'raw best':>8} | {'build ms':>8} | "
          f"{'cold requests ms':<24} | {'equal':>5} | {'clicks':>9} | {'orders':>7} | {'revenue':>13}")
    print("-" * 122)
    for item in rows:
        result = item["result"]
        colds = ", ".join(f"{value * 1000:.0f}" for value in item["cold"])
        print(f"{item['days']:>5} d | {item['warm_best'] * 1000:>9.0f} | {item['warm_median'] * 1000:>8.0f} | "
              f"{item['raw_best'] * 1000:>8.0f} | {item['build'] * 1000:>8.0f} | {colds:<24} | "
              f"{'yes' if item['equal'] else 'NO':>5} | {result['clicks']:>9,} | {result['referredOrders']:>7,} | "
              f"{result['referralRevenue']:>13,.2f}")
    print(f"a new closed day (the next day's first 365-day request builds one day): {incremental * 1000:.0f} ms")
    if args.keep or args.database:
        print(f"\ndata kept in {url}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'referral log':>14} | {'best ms':>8} | {'median ms':>9} | {'matches':>9}")
    print("-" * 50)
    for label, best, median, total in log_rows:
        print(f"{label:>14} | {best * 1000:>8.0f} | {median * 1000:>9.0f} | {total:>9,}")


if __name__ == "__main__":
    main()
