"""NVIDIA GPUs' utilisation, memory, temperature and power, read through NVML (`nvidia-ml-py`, module `pynvml`).

The module is handed in (`NvmlReader(pynvml)`), never imported here, so tests drive the reader with a fake NVML
module of a few functions (tests/sdk/integration/test_run_system.py) on machines without a GPU. `open_nvml()`
imports the real one: without `nvidia-ml-py`, or without an NVIDIA driver (`nvmlInit` fails), there is no GPU
part, and nothing is said beyond the debug log (most machines have no GPU; that is no fault).

Names, per GPU index `i` (NVML's order): `system/gpu/<i>/utilization_percent`, `system/gpu/<i>/memory_used`
(bytes), `system/gpu/<i>/memory_percent`, `system/gpu/<i>/temperature_c`, `system/gpu/<i>/power_w`. A reading a
GPU does not support (NVML raises for it, e.g. power on some boards) is left out of that GPU's values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tally._logging import logger

__all__ = ["NvmlReader", "open_nvml"]


class NvmlReader:
    """Reads every GPU NVML sees; `nvml` is the `pynvml` module (or a stand-in with the same functions)."""

    def __init__(self, nvml: ModuleType | Any) -> None:
        self.nvml = nvml
        nvml.nvmlInit()
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(nvml.nvmlDeviceGetCount())]

    def read(self) -> dict[str, float]:
        nvml = self.nvml
        values: dict[str, float] = {}
        readings: dict[str, Callable[[Any], float]] = {
            "utilization_percent": lambda h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
            "memory_used": lambda h: float(nvml.nvmlDeviceGetMemoryInfo(h).used),
            "memory_percent": lambda h: _percent(nvml.nvmlDeviceGetMemoryInfo(h)),
            "temperature_c": lambda h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
            "power_w": lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,  # milliwatts
        }
        for index, handle in enumerate(self.handles):
            prefix = f"system/gpu/{index}/"
            for name, read in readings.items():
                try:
                    values[prefix + name] = read(handle)
                except Exception as error:  # not supported by this GPU (NVMLError_NotSupported), or no total
                    logger.debug("tally: GPU %d has no %s: %s", index, name, error)
        return values

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception as error:  # pragma: no cover - a driver gone away: nothing to release
            logger.debug("tally: nvmlShutdown failed: %s", error)


def _percent(memory: Any) -> float:
    return 100.0 * float(memory.used) / float(memory.total)


def _driver_present() -> bool:
    """Whether an NVIDIA driver may be here, asked cheaply: on Linux its kernel module's `/proc/driver/nvidia`;
    elsewhere, Windows only (macOS has none). Importing `pynvml` costs about 0.1 s, mostly holding the GIL the
    training loop needs, and `nvmlInit` then fails on every machine without a driver."""
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version")
    return sys.platform == "win32"


def open_nvml() -> NvmlReader | None:
    """A reader over `pynvml` with at least one GPU, or None (no driver, no `nvidia-ml-py`, no GPU). A `pynvml`
    already imported (by the caller, or a test's stand-in) is used whatever the driver check says."""
    from tally._lazy import load

    if "pynvml" not in sys.modules and not _driver_present():
        return None
    try:
        nvml = load("pynvml")
    except ImportError:
        return None
    try:
        reader = NvmlReader(nvml)
    except Exception as error:  # no NVIDIA driver on this machine: NVMLError_LibraryNotFound and kin
        logger.debug("tally: no GPU metrics: %s", error)
        return None
    if not reader.handles:
        reader.close()
        return None
    return reader
