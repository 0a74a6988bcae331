"""Run every benchmark once, print one table and write ``bench/RESULTS.md`` with the machine described.

Usage::

    python bench/run.py                 # everything, full sizes (about 15-25 minutes on 2 cores)
    python bench/run.py --quick         # small sizes, to check the harness (about 3 minutes)
    python bench/run.py --only ingest   # one part: ingest, lookup, widget, summary
    python bench/run.py --render        # rewrite RESULTS.md from the last run's results.json (after editing ANALYSIS)

What it measures:

- **Webhook ingest**: ``orders/paid`` deliveries (each a new friend's first order with an advocate's code, so each
  runs attribution, qualification and the ledger) against gunicorn (``gunicorn.conf.py``: 2×cores+1 workers,
  4 threads, or ``--web-threads``) on SQLite and on PostgreSQL, and, in the same server, a baseline route that
  only verifies the HMAC and answers 200 (``BENCH_BASELINE_ROUTE``). Load comes from ``bench/load.py`` in a
  separate process on loopback: closed loop at 50 and 200 concurrent deliveries, bounded in count and time.
  Then again with ``WEBHOOK_PROCESSING=queued`` (answer after one insert, process in a job) and a job consumer
  (``flask worker``, 4 threads) running during the load, and one started only after the last answer: accepted
  req/s against a baseline in that server, the drain time (from the last 200 until every delivery is processed)
  and end-to-end processed/s. The exactly-once check runs after the last drain.
- **Capillary lookup** at 1,000,000 referrals on PostgreSQL (``bench/lookup.py``).
- **Widget render and invite-link landing** at 100,000 customers (``bench/widget.py``, STOREFRONT's).
- **Admin summary** at 1,000,000 referrals (``bench/summary.py``, DASHBOARD's), on SQLite unless
  ``--summary-on-postgres`` (its row loader is slow over a PostgreSQL connection).

PostgreSQL and Redis are throwaway servers started from the Debian binaries (``tests/servers.py``).
Timings depend on what else runs on the machine: the load average before each part is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scale.harness import AppServer  # noqa: E402
from tests.scale.harness import app_environment  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from tests.servers import create_database  # noqa: E402

BENCH_SHOP = "bench-shop.myshopify.com"
ADVOCATES = 200
Row = dict[str, t.Any]


# --- Machine ---------------------------------------------------------------------------------------------


def machine(pg: PostgresServer | None) -> dict[str, str]:
    """Describe the machine and the software versions."""
    cpu = platform.processor() or "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    pg_version = "not available"
    if pg is not None:
        out = subprocess.run([str(pg.bin_dir / "postgres"), "--version"], capture_output=True, text=True)
        pg_version = out.stdout.strip()
    import gunicorn
    import sqlalchemy

    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version,
        # tests/servers.py's throwaway cluster: no WAL flush waits (see the analysis).
        "PostgreSQL settings": "fsync=off, synchronous_commit=off, full_page_writes=off, shared_buffers=256MB",
        "gunicorn": gunicorn.__version__,
        "SQLAlchemy": sqlalchemy.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


#: The ingest servers' worker processes: gunicorn.conf.py's default, 2 per core plus one.
WEB_WORKERS = (os.cpu_count() or 1) * 2 + 1


def web_server(threads: int | None) -> str:
    """Describe the gunicorn the ingest runs on: workers, threads and worker class."""
    if threads is None:
        threads = int(os.environ.get("GUNICORN_THREADS") or 4)
    kind = "gthread" if threads > 1 else "sync"
    return f"gunicorn, {WEB_WORKERS} {kind} workers" + (f" x {threads} threads" if threads > 1 else "")


def load_average() -> str:
    """Return the 1-minute load average (other work on the machine skews every number)."""
    return f"{os.getloadavg()[0]:.1f}"


# --- Webhook ingest ---------------------------------------------------------------------------------------


def prepare_ingest_database(url: str) -> list[str]:
    """Create the schema, install the bench shop and give advocates codes; return the codes."""
    from referral_plugin import create_app
    from referral_plugin.extensions import db
    from referral_plugin.installs import install_shop
    from referral_plugin.referrals.codes import get_or_create_code
    from referral_plugin.referrals.customers import upsert_customer
    from tests.scale.harness import app_config

    app = create_app(app_config(url))
    with app.app_context():
        db.create_all()
        shop = install_shop(BENCH_SHOP, "shpat_bench", "read_customers,write_customers,read_orders,write_discounts")
        codes = []
        for n in range(ADVOCATES):
            customer = upsert_customer(shop, 1_000 + n, email=f"advocate{n}@bench.example", first_name="Ada")
            codes.append(get_or_create_code(shop, customer).code)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return codes


def exactly_once_check(url: str) -> str:
    """Check the ledger after the ingest: one earning row per side per rewarded order, never two."""
    from sqlalchemy import func
    from sqlalchemy import select

    from referral_plugin import create_app
    from referral_plugin.extensions import db
    from referral_plugin.models import LedgerEntry
    from referral_plugin.models import OrderAttribution
    from tests.scale.harness import app_config

    earning = LedgerEntry.entry_type.in_(["grant", "hold"])
    app = create_app(app_config(url))
    with app.app_context():
        grants = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(earning)) or 0
        orders = db.session.scalar(select(func.count()).select_from(OrderAttribution)) or 0
        per_side = (
            select(func.count().label("n"))
            .where(earning)
            .group_by(LedgerEntry.referral_id, LedgerEntry.side)
            .subquery()
        )
        worst = db.session.scalar(select(func.max(per_side.c.n))) or 0
        db.engine.dispose()
    verdict = "ok" if worst <= 1 and grants == 2 * orders else "MISMATCH"
    return f"{orders} attributed orders, {grants} earning rows, at most {worst} per order and side: {verdict}"


def run_load(url: str, concurrency: int, requests: int, first_order: int, codes: list[str]) -> Row:
    """Run ``bench/load.py`` in its own process and return its JSON figures."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "load.py"),
        "--url", url,
        "--concurrency", str(concurrency),
        "--requests", str(requests),
        "--max-seconds", "90",
        "--first-order", str(first_order),
        "--warmup", str(min(200, requests // 5)),
        "--advocate-codes", ",".join(codes),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return t.cast(Row, json.loads(out.stdout.strip().splitlines()[-1]))


def _ingest_row(what: str, concurrency: int, figures: Row, load: str) -> Row:
    """Return one table row of a load run."""
    return {
        "part": "ingest",
        "what": what,
        "concurrency": concurrency,
        "n": figures["sent"],
        "errors": figures["errors"],
        "throughput": figures["throughput"],
        "p50_ms": figures["p50_ms"],
        "p95_ms": figures["p95_ms"],
        "p99_ms": figures["p99_ms"],
        "load": load,
    }


def _judge(row: Row, backend: str, concurrency: int, ratio: float) -> None:
    """Set the ratio and, for PostgreSQL at 200 in flight, the verdict against issue 6's target."""
    row["ratio"] = round(ratio, 2)
    row["target"] = ingest_verdict(ratio, row["p99_ms"]) if backend == "PostgreSQL" and concurrency == 200 else ""


def ingest_verdict(ratio: float, p99_ms: float) -> str:
    """Judge each half of issue 6's ingest target on its own: the throughput ratio, then the p99."""
    throughput = "≥ 0.5× baseline — " + ("met" if ratio >= 0.5 else "not met")
    latency = "p99 < 50 ms — " + ("met" if p99_ms < 50 else "not met")
    return f"{throughput}; {latency}"


def waiting_deliveries(url: str) -> tuple[int, int]:
    """Return how many deliveries are still waiting for a worker and how many are processed.

    Waiting: ``queued``, and ``failed`` with the body kept (a queued delivery whose job will run again). An inline
    delivery that failed keeps no body: only Shopify's redelivery, which the load generator does not make, could
    process it (its 500 is counted in the run's errors).
    """
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT status, count(*) FROM webhook_deliveries"
                     " WHERE status <> 'failed' OR payload IS NOT NULL GROUP BY status")
            ).all()
    finally:
        engine.dispose()
    counts = {str(status): int(n) for status, n in rows}
    return counts.get("queued", 0) + counts.get("failed", 0), counts.get("processed", 0)


