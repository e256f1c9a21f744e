"""Metric curves: from a metric series (or a compare result) to lines in the terminal (plotille) or an image
(matplotlib).

A curve from `getMetricSeries` (`series_curve`) is its buckets' mean line with the min/max band of each bucket,
so a spike that the mean hides still shows as the band's top; the band is drawn only where a bucket holds more
than one value.

The data steps are pure functions (`curves`, `smooth`, `log_scale`), tested without drawing. The renderers
import their library only when called: plotille comes with the `[cli]` extra, matplotlib with `[plot]`.
Smoothing is a trailing moving average over N points, as TensorBoard-like tools offer; it is a few lines, so
it is written here rather than pulling numpy into the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tally._extras import require
from tally._types import CompareResult, MetricSeries

__all__ = ["Curve", "curves", "log_scale", "render_png", "render_terminal", "series_curve", "smooth"]

# matplotlib's default colour cycle ("tab10"), so that a test can find each series' colour in the image.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class Curve:
    """One series to draw: its label and its points, by step."""

    label: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    low: tuple[float, ...] | None = None
    """The band's bottom (each bucket's min), when the curve has one."""
    high: tuple[float, ...] | None = None
    """The band's top (each bucket's max)."""

    @property
    def has_band(self) -> bool:
        return self.low is not None and self.high is not None and self.low != self.high


def series_curve(series: MetricSeries, label: str) -> Curve:
    """A series' buckets as a curve: the mean at the middle step of each bucket, with the min/max band."""
    buckets = series.buckets
    return Curve(
        label,
        tuple((b.first_step + b.last_step) // 2 for b in buckets),
        tuple(float(b.mean) for b in buckets),
        tuple(float(b.min) for b in buckets),
        tuple(float(b.max) for b in buckets),
    )


def curves(result: CompareResult, labels: Sequence[str]) -> list[Curve]:
    """One curve per compared series, keeping only the steps where that series has a value."""
    if len(labels) != len(result.series):
        raise ValueError(f"{len(labels)} labels for {len(result.series)} series")
    found: list[Curve] = []
    for index, label in enumerate(labels):
        points = [(row.step, row.values[index]) for row in result.rows if row.values[index] is not None]
        found.append(
            Curve(
                label, tuple(step for step, _ in points), tuple(float(v) for _, v in points if v is not None)
            )
        )
    return found


def smooth(curve: Curve, window: int) -> Curve:
    """A trailing moving average over `window` points (1 leaves the curve as it is)."""
    if window < 1:
        raise ValueError(f"the smoothing window must be 1 or more, not {window}")
    if window == 1:
        return curve
    averaged: list[float] = []
    total = 0.0
    for index, value in enumerate(curve.values):
        total += value
        if index >= window:
            total -= curve.values[index - window]
        averaged.append(total / min(index + 1, window))
    return Curve(curve.label, curve.steps, tuple(averaged), curve.low, curve.high)  # the band stays exact


def log_scale(curve: Curve) -> Curve:
    """The curve as log10 of its values, without the points at or below zero (which have no logarithm); a band's
    bottom at or below zero is drawn at the point itself."""
    kept = [index for index, value in enumerate(curve.values) if value > 0]
    values = tuple(math.log10(curve.values[i]) for i in kept)

    def band(edge: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if edge is None:
            return None
        return tuple(math.log10(edge[i]) if edge[i] > 0 else values[n] for n, i in enumerate(kept))

    return Curve(curve.label, tuple(curve.steps[i] for i in kept), values, band(curve.low), band(curve.high))


def _tick(value: float, chars: int, delta: float, left: bool = False) -> str:
    del delta
    text = f"{value:.4g}"
    return f"{text:<{chars}}" if left else f"{text:>{chars}}"


def render_terminal(
    lines: Sequence[Curve], *, metric: str, log_y: bool, width: int = 72, height: int = 20, color: bool = True
) -> str:
    """The curves as text: braille lines on axes with ticks, and a legend below. No ANSI colours when
    `color` is False (piped output); each series then also gets its own point marker."""
    plotille = require("plotille", "cli", "`tally metrics plot` in the terminal")
    figure = plotille.Figure()
    figure.width = width
    figure.height = height
    figure.with_colors = color
    figure.color_mode = "rgb"
    figure.x_label = "step"
    figure.y_label = f"log10({metric})" if log_y else metric
    figure.register_label_formatter(float, _tick)
    figure.register_label_formatter(int, _tick)
    figure.origin = False
    drawn = [curve for curve in lines if curve.steps]
    if drawn:
        low = min(min(curve.steps) for curve in drawn)
        high = max(max(curve.steps) for curve in drawn)
        figure.set_x_limits(min_=low, max_=high if high > low else low + 1)
        bottom = min(min(curve.low if curve.has_band and curve.low else curve.values) for curve in drawn)
        top = max(max(curve.high if curve.has_band and curve.high else curve.values) for curve in drawn)
        figure.set_y_limits(min_=bottom, max_=top if top > bottom else bottom + 1)
    markers = "ox+*#@%&$="
    for index, curve in enumerate(lines):
        if not curve.steps:
            continue
        colour = tuple(int(PALETTE[index % len(PALETTE)][i : i + 2], 16) for i in (1, 3, 5))
        if curve.has_band and curve.low is not None and curve.high is not None:  # the band's edges, dimmed
            dim = tuple(int(c + (255 - c) * 0.55) for c in colour)
            for edge in (curve.low, curve.high):
                figure.plot(
                    list(curve.steps), list(edge), lc=dim if color else None, marker=None if color else "."
                )
        figure.plot(
            list(curve.steps),
            list(curve.values),
            label=curve.label if color else f"{curve.label} ({markers[index % len(markers)]})",
            lc=colour if color else None,
            marker=None if color else markers[index % len(markers)],
        )
    text: str = figure.show(legend=True)
    return text


def render_png(
    lines: Sequence[Curve], path: Path, *, metric: str, log_y: bool, title: str | None = None
) -> Path:
    """The curves as a PNG image (800x480 pixels), one colour per series, with a legend. The file carries no
    timestamp or version, so the same data always makes the same bytes with the same matplotlib."""
    require("matplotlib", "plot", "`tally metrics plot --output`")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.8), dpi=100)
    axes = figure.add_subplot()
    for index, curve in enumerate(lines):
        if curve.has_band and curve.low is not None and curve.high is not None:
            axes.fill_between(
                curve.steps,
                curve.low,
                curve.high,
                color=PALETTE[index % len(PALETTE)],
                alpha=0.2,
                linewidth=0,
            )
            # The band's edges too, thin and dimmed: a one-bucket spike is a band a pixel wide, which the fill
            # alone leaves nearly invisible.
            for edge in (curve.low, curve.high):
                axes.plot(curve.steps, edge, color=PALETTE[index % len(PALETTE)], linewidth=0.7, alpha=0.45)
        axes.plot(
            curve.steps, curve.values, label=curve.label, color=PALETTE[index % len(PALETTE)], linewidth=1.6
        )
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(title or metric)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
