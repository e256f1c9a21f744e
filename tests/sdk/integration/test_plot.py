"""`tally metrics plot`: curves in the terminal and as a PNG, checked by reading the image's pixels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from tally import Tally, _plotting
from tally._sync._resources import Metrics
from tally.cli import cli
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture
def curves(live_server: RunningServer, sync_client: Tally, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three experiments, each with a decaying `loss` for split=train and a flat one for split=val."""
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    ids = []
    for index, rate in enumerate((0.05, 0.1, 0.3)):
        experiment = sync_client.experiments.create(unique(f"plot-run{index}"))
        events: list[dict[str, Any]] = []
        for step in range(300):
            events.append(
                {
                    "name": "loss",
                    "value": 2.0 / (1 + rate * step),
                    "step": step,
                    "metadata": {"split": "train"},
                }
            )
            events.append({"name": "loss", "value": 5.0, "step": step, "metadata": {"split": "val"}})
        sync_client.metrics.ingest(experiment.id, events)
        ids.append(experiment.id)
    return ids


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


def _pixels_of(image: np.ndarray, colour: str, tolerance: float = 0.02) -> int:
    return int((np.abs(image[:, :, :3] - _hex_rgb(colour)).max(axis=2) < tolerance).sum())


def test_png_has_one_colour_per_series(curves: list[str], tmp_path: Path) -> None:
    target = tmp_path / "curves.png"
    args = [
        "metrics",
        "plot",
        *curves,
        "--name",
        "loss",
        "--metadata",
        "split=train",
        "--output",
        str(target),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(target)
    assert image.shape[:2] == (480, 800)
    non_white = (image[:, :, :3] < 0.95).any(axis=2).mean()
    assert 0.02 < non_white < 0.5, non_white  # curves, axes and text; not blank, not a filled block
    drawn = [_pixels_of(image, colour) for colour in _plotting.PALETTE[:3]]
    assert all(count > 300 for count in drawn), drawn  # each series has its own colour, drawn as a line
    assert _pixels_of(image, _plotting.PALETTE[3]) < 50  # and no fourth series


def test_png_log_scale_and_smoothing_change_the_picture(curves: list[str], tmp_path: Path) -> None:
    base = ["metrics", "plot", *curves[:1], "--name", "loss", "--metadata", "split=train", "--output"]
    plain, logged = tmp_path / "plain.png", tmp_path / "log.png"
    assert CliRunner().invoke(cli, [*base, str(plain)]).exit_code == 0
    assert CliRunner().invoke(cli, [*base, str(logged), "--log-y", "--smooth", "10"]).exit_code == 0
    assert not np.array_equal(imread(plain), imread(logged))


def test_terminal_plot_has_axes_and_legend(curves: list[str]) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "metrics",
            "plot",
            *curves,
            "--name",
            "loss",
            "--metadata",
            "split=train",
            "--width",
            "60",
            "--height",
            "15",
        ],
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "(step)" in text
    assert "(loss)" in text
    assert re.search(r"^\s*2(\.0+)? \|", text, re.MULTILINE), text  # a y tick at the top value
    assert "Legend:" in text
    with Tally() as client:
        for experiment_id in curves:
            assert client.experiments.get(experiment_id).name in text  # one legend entry per series
    assert "\x1b[" not in text  # piped: no colour codes
    canvas = "".join(line.partition(" | ")[2] for line in text.splitlines() if " | " in line)
    drawn = sum(0x2801 <= ord(ch) <= 0x28FF or ch in "ox+" for ch in canvas)
    assert drawn > 60, text  # the curves themselves: braille dots, and each series' own marker
    for marker in "ox+":
        assert marker in canvas, marker


def test_terminal_plot_in_colour_and_log_scale(curves: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = CliRunner().invoke(
        cli, ["metrics", "plot", curves[0], "--name", "loss", "--log-y", "--width", "50"]
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[38;2;31;119;180m" in result.output  # the first series in its colour (#1f77b4)
    assert "log10(loss)" in result.output


def test_plot_of_a_missing_metric_says_so(curves: list[str]) -> None:
    result = CliRunner().invoke(cli, ["metrics", "plot", curves[0], "--name", "nope"])
    assert result.exit_code == 1
    assert "no points of 'nope'" in result.output


def test_smoothing_is_a_trailing_mean() -> None:
    curve = _plotting.Curve("a", (0, 1, 2, 3), (4.0, 2.0, 0.0, 2.0))
    assert _plotting.smooth(curve, 2).values == (4.0, 3.0, 1.0, 1.0)
    assert _plotting.smooth(curve, 1) is curve
    assert _plotting.log_scale(_plotting.Curve("b", (0, 1), (100.0, 0.0))).values == (2.0,)
    with pytest.raises(ValueError, match="1 or more"):
        _plotting.smooth(curve, 0)


def test_plot_reads_the_downsampled_series_and_shows_a_spike(
    live_server: RunningServer, sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 20,000-point curve is drawn from one series request of at most 2 x width buckets (never by reading
    every point: listing and compare are refused here), and its one-step spike sets the top of the y axis."""
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    experiment = sync_client.experiments.create(unique("plot-spike"))
    events = [{"name": "loss", "value": 900.0 if s == 12_345 else 1.0, "step": s} for s in range(20_000)]
    for start in range(0, 20_000, 10_000):
        sync_client.metrics.ingest(experiment.id, events[start : start + 10_000])
    asked: list[int] = []
    original = Metrics.series

    def series(self: Metrics, *args: Any, **kwargs: Any) -> Any:
        found = original(self, *args, **kwargs)
        asked.append(len(found.buckets))
        return found

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the plot read the points themselves")

    monkeypatch.setattr(Metrics, "series", series)
    monkeypatch.setattr(Metrics, "list", refused)
    monkeypatch.setattr(Metrics, "compare", refused)
    result = CliRunner().invoke(cli, ["metrics", "plot", experiment.id, "--name", "loss", "--width", "60"])
    assert result.exit_code == 0, result.output
    assert len(asked) == 1
    assert 0 < asked[0] <= 120
    assert re.search(r"^\s*900(\.0+)? \|", result.output, re.MULTILINE), result.output  # the band's top