def wait_for_drain(url: str, timeout: float = 900.0) -> float:
    """Poll until no delivery waits for a worker; return the wall-clock time it happened."""
    deadline = time.time() + timeout
    while True:
        waiting, _ = waiting_deliveries(url)
        if waiting == 0:
            return time.time()
        if time.time() > deadline:
            raise TimeoutError(f"{waiting} deliveries still waiting for a worker after {timeout}s")
        time.sleep(0.1)


class Consumer:
    """``flask --app app worker`` in its own process, as production runs the job consumers."""

    def __init__(self, env: dict[str, str], threads: int) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="rp-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", str(threads)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 20 s) and remove its log."""
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def ingest(backend: str, url: str, redis_url: str, requests: int, concurrencies: tuple[int, ...],
           consumer_threads: int = 4, consumer_modes: tuple[str, ...] = ("during", "after"),
           web_threads: int | None = None) -> list[Row]:
    """Benchmark the baseline route, inline ingest and queued ingest on one database; return table rows.

    Inline and queued run on separate servers (one at a time), each with its own baseline measured right
    before, so every ratio compares two loads on the same server under the same conditions.
    """
    codes = prepare_ingest_database(url)
    workers = WEB_WORKERS
    rows: list[Row] = []
    order = 100_000_000
    env = app_environment(url, redis_url=redis_url, extra={"BENCH_BASELINE_ROUTE": "true"})
    server = AppServer(env, workers=workers, threads=web_threads)
    server.start()
    try:
        for concurrency in concurrencies:
            load = load_average()
            base = run_load(server.url + "/__bench/webhook-baseline", concurrency, requests, order, codes)
            order += 1_000_000
            real = run_load(server.url + "/webhooks", concurrency, requests, order, codes)
            order += 1_000_000
            rows.append(_ingest_row(f"baseline (HMAC only), {backend}", concurrency, base, load))
            rows.append(_ingest_row(f"orders/paid ingest, inline, {backend}", concurrency, real, load))
            _judge(rows[-1], backend, concurrency, real["throughput"] / base["throughput"] if base["throughput"] else 0)
    finally:
        server.stop()

    # Queued: the same server settings plus a job consumer in its own process. "during": the consumer runs
    # during the load, on the same two cores as the web processes, PostgreSQL and the load generator (one
    # machine does everything). "after": it starts when the last delivery was answered, as if the workers were
    # busy elsewhere during the burst: what the web tier alone accepts, and how long the backlog then takes.
    for mode in consumer_modes:
        order = _queued_ingest(rows, backend, url, env, workers, requests, concurrencies, codes, order,
                               consumer_threads, mode, web_threads)
    rows[-1]["check"] = f"{backend}: " + exactly_once_check(url)
    return rows


def _queued_ingest(rows: list[Row], backend: str, url: str, env: dict[str, str], workers: int, requests: int,
                   concurrencies: tuple[int, ...], codes: list[str], order: int, threads: int, mode: str,
                   web_threads: int | None) -> int:
    """Run the baseline and the queued ingest, the consumer ``during`` or ``after`` the load; return the next order."""
    queued_env = {**env, "WEBHOOK_PROCESSING": "queued"}
    consumer_env = {k: v for k, v in queued_env.items() if not k.startswith("GUNICORN_")}
    server = AppServer(queued_env, workers=workers, threads=web_threads)
    server.start()
    consumer: Consumer | None = None
    consumer_name = f"{threads}-thread consumer {'during' if mode == 'during' else 'after'} the load"
    try:
        for concurrency in concurrencies:
            if mode == "during" and consumer is None:
                consumer = Consumer(consumer_env, threads)
            load = load_average()
            base = run_load(server.url + "/__bench/webhook-baseline", concurrency, requests, order, codes)
            order += 1_000_000
            wait_for_drain(url)  # nothing left over from an earlier run
            real = run_load(server.url + "/webhooks", concurrency, requests, order, codes)
            order += 1_000_000
            if mode == "after":
                consumer = Consumer(consumer_env, threads)
            drained = wait_for_drain(url)
            if mode == "after" and consumer is not None:
                consumer.stop()
                consumer = None
            rows.append(_ingest_row(f"baseline (HMAC only), {backend}, queued server", concurrency, base, load))
            row = _ingest_row(f"orders/paid ingest, queued + {consumer_name}, {backend}", concurrency, real, load)
            # Drain: from the last 200 to the moment no delivery waits. End to end: every delivery sent (the
            # warm-up too) from the first request to the moment all were processed.
            processed = real["ok"] + real["warmup"]
            row["drain_s"] = round(drained - real["last_answered_at"], 1)
            row["processed_per_s"] = round(processed / (drained - real["first_sent_at"]), 1)
            rows.append(row)
            _judge(rows[-1], backend, concurrency, real["throughput"] / base["throughput"] if base["throughput"] else 0)
    finally:
        if consumer is not None:
            consumer.stop()
        server.stop()
    return order


# --- The other benchmarks ---------------------------------------------------------------------------------


def run_script(args: list[str], timeout: float) -> tuple[int, str]:
    """Run a bench script and return its exit code and output."""
    try:
        out = subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        return 124, f"timed out after {timeout}s\n{error.stdout or ''}"
    return out.returncode, out.stdout + (out.stderr[-3000:] if out.returncode else "")


def _last_json(output: str) -> t.Any:
    """Return the last JSON document printed (one line, or an indented block)."""
    lines = output.strip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                return json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
    return None


def lookup(url: str, referrals: int) -> tuple[list[Row], str]:
    """Time the Capillary lookup at ``referrals`` referrals."""
    load = load_average()
    code, output = run_script(["bench/lookup.py", "--database", url, "--referrals", str(referrals), "--json"], 1800)
    figures = _last_json(output) if code == 0 else None
    if not figures:
        return [{"part": "lookup", "what": f"Capillary lookup — failed (exit {code})", "load": load}], output
    return _p95_rows("lookup", figures, f"PostgreSQL, {referrals:,} referrals", load), output


def _p95_rows(part: str, figures: dict[str, t.Any], setting: str, load: t.Any) -> list[Row]:
    """Return one row per timed route, judged against the 10 ms p95 target."""
    return [
        {
            "part": part,
            "what": f"{name}, {setting}",
            "n": row["n"],
            "p50_ms": row["p50_ms"],
            "p95_ms": row["p95_ms"],
            "target": "p95 < 10 ms — " + ("met" if row["p95_ms"] < 10 else "not met"),
            "load": load,
        }
        for name, row in figures["routes"].items()
    ]


def widget(customers: int) -> tuple[list[Row], str]:
    """Run STOREFRONT's widget benchmark."""
    if not (ROOT / "bench" / "widget.py").exists():
        return [{"part": "widget", "what": "bench/widget.py not present"}], ""
    load = load_average()
    code, output = run_script(["bench/widget.py", "--customers", str(customers), "--json"], 1800)
    figures = _last_json(output) if code == 0 else None
    if not figures:
        return [{"part": "widget", "what": f"widget bench failed (exit {code})", "load": load}], output
    return _p95_rows("widget", figures, f"SQLite, {customers:,} customers", load), output


