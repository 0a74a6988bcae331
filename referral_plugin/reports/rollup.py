"""The summary's roll-up of closed days, and the guard that retires it when a closed day changes.

A year of a busy shop is millions of raw rows; the summary of a range is the sum of its days. A day is
*closed* once it ended :data:`SETTLE` ago: every row the app writes carries the time it was written
(``created_at``/``invited_at`` default to now; no payload timestamp is ever stored there), so no
transaction still open can add a row to a closed day. Closed days are counted once from the raw rows,
with the very queries the uncached summary runs (:func:`~referral_plugin.reports.summary.raw_days`),
and kept in :class:`SummaryDay`/:class:`SummaryDayKey` rows; the open tail is always counted raw, so a
row written a moment ago shows at once.

What can still change a closed day is an edit of an old row, a row inserted with an explicit old time
(imports, the demo's story, tests) or a delete. :func:`install` hooks the ORM session: a flush or a
Core/ORM ``INSERT``/``UPDATE``/``DELETE`` that touches a counted column of a row older than
:data:`STALE_AFTER` bumps the shop's :class:`SummaryState` version *in the same transaction*. Cached
rows are keyed by version, so they stop counting the moment the writer commits, whichever process
reads, and the next summary rebuilds the days from the raw rows. Bulk writes whose shop cannot be read
from the statement bump every shop.

Reads are checked, never trusted blindly: a reader uses the version its own session sees (its own
uncommitted bump included) and counts raw when a build saw another one, and it re-checks after reading
that the day rows are all still there (a rebuild deletes an old version only after it commits).

The build runs on a connection of its own, in transactions of a month of days (so a read-only request
keeps what it built and SQLite's writer lock is held for a moment), newest days first, within
:data:`BUILD_BUDGET_SECONDS` per request; it never waits on a lock. Whenever anything is missing or
fails, the summary simply counts raw.

Not seen by the guard: SQL sent on a connection outside the ORM session (``engine.connect()``, the
``psql`` prompt). Such a write to an old row must be followed by a bump (:func:`bump`) or a
``DELETE FROM summary_days``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import sqlite3
import time
import typing as t
from zoneinfo import ZoneInfo

from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.orm import attributes
from sqlalchemy.sql import Delete
from sqlalchemy.sql import Insert
from sqlalchemy.sql import Update
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.elements import TextClause

from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import SummaryDay
from referral_plugin.models import SummaryDayKey
from referral_plugin.models import SummaryState
from referral_plugin.models import UTCDateTime
from referral_plugin.models import utcnow
from referral_plugin.reports import summary as raw

log = logging.getLogger(__name__)

#: How long after a shop day ends it is closed: far beyond any transaction's life (requests have seconds,
#: jobs minutes), so every row stamped inside the day has committed before the day is counted.
SETTLE = dt.timedelta(hours=6)
#: A write whose row time is older than this may land in a closed day and retires the roll-up. It must
#: stay well under :data:`SETTLE`, so that a row stamped just after it cannot be in a day counted early.
STALE_AFTER = dt.timedelta(hours=1)
#: The SQLite writer lock is waited for this long (ms) at most; past it the summary counts raw.
BUILD_BUSY_MS = 250

ADVOCATE = "advocate"
POINTS = "points"
REWARDED = "rewarded"
REVERSED = "reversed"

#: The counted columns of each raw table and the column that places a row in a day.
WATCHED: dict[str, tuple[str, frozenset[str]]] = {
    Click.__tablename__: ("created_at", frozenset({"shop_id", "created_at"})),
    Invitation.__tablename__: ("invited_at", frozenset({"shop_id", "invited_at"})),
    Referral.__tablename__: ("created_at", frozenset({"shop_id", "created_at", "order_subtotal", "id"})),
    OrderAttribution.__tablename__: ("created_at", frozenset({
        "shop_id", "created_at", "decision", "total", "advocate_id"})),
    LedgerEntry.__tablename__: ("created_at", frozenset({
        "shop_id", "created_at", "entry_type", "reward_kind", "points", "amount", "reason", "referral_id",
        "customer_id", "id"})),
}
#: Tables whose deletes change counted rows through ``ON DELETE SET NULL``.
REFERENCED = frozenset({Customer.__tablename__, Referral.__tablename__})
_WRITE_SQL = re.compile(r"\b(insert|update|delete|replace)\b", re.IGNORECASE)
_ALL_SHOPS = -1


# ---------------------------------------------------------------------------------------------------------
# Invalidation


def _stale(value: t.Any, now: dt.datetime) -> bool:
    """Tell whether a row time may lie in a closed day (unknown or unreadable times count as old)."""
    if value is None:
        return False
    if not isinstance(value, dt.datetime):
        return True
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return bool(value < now - STALE_AFTER)


def bump(session: Session, shop_ids: t.Iterable[int], *, create: bool = True) -> None:
    """Retire the roll-up of ``shop_ids`` (``-1``: every shop) in the session's transaction.

    The state row is created when missing (``create``), so a build that started before this write
    waits for it; a delete passes False, as it may be emptying the shop (``shop/redact``) for good.
    """
    ids = set(shop_ids)
    if not ids:
        return
    connection = session.connection()
    if not _tables_exist(connection.engine):
        return
    if _ALL_SHOPS in ids:
        connection.execute(update(SummaryState).values(version=SummaryState.version + 1))
        return
    dialect = connection.dialect.name
    for shop_id in sorted(ids):
        if not create:
            connection.execute(update(SummaryState).where(SummaryState.shop_id == shop_id)
                               .values(version=SummaryState.version + 1))
        elif dialect in ("postgresql", "sqlite"):
            stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(SummaryState)
            connection.execute(stmt.values(shop_id=shop_id, version=1).on_conflict_do_update(
                index_elements=[SummaryState.shop_id], set_={"version": SummaryState.version + 1}))
        else:
            done = connection.execute(update(SummaryState).where(SummaryState.shop_id == shop_id)
                                      .values(version=SummaryState.version + 1))
            if not done.rowcount:
                connection.execute(insert(SummaryState).values(shop_id=shop_id, version=1))


def _flush_bumps(session: Session) -> set[int]:
    """Return the shops whose closed days this flush changes."""
    now = utcnow()
    shops: set[int] = set()
    for obj in session.deleted:
        table = getattr(type(obj), "__tablename__", None)
        if table in REFERENCED:
            shops.add(getattr(obj, "shop_id", None) or _ALL_SHOPS)
        elif table in WATCHED and _stale(getattr(obj, WATCHED[table][0]), now):
            shops.add(getattr(obj, "shop_id", None) or _ALL_SHOPS)
    for obj in session.new:
        table = getattr(type(obj), "__tablename__", None)
        if table in WATCHED and _stale(obj.__dict__.get(WATCHED[table][0]), now):
            shops.add(getattr(obj, "shop_id", None) or _ALL_SHOPS)
    for obj in session.dirty:
        table = getattr(type(obj), "__tablename__", None)
        if table not in WATCHED:
            continue
        time_column, columns = WATCHED[table]
        state = attributes.instance_state(obj)
        changed = [key for key in columns if key in state.attrs.keys()
                   and state.attrs[key].history.has_changes()]
        if not changed:
            continue
        if changed == ["order_subtotal"] and isinstance(obj, Referral):
            if _subtotal_change_is_stale(session, obj, now):
                shops.add(obj.shop_id)
            continue
        history = state.attrs[time_column].history
        times = [*history.deleted, *history.unchanged, *history.added]
        # An expired row's time is not in its history: not knowing when it happened, assume long ago.
        if not times or any(_stale(value, now) for value in times):
            shops.update(_shop_ids_of(state))
    return shops


def _shop_ids_of(state: t.Any) -> set[int]:
    history = state.attrs["shop_id"].history
    return {value for value in (*history.deleted, *history.unchanged, *history.added) if value is not None} \
        or {_ALL_SHOPS}


def _subtotal_change_is_stale(session: Session, referral: Referral, now: dt.datetime) -> bool:
    """Tell whether a referral's order subtotal changes the value of percentage rows in closed days.

    A referral's first order sets it (None → amount) together with its rewards, so usually no
    percentage row is older than that; only look when the referral is old enough to have any.
    """
    if referral.id is None or not _stale(referral.created_at, now):
        return False
    with session.no_autoflush:
        found = session.execute(select(exists().where(
            LedgerEntry.referral_id == referral.id,
            LedgerEntry.reward_kind == RewardKind.PERCENTAGE.value,
            LedgerEntry.created_at < now - STALE_AFTER,
        ))).scalar()
    return bool(found)


def _on_before_flush(session: Session, flush_context: t.Any, instances: t.Any) -> None:
    shops = _flush_bumps(session)
    if shops:
        bump(session, shops)


def _statement_shop(stmt: t.Any) -> int:
    """Return the shop a statement's WHERE pins with ``shop_id = value``, or -1 when it pins none."""
    where = getattr(stmt, "whereclause", None)
    if where is None:
        return _ALL_SHOPS
    found: list[int] = []

    def visit(node: t.Any) -> None:
        if isinstance(node, BinaryExpression) and getattr(node.left, "key", None) == "shop_id" \
                and isinstance(node.right, BindParameter) and node.operator.__name__ == "eq" \
                and isinstance(node.right.value, int):
            found.append(node.right.value)
        for child in node.get_children():
            visit(child)

    # Only an AND of conditions pins the shop: look at the top level and the conjunction's members.
    top = [where, *(where.clauses if getattr(where, "operator", None) is not None
                    and getattr(where.operator, "__name__", "") == "and_" else [])]
    for node in top:
        if isinstance(node, BinaryExpression):
            visit(node)
    return found[0] if len(set(found)) == 1 else _ALL_SHOPS


