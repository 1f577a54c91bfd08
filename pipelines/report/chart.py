"""Draws one account's daily balance chart as inline SVG text: no browser, no network, no chart library.

The mapping from data to pixels is written on the <svg> element (data-x0, data-dx, data-top, data-height, data-lo,
data-hi), so anyone (the tests among them) can read the plotted values back from the path coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from html import escape

from pipelines.report.data import DailyPoint, Series, Window
from pipelines.report.fmt import major, money

WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 78, 14, 12, 30
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
X_LABELS = 7
Y_STEPS = 4
XMap = Callable[[int], float]
YMap = Callable[[float], float]


def _nice_step(span: float) -> float:
    raw = span / Y_STEPS if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _domain(values: list[float]) -> tuple[float, float, float]:
    """(lo, hi, step): nice round bounds that include zero and every value."""
    lo, hi = min([0.0, *values]), max([0.0, *values])
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if hi == lo:
        hi = lo + step
    return lo, hi, step


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


class _Path:
    """An SVG path drawn segment by segment, continuing the stroke when a segment starts where the last ended."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.end: int | None = None

    def segment(self, i: int, a: tuple[float, float], b: tuple[float, float]) -> None:
        if self.end != i - 1:
            self.parts.append(f"M{_fmt(a[0])} {_fmt(a[1])}")
        self.parts.append(f"L{_fmt(b[0])} {_fmt(b[1])}")
        self.end = i

    def element(self, css: str) -> str:
        return f'<path class="{css}" d="{" ".join(self.parts)}"/>' if self.parts else ""


def render_chart(series: Series, window: Window) -> str:
    """The SVG of one (account, currency) over the window; an empty string when the window holds no value."""
    days = window.all_days()
    index = {day: i for i, day in enumerate(days)}
    by_day: dict[int, DailyPoint] = {index[p.day]: p for p in series.points if p.day in index}
    ccy = series.currency
    current = {i: float(major(p.current_minor, ccy)) for i, p in by_day.items() if p.current_minor is not None}
    second = {i: float(major(p.second_minor, ccy)) for i, p in by_day.items() if p.second_minor is not None}
    if not current and not second:
        return ""
    lo, hi, step = _domain([*current.values(), *second.values()])
    dx = PLOT_W / (len(days) - 1) if len(days) > 1 else 0.0

    def x(i: int) -> float:
        return LEFT + i * dx if len(days) > 1 else LEFT + PLOT_W / 2

    def y(value: float) -> float:
        return TOP + (hi - value) / (hi - lo) * PLOT_H

    second_name = "used" if series.balance_type == "credit" else "available"
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="daily {escape(second_name)} and current balance, {escape(ccy.upper())}" '
        f'data-currency="{escape(ccy)}" data-first-day="{days[0].isoformat()}" data-x0="{_fmt(x(0))}" '
        f'data-dx="{dx!r}" data-top="{TOP}" data-height="{PLOT_H}" data-lo="{lo!r}" data-hi="{hi!r}">'
    ]
    if series.balance_type == "cash":  # a credit balance is negative by nature (owed): shading it says nothing
        out.append(_negative_days(current, x, dx))
    out.extend(_y_axis(lo, hi, step, y, step < 1))
    out.extend(_x_axis(days, x))
    # Second line first, so the current balance is drawn on top of it.
    out.append(_line(second, by_day, x, y, second_name, split_carried=False))
    out.append(_line(current, by_day, x, y, "current", split_carried=True))
    out.append(_markers(current, by_day, days, x, y, ccy))
    out.append("</svg>")
    return "".join(out)


def _negative_days(current: dict[int, float], x: XMap, dx: float) -> str:
    """One shaded band per run of consecutive days below zero."""
    runs: list[list[int]] = []
    for i in sorted(i for i, value in current.items() if value < 0):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    bands = []
    for start, end in runs:
        left = max(LEFT, x(start) - dx / 2)
        right = min(LEFT + PLOT_W, x(end) + dx / 2)
        bands.append(f'<rect class="neg" x="{_fmt(left)}" y="{TOP}" width="{_fmt(max(right - left, 2))}" '
                     f'height="{PLOT_H}" data-days="{end - start + 1}"/>')
    return "".join(bands)


def _y_axis(lo: float, hi: float, step: float, y: YMap, decimals: bool) -> list[str]:
    parts = []
    count = round((hi - lo) / step)
    for k in range(count + 1):
        value = lo + k * step
        pos = _fmt(y(value))
        css = "zero" if abs(value) < step / 1e6 else "grid"
        parts.append(f'<line class="{css}" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{pos}" y2="{pos}"/>')
        label = f"{value:,.{2 if decimals else 1}f}".rstrip("0").rstrip(".")  # a step of 2.5 needs its decimal
        label = "0" if css == "zero" else label
        parts.append(f'<text class="ylabel" x="{LEFT - 6}" y="{pos}" dy="0.32em" text-anchor="end">{label}</text>')
    return parts


def _x_axis(days: list[date], x: XMap) -> list[str]:
    every = max(1, math.ceil(len(days) / X_LABELS))
    parts = [f'<line class="axis" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}"/>']
    for i in range(len(days) - 1, -1, -every):  # anchored on the last day, the one an underwriter reads first
        pos = _fmt(x(i))
        anchor = "end" if i == len(days) - 1 else "middle"  # the last label would overflow the right edge
        parts.append(f'<text class="xlabel" x="{pos}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                     f'{days[i].strftime("%b %d")}</text>')
    return parts


def _line(values: dict[int, float], by_day: dict[int, DailyPoint], x: XMap, y: YMap, css: str,
          split_carried: bool) -> str:
    """Segments between consecutive days with a value; none across a gap. Carried days get a dashed segment."""
    solid, dashed = _Path(), _Path()
    for i in sorted(values):
        if i - 1 in values:
            path = dashed if split_carried and not by_day[i].observed else solid
            path.segment(i, (x(i - 1), y(values[i - 1])), (x(i), y(values[i])))
    return solid.element(css) + dashed.element(f"{css} carried")


def _markers(current: dict[int, float], by_day: dict[int, DailyPoint], days: list[date], x: XMap, y: YMap,
             ccy: str) -> str:
    """A dot on each observed day; a hollow dot on a carried day with no neighbour (no segment would show it)."""
    parts = []
    for i, value in sorted(current.items()):
        point = by_day[i]
        if not point.observed and (i - 1 in current or i + 1 in current):
            continue
        css = "obs" if point.observed else "carried-point"
        label = f"{days[i].isoformat()}: {money(point.current_minor, ccy)}{'' if point.observed else ' (carried)'}"
        parts.append(f'<circle class="{css}" cx="{_fmt(x(i))}" cy="{_fmt(y(value))}" r="2.6" '
                     f'data-day="{days[i].isoformat()}"><title>{escape(label)}</title></circle>')
    return "".join(parts)
