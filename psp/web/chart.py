"""The balance-over-time chart as plain geometry for an inline SVG: no script, no external asset.

A pure function of the (day, balance) series, so it is tested without a server. Long histories
are thinned to one point per pixel column (the last balance of the column), which keeps the SVG
small whatever the number of entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 720
HEIGHT = 200
MARGIN_LEFT = 56
MARGIN_RIGHT = 12
MARGIN_TOP = 12
MARGIN_BOTTOM = 28
MAX_POINTS = 360


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    """Everything the template draws: a step line, the zero line and labelled ticks."""

    width: int
    height: int
    points: str
    zero_y: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    first: date
    last: date
    last_balance: int


def _thin(series: list[tuple[date, int]]) -> list[tuple[date, int]]:
    if len(series) <= MAX_POINTS:
        return series
    step = len(series) / MAX_POINTS
    picked = [series[min(len(series) - 1, int((i + 1) * step) - 1)] for i in range(MAX_POINTS)]
    return [series[0], *picked]


def balance_chart(series: list[tuple[date, int]]) -> Chart | None:
    """Geometry of the balance line; None when there is nothing to draw."""
    if not series:
        return None
    points = _thin(series)
    first, last = points[0][0], points[-1][0]
    days = max(1, (last - first).days)
    low = min(0, *(b for _, b in points))
    high = max(0, *(b for _, b in points))
    span = max(1, high - low)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(day: date) -> float:
        return round(MARGIN_LEFT + plot_w * (day - first).days / days, 1)

    def y(balance: int) -> float:
        return round(MARGIN_TOP + plot_h * (high - balance) / span, 1)

    coords: list[str] = []
    previous: float | None = None
    for day, balance in points:
        if previous is not None:
            coords.append(f"{x(day)},{previous}")  # a step: the balance holds until the next day with entries
        previous = y(balance)
        coords.append(f"{x(day)},{previous}")
    y_ticks = tuple(Tick(MARGIN_LEFT - 6, y(v), str(v), "end") for v in sorted({low, 0, high}))
    middle = date.fromordinal(first.toordinal() + days // 2)
    anchors = {first: "start", middle: "middle", last: "end"}  # edge labels stay inside the picture
    x_ticks = tuple(Tick(x(d), HEIGHT - 8, d.isoformat(), anchors[d]) for d in sorted({first, middle, last}))
    return Chart(WIDTH, HEIGHT, " ".join(coords), y(0), x_ticks, y_ticks, first, last, points[-1][1])