_SUMMARY_ROW = re.compile(r"^\s*(\d+) d \|\s*(\d+) \|\s*(\d+) \|")


def summary(url: str | None, referrals: int) -> tuple[list[Row], str]:
    """Run DASHBOARD's summary benchmark on PostgreSQL."""
    if not (ROOT / "bench" / "summary.py").exists():
        return [{"part": "summary", "what": "bench/summary.py not present"}], ""
    load = load_average()
    # On SQLite by default: summary.py loads its rows with executemany, which takes about 20 minutes for a million
    # referrals over a PostgreSQL connection; pass --summary-database to measure on PostgreSQL anyway.
    database = ["--database", url] if url else []
    code, output = run_script(["bench/summary.py", *database, "--referrals", str(referrals), "--runs", "3"], 3600)
    backend = "PostgreSQL" if url else "SQLite"
    rows = []
    for line in output.splitlines():
        match = _SUMMARY_ROW.match(line)
        if match:
            days, best, median = (int(g) for g in match.groups())
            rows.append(
                {
                    "part": "summary",
                    "what": f"admin summary, last {days} days, warm roll-up (cold: raw output), {backend}, "
                            f"{referrals:,} referrals",
                    "n": 3,
                    "p50_ms": median,
                    "best_ms": best,
                    "target": "< 250 ms — " + ("met" if median < 250 else "not met"),
                    "load": load,
                }
            )
    if not rows:
        rows.append({"part": "summary", "what": f"summary bench failed (exit {code})", "load": load})
    return rows, output