def _insert_bumps(stmt: Insert, parameters: t.Any, now: dt.datetime) -> set[int]:
    table = str(getattr(stmt.table, "name", ""))
    time_column = WATCHED[table][0]
    rows: list[dict[t.Any, t.Any]] = []
    if isinstance(parameters, dict):
        rows.append(parameters)
    elif isinstance(parameters, (list, tuple)):
        rows.extend(row for row in parameters if isinstance(row, dict))
    values = getattr(stmt, "_values", None) or {}
    if values:
        rows.append({getattr(key, "key", key): getattr(value, "value", value) for key, value in values.items()})
    for multi in getattr(stmt, "_multi_values", ()) or ():
        for row in multi:
            if isinstance(row, dict):
                rows.append({getattr(key, "key", key): getattr(value, "value", value) for key, value in row.items()})
            else:
                return {_ALL_SHOPS}
    if getattr(stmt, "select", None) is not None:
        return {_ALL_SHOPS}
    shops: set[int] = set()
    for row in rows:
        if _stale(row.get(time_column), now):
            shop_id = row.get("shop_id")
            shops.add(shop_id if isinstance(shop_id, int) else _ALL_SHOPS)
    return shops


def _on_execute(state: t.Any) -> None:
    stmt = state.statement
    shops: set[int] = set()
    create = not isinstance(stmt, Delete)
    if isinstance(stmt, TextClause):
        text = stmt.text
        if _WRITE_SQL.search(text) and any(name in text for name in (*WATCHED, *REFERENCED)):
            shops.add(_ALL_SHOPS)
    elif isinstance(stmt, (Insert, Update, Delete)):
        table = getattr(stmt.table, "name", None)
        if isinstance(stmt, Insert):
            if table in WATCHED:
                shops = _insert_bumps(stmt, state.parameters, utcnow())
        elif isinstance(stmt, Delete):
            if table in WATCHED or table in REFERENCED:
                shops.add(_statement_shop(stmt))
        elif table in WATCHED:
            columns = {getattr(key, "key", key) for key in (getattr(stmt, "_values", None) or {})}
            if not columns and state.parameters:
                columns = set(state.parameters[0] if isinstance(state.parameters, list) else state.parameters)
            if columns & WATCHED[table][1] or not columns:
                shops.add(_statement_shop(stmt))
    if shops:
        bump(state.session, shops, create=create)


