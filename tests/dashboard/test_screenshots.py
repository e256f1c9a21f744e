"""The README's pictures of the dashboard: made by this suite in the real browser, and kept current.

Every run takes the screenshots (so a page that cannot be drawn fails here) and checks them: a PNG of the
expected size that is not blank. `make docs-images` (TALLY_DOCS_IMAGES=1) also writes them to docs/images with a
manifest of what they were made from: the dashboard's files and the seeded runs. The currency test fails when
those inputs change and the pictures were not made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from tally_server.dashboard.pages import STATIC

from .conftest import DashboardServer, Tab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
MANIFEST = IMAGES / "dashboard.json"
SHOTS = {
    "dashboard-runs.png": "/?q=resnet&cols=val/loss:min,train/loss:last&meta=lr,optimizer&order=metric:val/loss:min",
    "dashboard-run.png": "run:1",
    "dashboard-compare.png": "compare",
}


def inputs_fingerprint() -> str:
    """A hash of everything the pictures show: the dashboard's files, the seeded runs and this file."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    files = [*sorted(Path(str(STATIC)).iterdir()), here / "seed.py", Path(__file__).resolve()]
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_the_readme_screenshots_are_made_in_the_browser(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    made: dict[str, bytes] = {}
    for name, target in SHOTS.items():
        if target.startswith("run:"):
            path = f"/runs/{dashboard.seeded.sweep[int(target[4:])]}"
        elif target == "compare":
            path = "/compare?ids=" + ",".join(dashboard.seeded.sweep)
        else:
            path = target
        tab.open(path)
        made[name] = tab.page.screenshot(full_page=True)
        width, height = _png_size(made[name])
        assert width == 1280
        assert height >= 600
        assert len(made[name]) > 20_000  # not a blank page
    assert tab.errors == []
    if os.environ.get("TALLY_DOCS_IMAGES") == "1":
        for name, data in made.items():
            (IMAGES / name).write_bytes(data)
        MANIFEST.write_text(
            json.dumps({"inputs": inputs_fingerprint(), "images": sorted(made)}, indent=2) + "\n"
        )


def test_the_readme_screenshots_are_current() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["inputs"] == inputs_fingerprint(), (
        "the dashboard changed since docs/images/dashboard-*.png were made: run `make docs-images`"
    )
    for name in manifest["images"]:
        assert (IMAGES / name).stat().st_size > 20_000, name
    readme = (ROOT / "README.md").read_text()
    for name in SHOTS:
        assert f"docs/images/{name}" in readme, f"the README does not show {name}"
