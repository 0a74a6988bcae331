"""The server-drawn chart: self-contained SVG with a title per day."""

from __future__ import annotations

from referral_plugin.reports.chart import series_svg


def _row(date: str, clicks: int = 0, signups: int = 0, orders: int = 0) -> dict:
    """Return one series entry."""
    return {"date": date, "clicks": clicks, "invites": 0, "signups": signups, "referredOrders": orders,
            "referralRevenue": 12.5 * orders, "pointsAwarded": 0, "couponsIssued": 0}


def test_one_group_per_day_with_a_readable_title() -> None:
    """Each day is a group whose title states its numbers; the svg names itself for assistive tech."""
    svg = str(series_svg([_row("2026-11-01", 4, 2, 1), _row("2026-11-02")], "USD"))
    assert svg.count('<g class="day">') == 2
    assert "<title>Nov 1: 4 clicks, 2 signups, 1 referred order, 12.50 USD revenue</title>" in svg
    assert "<title>Nov 2: 0 clicks, 0 signups, 0 referred orders, 0.00 USD revenue</title>" in svg
    singular = str(series_svg([_row("2026-11-03", 1, 1, 1)], "USD"))
    assert "Nov 3: 1 click, 1 signup, 1 referred order," in singular
    assert "1 click, 1 signup and 1 referred order." in singular  # the chart's description
    assert 'role="img"' in svg and "<desc" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert "<script" not in svg


def test_empty_days_draw_no_bars_and_escape_currency() -> None:
    """Days without activity have no bars; odd currency text is escaped."""
    svg = str(series_svg([_row("2026-11-01")], "<b>"))
    assert 'class="clicks"' not in svg and "&lt;b&gt;" in svg and "<b>" not in svg


def test_axis_labels_are_whole_counts() -> None:
    """A busiest day of 5 clicks labels the axis 0, 3, 6, never '2.5' clicks."""
    import re

    svg = str(series_svg([_row("2026-11-01", 5, 1, 1), _row("2026-11-02", 2)], "USD"))
    labels = re.findall(r'<text class="axis" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]+)</text>', svg)
    assert labels == ["0", "3", "6"]