_installed = False


def install() -> None:
    """Hook every ORM session (once per process): writes that change closed days retire the roll-up."""
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _on_before_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    _installed = True


# ---------------------------------------------------------------------------------------------------------
# Reading and building


def closed_through(zone: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """Return the shop's last closed day: the latest day that ended :data:`SETTLE` ago or earlier."""
    settled = (now or utcnow()) - SETTLE
    day = settled.astimezone(zone).date()
    # The day holding ``settled`` has not ended before it; the one before has.
    return day - dt.timedelta(days=1)


_ready: set[str] = set()


def _tables_exist(engine: t.Any) -> bool:
    """Tell whether the roll-up's tables exist (a database not migrated yet has none, and nothing to retire)."""
    key = engine.url.render_as_string(hide_password=True)
    if key not in _ready:
        tables = {SummaryState.__tablename__, SummaryDay.__tablename__, SummaryDayKey.__tablename__}
        if not tables <= set(inspect(engine).get_table_names()):
            return False
        _ready.add(key)
    return True


def _usable() -> bool:
    """Tell whether the roll-up can serve: its tables exist and a second connection sees this session's
    database (not so for in-memory SQLite)."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:") or "mode=memory" in str(url):
        return False
    return _tables_exist(db.engine)


def figures(shop: Shop, zone: ZoneInfo, start: dt.date, end: dt.date) -> raw.Figures | None:
    """Return the range's figures from the roll-up and the raw tail, or None to count everything raw."""
    last_closed = closed_through(zone)
    if start > last_closed or not _usable() or shop.id is None:
        return None
    closed_end = min(end, last_closed)
    closed = raw.day_list(start, closed_end)
    version = _version(shop)
    if _days_present(shop, zone, version, start, closed_end) != len(closed):
        if _holds_sqlite_writer_lock():
            return None
        try:
            built = _build(shop, zone, closed)
        except Exception:  # noqa: BLE001 - a failed cache build must never fail the summary
            log.warning("summary roll-up build failed for shop %s; counting raw", shop.id, exc_info=True)
            return None
        # The build saw only committed rows: when this session's own transaction has retired that version
        # (a write of its own, not committed yet) or another one committed since, count raw this time.
        if built != version:
            return None
    days = _read_days(shop, zone, version, start, closed_end)
    if len(days) != len(closed):
        return None
    tail = raw.day_list(closed_end + dt.timedelta(days=1), end) if end > closed_end else []
    days.update(raw.raw_days(shop, zone, tail))
    low, high = raw.utc_bounds(zone, start, end)
    tail_low = raw.utc_bounds(zone, tail[0], tail[0])[0] if tail else high
    rewarded, reversed_ = _funnel(shop, zone, version, start, closed_end, low, tail_low, high)
    advocates = _top_advocates(shop, zone, version, start, closed_end, tail_low, high)
    points = _points(shop, zone, version, start, closed_end, tail_low, high, [row[0] for row in advocates])
    # A rebuild of a newer version deletes this one's rows only after it commits: if they are all still
    # there now, every read above saw them complete.
    if _days_present(shop, zone, version, start, closed_end) != len(closed):
        return None
    return raw.Figures(days=days, rewarded=rewarded, reversed=reversed_, advocates=advocates, points=points)


def _holds_sqlite_writer_lock() -> bool:
    """Tell whether this session has uncommitted writes on SQLite: a build would wait for ourselves."""
    driver = db.session.connection().connection.driver_connection
    return isinstance(driver, sqlite3.Connection) and driver.in_transaction


def _version(shop: Shop, session: t.Any = None) -> int:
    found = (session or db.session).execute(
        select(SummaryState.version).where(SummaryState.shop_id == shop.id)).scalar()
    return int(found or 0)


def _days_present(shop: Shop, zone: ZoneInfo, version: int, start: dt.date, end: dt.date) -> int:
    return int(db.session.execute(select(func.count()).where(
        SummaryDay.shop_id == shop.id, SummaryDay.zone == zone.key, SummaryDay.version == version,
        SummaryDay.day >= start, SummaryDay.day <= end)).scalar_one())


def _read_days(shop: Shop, zone: ZoneInfo, version: int, start: dt.date,
               end: dt.date) -> dict[dt.date, raw.DayFigures]:
    rows = db.session.execute(select(SummaryDay).where(
        SummaryDay.shop_id == shop.id, SummaryDay.zone == zone.key, SummaryDay.version == version,
        SummaryDay.day >= start, SummaryDay.day <= end)).scalars()
    return {row.day: raw.DayFigures(
        clicks=row.clicks, invites=row.invites, signups=row.signups, orders=row.orders,
        revenue=raw._exact(row.revenue, raw.CENT), points=row.points, coupons=row.coupons,
        fixed_discounts=raw._exact(row.fixed_discounts, raw.CENT),
        percent_discounts=raw._exact(row.percent_discounts, raw.MICRO)) for row in rows}


def _keys(shop: Shop, zone: ZoneInfo, version: int, metric: str, start: dt.date, end: dt.date) -> t.Any:
    return and_(SummaryDayKey.shop_id == shop.id, SummaryDayKey.zone == zone.key,
                SummaryDayKey.version == version, SummaryDayKey.metric == metric,
                SummaryDayKey.day >= start, SummaryDayKey.day <= end)


def _step(metric: str) -> t.Any:
    return LedgerEntry.entry_type.in_(_types(metric))


def _funnel(shop: Shop, zone: ZoneInfo, version: int, start: dt.date, closed_end: dt.date,
            low: dt.datetime, tail_low: dt.datetime, high: dt.datetime) -> tuple[int, int]:
    """Count distinct referrals rewarded and reversed in ``[low, high)``.

    A referral counts on its first row in range: in closed days, the rows whose previous row of the step
    is on a day before ``start``; in the tail, the referrals with no row of the step since ``low``.
    """
    counts = dict(db.session.execute(
        select(SummaryDayKey.metric, func.sum(SummaryDayKey.n))
        .where(or_(_keys(shop, zone, version, REWARDED, start, closed_end),
                   _keys(shop, zone, version, REVERSED, start, closed_end)),
               SummaryDayKey.key < start.toordinal())
        .group_by(SummaryDayKey.metric)).all())
    result = []
    for metric in (REWARDED, REVERSED):
        total = int(counts.get(metric) or 0)
        if tail_low < high:
            earlier = aliased(LedgerEntry)
            total += int(db.session.execute(
                select(func.count(func.distinct(LedgerEntry.referral_id))).where(
                    LedgerEntry.shop_id == shop.id, LedgerEntry.created_at >= tail_low,
                    LedgerEntry.created_at < high, LedgerEntry.referral_id.is_not(None), _step(metric),
                    ~exists().where(earlier.referral_id == LedgerEntry.referral_id,
                                    earlier.shop_id + 0 == shop.id,
                                    earlier.entry_type.in_(_types(metric)),
                                    earlier.created_at >= low, earlier.created_at < tail_low))
            ).scalar_one())
        result.append(total)
    return result[0], result[1]


def _types(metric: str) -> tuple[str, ...]:
    return tuple(raw.REWARDED_ENTRY_TYPES) if metric == REWARDED else (EntryType.REVERSAL.value,)


def _top_advocates(shop: Shop, zone: ZoneInfo, version: int, start: dt.date, closed_end: dt.date,
                   tail_low: dt.datetime, high: dt.datetime) -> list[tuple[int, int, int]]:
    cached = select(SummaryDayKey.key.label("advocate"), SummaryDayKey.n.label("orders"),
                    SummaryDayKey.cents.label("revenue")).where(
        _keys(shop, zone, version, ADVOCATE, start, closed_end))
    recent = select(OrderAttribution.advocate_id.label("advocate"), literal(1).label("orders"),
                    func.coalesce(raw.cents(OrderAttribution.total), 0).label("revenue")).where(
        OrderAttribution.shop_id == shop.id, OrderAttribution.created_at >= tail_low,
        OrderAttribution.created_at < high, OrderAttribution.decision.in_(raw.COUNTED_DECISIONS),
        OrderAttribution.advocate_id.is_not(None))
    both = union_all(cached, recent).subquery()
    orders = func.sum(both.c.orders)
    revenue = func.sum(both.c.revenue)
    rows = db.session.execute(
        select(both.c.advocate, orders, revenue).group_by(both.c.advocate)
        .order_by(orders.desc(), revenue.desc(), both.c.advocate).limit(raw.TOP_ADVOCATES)).all()
    return [(int(a), int(o), int(r)) for a, o, r in rows]


def _points(shop: Shop, zone: ZoneInfo, version: int, start: dt.date, closed_end: dt.date,
            tail_low: dt.datetime, high: dt.datetime, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    # One lookup per advocate: each is a range of the primary key (an IN list let SQLite pick the
    # day index and read every customer's points in range).
    points = {key: int(db.session.execute(
        select(func.coalesce(func.sum(SummaryDayKey.n), 0))
        .where(_keys(shop, zone, version, POINTS, start, closed_end), SummaryDayKey.key == key)).scalar_one())
        for key in ids}
    if tail_low < high:
        for key, value in raw.advocate_points_raw(shop, tail_low, high, ids).items():
            points[key] = points.get(key, 0) + value
    return points


@contextlib.contextmanager
def _build_connection() -> t.Iterator[t.Any]:
    """Yield a connection of the build's own; on SQLite it gives up fast on the writer lock."""
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        previous = None
        if sqlite:
            previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {BUILD_BUSY_MS}")
            connection.commit()
        try:
            yield connection
        finally:
            connection.rollback()
            if sqlite and previous is not None:
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous)}")
                connection.commit()