# --- Output ------------------------------------------------------------------------------------------------

COLUMNS = (
    ("what", "benchmark", "<"),
    ("concurrency", "conc", ">"),
    ("n", "n", ">"),
    ("errors", "err", ">"),
    ("throughput", "req/s", ">"),
    ("ratio", "× base", ">"),
    ("p50_ms", "p50 ms", ">"),
    ("p95_ms", "p95 ms", ">"),
    ("p99_ms", "p99 ms", ">"),
    ("drain_s", "drain s", ">"),
    ("processed_per_s", "processed/s", ">"),
    ("load", "load", ">"),
    ("target", "target", "<"),
)


def _cell(row: Row, key: str) -> str:
    value = row.get(key, "")
    if isinstance(value, float):
        if key in ("throughput", "processed_per_s", "drain_s"):
            return f"{value:,.1f}"
        return f"{value:,.2f}" if key.endswith("_ms") or key == "ratio" else f"{value:g}"
    return str(value)


def text_table(rows: list[Row]) -> str:
    """Return the rows as a fixed-width text table."""
    widths = {key: max(len(title), *(len(_cell(r, key)) for r in rows)) for key, title, _ in COLUMNS}
    lines = ["  ".join(f"{title:{align}{widths[key]}}" for key, title, align in COLUMNS)]
    lines.append("  ".join("-" * widths[key] for key, _, _ in COLUMNS))
    for row in rows:
        lines.append("  ".join(f"{_cell(row, key):{align}{widths[key]}}" for key, _, align in COLUMNS))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    """Return the rows as a Markdown table."""
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |"]
    lines.append("|" + "|".join("---:" if align == ">" else "---" for _, _, align in COLUMNS) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, key) for key, _, _ in COLUMNS) + " |")
    return "\n".join(lines)


