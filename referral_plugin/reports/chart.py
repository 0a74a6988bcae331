"""The per-day chart as inline SVG, drawn on the server: no chart library, no network, no JavaScript.

Each day has three bars side by side: link clicks, friends signed up, referred orders. Every day is a
group with a ``<title>`` (a tooltip and what screen readers announce), and the page also offers the
same numbers as a table.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from markupsafe import Markup
from markupsafe import escape

WIDTH = 720
HEIGHT = 240
PAD_LEFT = 44
PAD_RIGHT = 12
PAD_TOP = 14
PAD_BOTTOM = 30


def _nice_max(value: int) -> int:
    """Round the y-axis top up to 1, 2 or 5 times a power of ten."""
    if value <= 4:
        return 4
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            # The middle grid line is labelled too: an odd top (5) would put "2.5" clicks on a count axis.
            top = step * magnitude
            return top + 1 if top % 2 else top
    return 10 * magnitude  # pragma: no cover


def _label(day: dt.date) -> str:
    return f"{day.strftime('%b')} {day.day}"


def day_title(row: t.Mapping[str, t.Any], currency: str) -> str:
    """Return one day's numbers as a sentence."""
    day = dt.date.fromisoformat(row["date"])
    return (f"{_label(day)}: {_count(row['clicks'], 'click')}, {_count(row['signups'], 'signup')}, "
            f"{_count(row['referredOrders'], 'referred order')}, "
            f"{row['referralRevenue']:.2f} {currency} revenue")


def _count(n: int, noun: str) -> str:
    """Return ``n`` with ``noun``, plural unless it is one ("1 click", "0 clicks")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def series_svg(series: t.Sequence[t.Mapping[str, t.Any]], currency: str) -> Markup:
    """Return the chart of a summary's ``series`` as an accessible inline ``<svg>``."""
    days = len(series)
    top = _nice_max(max([max(row["clicks"], row["signups"], row["referredOrders"]) for row in series] or [0]))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(days, 1)

    def y(value: float) -> float:
        return PAD_TOP + plot_h - (value / top) * plot_h

    total_clicks = sum(row["clicks"] for row in series)
    total_orders = sum(row["referredOrders"] for row in series)
    total_signups = sum(row["signups"] for row in series)
    first = series[0]["date"] if series else ""
    last = series[-1]["date"] if series else ""
    summary = (f"Daily referral activity from {first} to {last}: {_count(total_clicks, 'click')}, "
               f"{_count(total_signups, 'signup')} and {_count(total_orders, 'referred order')}.")
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Referral activity per day</title>',
        f'<desc id="chart-desc">{escape(summary)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        value = top * fraction
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f'{value:g}</text>')
    # Three bars per day, side by side: clicks, signups, referred orders.
    bar = max(slot * 0.8 / 3, 0.6)
    for index, row in enumerate(series):
        left = PAD_LEFT + index * slot + (slot - bar * 3) / 2
        title = escape(day_title(row, currency))
        # A tooltip per day; screen readers get the svg's summary and the data table next to it.
        parts.append(f'<g class="day"><title>{title}</title>')
        parts.append(f'<rect class="hit" x="{PAD_LEFT + index * slot:.1f}" y="{PAD_TOP}" width="{slot:.1f}" '
                     f'height="{plot_h}"/>')
        for offset, key, css in ((0, "clicks", "clicks"), (1, "signups", "signups"), (2, "referredOrders", "orders")):
            value = row[key]
            if value:
                parts.append(f'<rect class="{css}" x="{left + offset * bar:.2f}" y="{y(value):.1f}" '
                             f'width="{bar:.2f}" height="{y(0) - y(value):.1f}"/>')
        parts.append("</g>")
    step = max(1, days // 6)
    for index in range(0, days, step):
        day = dt.date.fromisoformat(series[index]["date"])
        parts.append(f'<text class="axis" x="{PAD_LEFT + index * slot + slot / 2:.1f}" y="{HEIGHT - 10}" '
                     f'text-anchor="middle">{escape(_label(day))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