def _begin(connection: t.Any) -> None:
    """Start one of the build's transactions; on PostgreSQL one that gives up on a lock and skips JIT."""
    if connection.dialect.name == "postgresql":
        # The request's own transaction may hold the shop's state row (a bump not yet committed):
        # give up instead of waiting for ourselves.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{BUILD_BUSY_MS}ms'")
        connection.exec_driver_sql("SET LOCAL jit = off")


#: Days per build transaction: SQLite's writer lock is held for one chunk's inserts, a few dozen ms.
BUILD_CHUNK_DAYS = 31
#: How long one request may spend building before it counts raw (gunicorn kills a worker at 10 s).
BUILD_BUDGET_SECONDS = 2.0


#: Days the background job keeps built: the dashboard's longest preset (a year), and a month more.
WARM_DAYS = 400
#: How long the background job may build for one shop in one run (it carries on at the next run).
WARM_BUDGET_SECONDS = 30.0


def warm(shop: Shop, now: dt.datetime | None = None) -> int:
    """Build what the roll-up lacks of the shop's last :data:`WARM_DAYS` closed days; return how many were missing.

    The periodic job calls it so that the first dashboard after a deploy, or after a write to an old row
    retired the shop's version, finds its days already counted instead of spending its own request on them.
    """
    if shop.id is None or not _usable():
        return 0
    zone = raw.shop_zone(shop)
    last = closed_through(zone, now)
    days = raw.day_list(last - dt.timedelta(days=WARM_DAYS - 1), last)
    missing = len(days) - _days_present(shop, zone, _version(shop), days[0], days[-1])
    db.session.rollback()  # end the read: the build counts on its own connection
    if missing:
        _build(shop, zone, days, budget=WARM_BUDGET_SECONDS)
    return missing