def write_results(path: Path, info: dict[str, str], rows: list[Row], notes: list[str], outputs: dict[str, str],
                  seconds: float, command: str) -> None:
    """Write RESULTS.md: machine, table, checks, analysis notes and the raw output of the sub-benchmarks."""
    parts = [
        "# Benchmark results",
        "",
        f"Written by `{command}` in {seconds / 60:.1f} minutes, from one run. Regenerate it rather than "
        "editing it. The analysis below the table is kept in the script (`ANALYSIS`); after editing it, "
        "`python bench/run.py --render` rewrites this file from the same run's figures (kept beside it in "
        "`results.json`).",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
        "`load` is the machine's 1-minute load average when that part started: with other processes busy, every "
        "latency is inflated and throughput divided among them.",
        "",
    ]
    checks = [row["check"] for row in rows if row.get("check")]
    if checks:
        parts += ["Correctness checks after the ingest runs:", "", *[f"- {c}" for c in checks], ""]
    parts += ["## What limits it", "", *notes, ""]
    for name, output in outputs.items():
        if output.strip():
            parts += [f"## Raw output: {name}", "", "```", output.strip()[-6000:], "```", ""]
    path.write_text("\n".join(parts))


ANALYSIS = [
    "- **Inline ingest (the default) does its work before answering.** One `orders/paid` delivery costs about "
    "9 ms of CPU in-process on SQLite and 12 ms on PostgreSQL (about 25 SQL statements; the rest is Python: ORM, "
    "attribution, qualification, the ledger), against 0.3 ms for the HMAC-only baseline, so the ratio stays near "
    "0.04 whatever the database: 92-113 deliveries/s here against about 2,300-2,750 for the baseline.",
    "- **Queued ingest (`WEBHOOK_PROCESSING=queued`) answers after one insert.** The request verifies the HMAC, "
    "reads the Shopify headers from the WSGI environ, checks the body is a JSON object (simdjson validates it "
    "without building Python objects; anything it is unsure of gets the full parse), runs one autocommitted "
    "`INSERT ... ON CONFLICT DO NOTHING RETURNING id` (compiled once by SQLAlchemy, prepared once per kept "
    "connection and run as one libpq call), parks the job in the process's batcher, logs its one request line and "
    "answers 200. Every 50 ms the batcher sends what it holds as one Redis message that a consumer splits into one "
    "job per delivery; a consumer then runs the same handler as inline ingest. Under load on this machine "
    "(measured apart from this run: the same servers and load at 200 in flight, sync workers, CPU time per process "
    "read from `/proc` before and after, three rounds): 0.88-0.93 ms in the gunicorn worker (baseline 0.52-0.56), "
    "0.24 ms in the PostgreSQL backend, 0.01 ms in Redis and 0.37-0.38 ms in the load generator (0.32-0.34): about "
    "1.52-1.58 ms of the two cores per accepted delivery against 0.87-0.90 ms for the baseline.",
    "- **The web tier alone accepts 0.53-0.55x of the baseline on PostgreSQL: the 0.5x target is met.** The "
    "`consumer after the load` rows are what Shopify sees during a burst when the consumers run on other machines: "
    "1,307 deliveries/s at 200 in flight (p99 184 ms) and 1,342 at 50 (p99 48 ms), against 97 inline. The full "
    "run just before this one, on the same ingest code, measured 0.53x at 200 and 0.59x at 50 (1,265 and "
    "1,406/s); the separate CPU measurement above put it at 0.51-0.56x over three rounds, so runs vary by a few "
    "hundredths. Earlier full runs: 0.34-0.36x before the batcher and the kept connection, 0.40-0.44x, then "
    "0.46-0.48x in the last session. What moved it this time, each measured in-process (CPU per accepted "
    "delivery): the batcher's "
    "thread had degenerated under steady load into one Redis round trip per call or two (each arrived while the "
    "previous trip waited for the GIL; 1,065 round trips for 3,000 jobs, about 80 us of CPU each): it now hands "
    "over one batch per linger; the body check with simdjson instead of orjson (3.5 us against 24 for an order, "
    "about 45 us less in a request); the insert as one libpq call instead of a psycopg cursor's execute (about "
    "45 us); one Huey message per batch instead of one serialized task per delivery. What is left above the "
    "baseline is mostly the insert itself: about 0.2 ms of the worker's CPU in a request (the libpq call, the "
    "loopback send of a 12 kB body and the kernel's work on both sides) and 0.24 ms of the backend's. Steps not "
    "taken: an async server, or Redis as the durable store (which would trade away the database row that makes "
    "redelivery and exactly-once safe).",
    "- **The PostgreSQL cluster is a throwaway one** (`fsync=off`, `synchronous_commit=off`, "
    "`full_page_writes=off`, `shared_buffers=256MB`, on loopback). On a durable server each autocommitted insert "
    "also waits for its WAL flush: latency rather than CPU (concurrent commits share one flush), so the accept "
    "rate needs more web workers in flight to stay where it is here, not more cores.",
    "- **One machine for everything costs more than half.** With the consumer running during the load (the "
    "`during` rows), it and the PostgreSQL backends serving its ~25 statements per delivery take a core, and "
    "queued ingest accepts 0.20-0.29x of the baseline (474-484 deliveries/s, about 5x inline; the run before this "
    "one measured 426-546/s, the last session's 495-735/s, and two repeats of these rows alone gave 494-894/s at "
    "50 in flight and 529-535/s at 200: how the two cores are shared with the consumer decides it). End to end "
    "one consumer process works off 53-57 deliveries/s on PostgreSQL and 80-89 on SQLite: it is bound to one "
    "core by the GIL, "
    "so a burst of 3,000 takes about a minute to drain (the `drain s` column). Run consumers on their own "
    "machines and add processes for the sustained order rate; the web tier keeps the accept rate of the `after` "
    "rows.",
    "- **SQLite serializes writers**: while a consumer runs, its job transaction holds the only write lock for its "
    "~25 statements and the intake's insert waits for it, so queued ingest on SQLite accepts no more than inline "
    "(87-89 deliveries/s); with the consumer after the burst it accepts 763-839/s (0.31-0.33x). PostgreSQL takes "
    "writes from every worker at once.",
    "- **p99 under 50 ms at 200 concurrent deliveries is not met, and cannot be on this machine**: with a closed "
    "loop of 200 in flight, mean latency is 200 / throughput (Little's law), so a p99 under 50 ms needs more than "
    "4,000 deliveries/s, about 1.6 times what this machine's two cores give even the baseline route, which does "
    "almost nothing and is itself at 97-102 ms p99 at 200 here. At 200 in flight queued ingest answers with p50 "
    "145 ms and p99 184 ms, close to that bound (200 / 1,307 = 153 ms); at 50 in flight its p99 is 48 ms. "
    "Shopify's budget is 5 s per delivery.",
    "- **The ingest servers ran sync workers** (`--web-threads 1`, see the machine section): the recommended shape "
    "for a tier that only takes webhooks (README, Running in production). Measured in an earlier session, "
    "gunicorn's default of 4 threads per worker cost about 0.3 ms more worker CPU per accepted delivery and "
    "0.2 ms more per baseline request.",
    "- **Lookups and the widget are bounded by per-request overhead** (API-key check, session, a handful of "
    "indexed queries, JSON/HTML rendering); their cost does not grow with the number of referrals because every "
    "query goes through a `(shop_id, ...)` index. The summary's 365-day figure reads a roll-up of closed days "
    "that the `reports.warm_summaries` job keeps built; its cold first build is in the raw output below. Its "
    "pending panel reads held points net of refunds from two partial indexes (hold rows, void rows).",
]


