"""A run's system metrics (issue 21, "System metrics"): a sampler thread logs `system/...` every
`system_metrics_interval` seconds (0: off) through psutil, and per NVIDIA GPU through NVML; it never moves the
caller's step counter, stops at close, and without psutil one warning says what to install. The GPU part runs
here against a fake NVML module put where `import pynvml` finds it (this machine has no GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import types
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tally import ConfigurationError, Tally
from tally.run import Run
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

DEADLINE = 20.0
"""Seconds to wait for a sample to be spooled: generous, never a timing claim."""
PSUTIL_NAMES = {
    "system/cpu_percent",
    "system/process_cpu_percent",
    "system/memory_rss",
    "system/memory_percent",
    "system/disk_read_bytes_per_s",
    "system/disk_write_bytes_per_s",
    "system/net_recv_bytes_per_s",
    "system/net_sent_bytes_per_s",
}


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "no system metrics sample in time"
        time.sleep(0.05)


def points(client: Tally, experiment_id: str | None) -> dict[str, list[tuple[int | None, float]]]:
    found: dict[str, list[tuple[int | None, float]]] = defaultdict(list)
    for point in client.metrics.list(experiment_id or "", page_size=1000):
        found[point.name].append((point.step, point.value))
    return found


def sampler_alive(run: Run) -> bool:
    return run._sampler is not None and run._sampler._thread.is_alive()


def test_samples_are_logged_on_their_own_steps_and_stop_at_close(sync_client: Tally) -> None:
    started = int(time.time())
    with sync_client.run(unique("system"), system_metrics_interval=0.2) as run:
        for _ in range(3):
            run.log({"loss": 1.0})
        wait_for(lambda: run.status().logged >= 3 + 2 * len(PSUTIL_NAMES))
        assert run.step == 3  # the samples leave the caller's counter alone
        assert sampler_alive(run)
    assert not sampler_alive(run)
    stored = points(sync_client, run.id)
    assert set(stored) >= PSUTIL_NAMES
    assert sorted(stored["loss"]) == [(0, 1.0), (1, 1.0), (2, 1.0)]
    steps = [step for step, _ in stored["system/memory_rss"]]
    assert len(steps) >= 2
    assert steps == sorted(set(steps))  # one sample a step, increasing
    assert all(step is not None and step >= started for step in steps)  # stepped by the clock: Unix seconds
    for name in ("system/cpu_percent", "system/memory_percent"):
        assert all(0.0 <= value <= 100.0 for _, value in stored[name])
    assert all(value > 1_000_000 for _, value in stored["system/memory_rss"])

    # A resumed run's steps go on after the caller's, not after the samples' (which are clock seconds).
    with sync_client.run(experiment_id=run.id, system_metrics_interval=0) as resumed:
        assert resumed.step == 3


def test_interval_zero_turns_the_sampler_off_and_bad_intervals_are_refused(
    sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_SYSTEM_METRICS_INTERVAL", "0.2")  # the argument wins over the variable
    with sync_client.run(unique("nosystem"), system_metrics_interval=0) as run:
        assert run._sampler is None
        run.log({"loss": 1.0})
    assert set(points(sync_client, run.id)) == {"loss"}
    for bad in (-1, float("nan"), "10", True):
        with pytest.raises(ValueError, match="system_metrics_interval is"):
            sync_client.run(unique("bad"), system_metrics_interval=bad)  # type: ignore[arg-type]
    # Without the argument, the variable decides (tests/conftest.py sets it to 0 for the whole suite).
    with sync_client.run(unique("fromenv")) as run:
        wait_for(lambda: run.status().logged >= len(PSUTIL_NAMES))
    assert set(points(sync_client, run.id)) >= PSUTIL_NAMES
    monkeypatch.setenv("TALLY_SYSTEM_METRICS_INTERVAL", "often")
    with pytest.raises(ConfigurationError, match="TALLY_SYSTEM_METRICS_INTERVAL='often' is not a number"):
        sync_client.run(unique("badenv"))


def test_without_psutil_one_warning_says_what_to_install_and_the_run_goes_on(
    live_server: RunningServer,
) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["psutil"] = None  # as if the [system] extra were not installed: `import psutil` fails
        from tally import Tally

        with Tally() as client:
            for index in range(2):
                with client.run(f"{sys.argv[1]}-{index}", system_metrics_interval=0.1, capture=False) as run:
                    run.log({"loss": 1.0})
                print(run.status().stored, run.id)
        """
    )
    env = {**os.environ, "TALLY_API_KEY": live_server.api_key, "TALLY_BASE_URL": live_server.url}
    name = unique("nopsutil")
    done = subprocess.run(
        [sys.executable, "-c", script, name], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "psutil" in line]
    assert lines == [
        "tally: the run's system metrics sampler needs psutil, which is not installed: "
        "pip install 'tally-metrics[system]' (or: uv add 'tally-metrics[system]'); the run goes on without them "
        "(system_metrics_interval=0: no sampler, no line)"
    ]
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["1", "1"]


class FakeNvml(types.ModuleType):
    """The few functions of `pynvml` the sampler calls, for two GPUs; the first cannot report its power, as some
    boards cannot (NVML raises NotSupported)."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shut_down = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return types.SimpleNamespace(gpu=40 + handle, memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return types.SimpleNamespace(used=(handle + 1) * 2 * 1024**3, total=16 * 1024**3, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 60 + handle

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 0:
            raise self.NVMLError("Not Supported")
        return 150_500  # milliwatts


def test_gpus_are_sampled_through_nvml(sync_client: Tally, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with sync_client.run(unique("gpu"), system_metrics_interval=0.2) as run:
        wait_for(lambda: run.status().logged >= len(PSUTIL_NAMES) + 9)
    assert nvml.shut_down
    latest = {name: values[-1][1] for name, values in points(sync_client, run.id).items()}
    gpu = {name: value for name, value in latest.items() if name.startswith("system/gpu/")}
    assert gpu == {
        "system/gpu/0/utilization_percent": 40.0,
        "system/gpu/0/memory_used": 2.0 * 1024**3,
        "system/gpu/0/memory_percent": 12.5,
        "system/gpu/0/temperature_c": 60.0,
        "system/gpu/1/utilization_percent": 41.0,
        "system/gpu/1/memory_used": 4.0 * 1024**3,
        "system/gpu/1/memory_percent": 25.0,
        "system/gpu/1/temperature_c": 61.0,
        "system/gpu/1/power_w": 150.5,
    }
    assert set(latest) >= PSUTIL_NAMES