def _build(shop: Shop, zone: ZoneInfo, days: list[dt.date], budget: float | None = None) -> int:
    """Count ``days`` (closed) from the raw rows into the roll-up; return the version they were built at.

    The version is read before any raw row: a writer that changes a closed day after that point bumps
    it (creating the state row if needed), so what this build saw of the old state is never trusted.
    Each chunk of days commits on its own, keys before the day rows that vouch for them. ``budget`` (seconds,
    :data:`BUILD_BUDGET_SECONDS` for a request) bounds the time spent; the rest is left for the next call.
    """
    with _build_connection() as connection:
        _begin(connection)
        version = _version(shop, connection)
        present = set(connection.execute(select(SummaryDay.day).where(
            SummaryDay.shop_id == shop.id, SummaryDay.zone == zone.key, SummaryDay.version == version,
            SummaryDay.day >= days[0], SummaryDay.day <= days[-1])).scalars())
        connection.commit()
        missing = [day for day in reversed(days) if day not in present]
        began = time.monotonic()
        # Newest days first, and no more than the budget: a year of a big shop takes several seconds, so
        # a cold request counts raw after the budget and the next requests finish the job.
        for chunk_start in range(0, len(missing), BUILD_CHUNK_DAYS):
            _begin(connection)
            _build_days(connection, shop, zone, version,
                        sorted(missing[chunk_start:chunk_start + BUILD_CHUNK_DAYS]))
            connection.commit()
            if time.monotonic() - began > (BUILD_BUDGET_SECONDS if budget is None else budget):
                break
        if missing:
            _begin(connection)
            connection.execute(delete(SummaryDayKey).where(SummaryDayKey.shop_id == shop.id,
                                                           SummaryDayKey.version < version))
            connection.execute(delete(SummaryDay).where(SummaryDay.shop_id == shop.id,
                                                        SummaryDay.version < version))
            connection.commit()
    return version