def main(argv: list[str] | None = None) -> int:
    """Start the servers, run every part, print the table and write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check the harness, not the numbers")
    parser.add_argument("--only", choices=("ingest", "lookup", "widget", "summary"), action="append")
    parser.add_argument("--requests", type=int, help="deliveries per ingest run (default 3000, quick 300)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--summary-on-postgres", action="store_true", help="load summary.py's rows into PostgreSQL")
    parser.add_argument("--ingest-on", choices=("sqlite", "postgresql"), action="append",
                        help="ingest on this database only (default: both)")
    parser.add_argument("--consumer-threads", type=int, default=4,
                        help="worker threads of the job consumer during the queued ingest (default 4)")
    parser.add_argument("--consumer", choices=("during", "after"), action="append",
                        help="queued ingest with the job consumer running during the load, or started after it "
                             "(default: both)")
    parser.add_argument("--render", action="store_true",
                        help="rewrite the output from the last run's results.json with the current ANALYSIS")
    parser.add_argument("--web-threads", type=int,
                        help="threads per gunicorn worker of the ingest servers; 1 runs sync workers "
                             "(default: gunicorn.conf.py's, GUNICORN_THREADS or 4)")
    args = parser.parse_args(argv)
    output = Path(args.output)
    saved = output.with_name("results.json")
    if args.render:
        run = json.loads(saved.read_text())
        for row in run["rows"]:  # judged again: the verdict's wording may have changed since the run
            if str(row.get("target", "")).startswith("≥ 0.5×"):
                row["target"] = ingest_verdict(row["ratio"], row["p99_ms"])
        write_results(output, run["info"], run["rows"], ANALYSIS, run["outputs"], run["seconds"], run["command"])
        print(f"rewrote {output} from {saved}")
        return 0
    parts = set(args.only or ("ingest", "lookup", "widget", "summary"))
    requests = args.requests or (300 if args.quick else 3000)
    referrals = 20_000 if args.quick else 1_000_000
    customers = 5_000 if args.quick else 100_000

    started = time.perf_counter()
    pg = PostgresServer()
    redis_server = RedisServer()
    rows: list[Row] = []
    outputs: dict[str, str] = {}
    try:
        pg.start()
        redis_server.start()
        info = machine(pg)
        info["web server"] = web_server(args.web_threads)
        print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
        ingest_on = set(args.ingest_on or ("sqlite", "postgresql"))
        if "ingest" in parts and "sqlite" in ingest_on:
            with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp:
                sqlite_url = f"sqlite:///{tmp}/ingest.sqlite"
                print("ingest on SQLite...", flush=True)
                rows += ingest("SQLite", sqlite_url, redis_server.url, requests, (50, 200), args.consumer_threads,
                               tuple(args.consumer or ("during", "after")), args.web_threads)
        if "ingest" in parts and "postgresql" in ingest_on:
            print("ingest on PostgreSQL...", flush=True)
            pg_url = create_database(pg.url, "bench_ingest")
            rows += ingest("PostgreSQL", pg_url, redis_server.url, requests, (50, 200), args.consumer_threads,
                           tuple(args.consumer or ("during", "after")), args.web_threads)
        if "lookup" in parts:
            print("Capillary lookup...", flush=True)
            new_rows, outputs["bench/lookup.py"] = lookup(create_database(pg.url, "bench_lookup"), referrals)
            rows += new_rows
        if "widget" in parts:
            print("widget and landing...", flush=True)
            new_rows, outputs["bench/widget.py"] = widget(customers)
            rows += new_rows
        if "summary" in parts:
            print("admin summary...", flush=True)
            target = create_database(pg.url, "bench_summary") if args.summary_on_postgres else None
            new_rows, outputs["bench/summary.py"] = summary(target, referrals)
            rows += new_rows
    finally:
        redis_server.stop()
        pg.stop()
    seconds = time.perf_counter() - started
    print()
    print(text_table(rows))
    for row in rows:
        if row.get("check"):
            print("check: " + row["check"])
    command = " ".join(["python bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    saved.write_text(json.dumps({"info": info, "rows": rows, "outputs": outputs, "seconds": seconds,
                                 "command": command}, indent=1) + "\n")
    write_results(output, info, rows, ANALYSIS, outputs, seconds, command)
    print(f"\nwrote {output} and {saved} ({seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
