"""The pure parts of a run's system metrics and capture (issue 21): NVML is not imported where no NVIDIA driver
can be, and the packages list is read from the distributions' directory names, bounded. The live side is
tests/sdk/integration/test_run_system.py and test_run_capture.py."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from tally.run import _capture, _gpu
from tally.run._system import SystemSampler


def test_without_a_driver_nvml_is_not_even_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.setattr(_gpu, "_driver_present", lambda: False)
    assert _gpu.open_nvml() is None
    assert "pynvml" not in sys.modules  # about 0.1 s of import, mostly holding the GIL, spared


def test_packages_come_from_dist_info_names_imported_first_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(300):
        (tmp_path / f"pkg_{index:03d}-1.{index}.dist-info").mkdir()
    (tmp_path / "PyYAML-6.0.3.dist-info").mkdir()
    (tmp_path / "PyYAML-6.0.3.dist-info" / "top_level.txt").write_text("_yaml\nyaml\n")
    (tmp_path / "old_egg-0.9-py3.11.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.setitem(sys.modules, "yaml", sys)  # "imported"
    _capture._installed.cache_clear()
    try:
        versions, omitted = _capture.packages()
    finally:
        _capture._installed.cache_clear()
    assert next(iter(versions)) == "pyyaml"  # imported first, under its distribution's normalised name
    assert versions["pyyaml"] == "6.0.3"
    assert versions["old-egg"] == "0.9"
    assert len(json.dumps(versions, separators=(",", ":"))) <= _capture.PACKAGES_MAX_BYTES
    assert omitted == 302 - len(versions)
    assert omitted > 0


def test_the_readers_are_opened_by_the_caller_not_beside_the_training_loop() -> None:
    """Opening the readers imports psutil (30-100 ms, most of it holding the GIL): done on the sampler's thread,
    it ran beside the loop's first steps, whose `log()` calls waited for the GIL. `client.run()` opens them."""
    opened_on: list[threading.Thread] = []

    def open_readers() -> list[object]:
        opened_on.append(threading.current_thread())
        return []

    sampler = SystemSampler(10.0, lambda values, step: True, open_readers=open_readers)
    sampler.start()
    sampler.stop()
    assert opened_on == [threading.current_thread()]