def _upsert(connection: t.Any, model: t.Any) -> t.Any:
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(model)


def _build_days(connection: t.Any, shop: Shop, zone: ZoneInfo, version: int, days: list[dt.date]) -> None:
    """Insert the roll-up rows of ``days``: the day figures, then each keyed figure."""
    figures_ = raw.raw_days(shop, zone, days, session=connection)
    rows = [{"shop_id": shop.id, "zone": zone.key, "version": version, "day": day,
             "clicks": f.clicks, "invites": f.invites, "signups": f.signups, "orders": f.orders,
             "revenue": f.revenue, "points": f.points, "coupons": f.coupons,
             "fixed_discounts": f.fixed_discounts, "percent_discounts": f.percent_discounts}
            for day, f in figures_.items()]
    table = raw._day_table(zone, days)
    # The chunk's overall bounds as constants too: the planner then reads one index range for the chunk
    # instead of joining the days to the shop's whole table (PostgreSQL's choice with a VALUES list).
    low, high = raw.utc_bounds(zone, days[0], days[-1])
    in_day = and_(LedgerEntry.created_at >= table.c.lo, LedgerEntry.created_at < table.c.hi,
                  LedgerEntry.created_at >= low, LedgerEntry.created_at < high)
    head = (literal(shop.id).label("shop_id"), literal(zone.key).label("zone"),
            literal(version).label("version"))
    key_columns = ["shop_id", "zone", "version", "metric", "key", "day", "n", "cents"]
    advocates = (
        select(*head, literal(ADVOCATE).label("metric"), OrderAttribution.advocate_id,
               table.c.d, func.count(), func.coalesce(func.sum(raw.cents(OrderAttribution.total)), 0))
        .select_from(table)
        .join(OrderAttribution, and_(OrderAttribution.shop_id == shop.id,
                                     OrderAttribution.created_at >= table.c.lo,
                                     OrderAttribution.created_at < table.c.hi,
                                     OrderAttribution.created_at >= low, OrderAttribution.created_at < high))
        .where(OrderAttribution.decision.in_(raw.COUNTED_DECISIONS), OrderAttribution.advocate_id.is_not(None))
        .group_by(table.c.d, OrderAttribution.advocate_id))
    points = (
        select(*head, literal(POINTS).label("metric"), LedgerEntry.customer_id, table.c.d,
               func.coalesce(func.sum(LedgerEntry.points), 0), literal(0))
        .select_from(table)
        .join(LedgerEntry, and_(LedgerEntry.shop_id == shop.id, in_day))
        .where(LedgerEntry.entry_type.in_(raw.VALUE_ENTRY_TYPES), LedgerEntry.customer_id.is_not(None))
        .group_by(table.c.d, LedgerEntry.customer_id))
    for query in (advocates, points):
        connection.execute(_upsert(connection, SummaryDayKey).from_select(key_columns, query)
                           .on_conflict_do_nothing())
    steps: list[dict[str, t.Any]] = []
    for metric in (REWARDED, REVERSED):
        # Per referral and day: its first row that day has, as previous row, the referral's last row
        # before the day (looked up once per group); every other row's previous row is on the same day.
        groups = (select(table.c.d.label("d"), table.c.lo.label("lo"),
                         LedgerEntry.referral_id.label("referral_id"), func.count().label("n"))
                  .select_from(table)
                  .join(LedgerEntry, and_(LedgerEntry.shop_id == shop.id, in_day))
                  .where(LedgerEntry.referral_id.is_not(None), _step(metric))
                  .group_by(table.c.d, table.c.lo, LedgerEntry.referral_id)).subquery()
        earlier = aliased(LedgerEntry)
        previous = (select(func.max(earlier.created_at)).where(
            earlier.referral_id == groups.c.referral_id, earlier.shop_id + 0 == shop.id,
            earlier.entry_type.in_(_types(metric)), earlier.created_at < groups.c.lo)
            .scalar_subquery().label("prev"))
        inner = select(groups.c.d, groups.c.n, previous).subquery()
        counted: dict[tuple[dt.date, int], int] = {}
        for day, prev, firsts, rows_ in connection.execute(
                select(inner.c.d, inner.c.prev, func.count(), func.sum(inner.c.n))
                .group_by(inner.c.d, inner.c.prev)):
            day = _as_date(day)
            key = 0 if prev is None else _as_datetime(prev).astimezone(zone).date().toordinal()
            counted[(day, key)] = counted.get((day, key), 0) + int(firsts)
            if int(rows_) > int(firsts):
                same = (day, day.toordinal())
                counted[same] = counted.get(same, 0) + int(rows_) - int(firsts)
        steps.extend({"shop_id": shop.id, "zone": zone.key, "version": version, "metric": metric, "key": key,
                      "day": day, "n": n, "cents": 0} for (day, key), n in counted.items())
    if steps:
        connection.execute(_upsert(connection, SummaryDayKey).on_conflict_do_nothing(), steps)
    # The day rows last: their presence is what says the day's keys are complete.
    if rows:
        connection.execute(_upsert(connection, SummaryDay).on_conflict_do_nothing(), rows)


def _as_date(value: t.Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _as_datetime(value: t.Any) -> dt.datetime:
    result = UTCDateTime().process_result_value(value, db.engine.dialect)
    assert result is not None
    return result


