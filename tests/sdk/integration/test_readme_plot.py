"""The README's plot (docs/images/curves.png) is what the CLI makes today: regenerate it with `make docs-images`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


def test_the_committed_picture_is_what_the_cli_makes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("readme_plot", ROOT / "scripts" / "readme_plot.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.make(tmp_path / "curves.png")
    committed = imread(ROOT / "docs" / "images" / "curves.png")
    made = imread(fresh)
    assert made.shape == committed.shape, "docs/images/curves.png is stale: run `make docs-images`"
    assert np.array_equal(made, committed), "docs/images/curves.png is stale: run `make docs-images`"
    assert "docs/images/curves.png" in (ROOT / "README.md").read_text()
