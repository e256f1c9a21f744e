"""A run's system metrics: a daemon thread that logs what the machine and the process are doing every
`system_metrics_interval` seconds (`client.run(...)`'s argument; default 10, 0 turns it off).

Names (all under `system/`, `SYSTEM_PREFIX`):

    system/cpu_percent            the machine's CPU in use, percent of all its cores
    system/process_cpu_percent    this process's CPU, percent of one core (over 100 with several cores busy)
    system/memory_rss             this process's resident memory, bytes
    system/memory_percent         the machine's memory in use, percent
    system/disk_read_bytes_per_s  the machine's disk reads and writes since the last sample, bytes a second
    system/disk_write_bytes_per_s
    system/net_recv_bytes_per_s   the machine's network traffic since the last sample, bytes a second
    system/net_sent_bytes_per_s
    system/gpu/<i>/...            per NVIDIA GPU, with `nvidia-ml-py`: see `tally.run._gpu`

They come from psutil (the `[system]` extra: `pip install 'tally-metrics[system]'`). Without psutil the run goes
on without them, and one warning per process says what to install.

Steps: a system sample never touches the run's step counter (`run.step`): its step is the wall-clock second it
was taken (Unix time), one more than the previous sample's when two fall in one second. That axis needs no state,
so it runs on across a resumed run, several processes of one experiment and ranks, and it never collides with
the steps of a later sample. A resumed run's next step is read from the experiment's metrics with system metrics
left out (`tally.run._run._first_step`), so these large steps never move the caller's counter. Every sample is
also stamped with its time, like any `log()`.

The machine's CPU percentage is computed here from `psutil.cpu_times()`, not with `psutil.cpu_percent()`, whose
state is global to the process and would disturb the caller's own calls of it.

Cost: a sample is a few system calls and one spooled record (about 0.6 ms of CPU); `samples` and `cpu_seconds`
count them, and
`scripts/bench_system.py` reports the share of one core at the default interval (the target: at most 1%).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from tally._errors import ConfigurationError
from tally._extras import MissingExtraError
from tally._logging import logger

__all__ = [
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
    "SYSTEM_PREFIX",
    "PsutilReader",
    "SystemSampler",
    "check_interval",
    "is_system_record",
    "resolve_interval",
]

SYSTEM_PREFIX = "system/"
DEFAULT_INTERVAL = 10.0
INTERVAL_ENV = "TALLY_SYSTEM_METRICS_INTERVAL"
"""The interval when `client.run(...)` is given none: e.g. 0 to turn the sampler off for every job of a machine."""
STOP_TIMEOUT = 1.0
"""Seconds `SystemSampler.stop()` waits for a sample being read: the run's close never waits longer."""
PSUTIL_MISSING = (
    "tally: {error}; the run goes on without them (system_metrics_interval=0: no sampler, no line)"
)

_warned_missing = threading.Event()


class Reader(Protocol):
    def read(self) -> dict[str, float]: ...


def check_interval(value: object) -> float:
    """`system_metrics_interval` as seconds; raises ValueError naming the argument for what is not a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(
            f"system_metrics_interval is {value!r}: pass seconds between samples (a number > 0, default 10), "
            "or 0 to turn system metrics off"
        )
    return float(value)


def resolve_interval(value: object) -> float:
    """`system_metrics_interval` when given, else `TALLY_SYSTEM_METRICS_INTERVAL`, else 10 s; raises
    ValueError (the argument) or ConfigurationError (the variable) naming the fix."""
    if value is not None:
        return check_interval(value)
    configured = os.environ.get(INTERVAL_ENV, "").strip()
    if not configured:
        return DEFAULT_INTERVAL
    try:
        return check_interval(float(configured))
    except ValueError:
        raise ConfigurationError(
            f"{INTERVAL_ENV}={configured!r} is not a number of seconds >= 0; set it to e.g. 10, or 0 to turn "
            "system metrics off"
        ) from None


def is_system_record(values: object) -> bool:
    """Whether a spooled `log()` record's values are a system sample (all named `system/...`)."""
    return (
        isinstance(values, dict)
        and bool(values)
        and all(isinstance(name, str) and name.startswith(SYSTEM_PREFIX) for name in values)
    )


class PsutilReader:
    """The machine's and the process's CPU, memory, disk and network through `psutil` (handed in)."""

    def __init__(self, psutil: ModuleType | Any) -> None:
        self.psutil = psutil
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only sets the baseline
        self._cpu = self._cpu_times()
        self._when = time.monotonic()
        self._disk = self._counters(psutil.disk_io_counters, "read_bytes", "write_bytes")
        self._net = self._counters(psutil.net_io_counters, "bytes_recv", "bytes_sent")

    def _cpu_times(self) -> tuple[float, float]:
        """(busy, total) seconds of the machine's CPUs, as psutil's own `cpu_percent` counts them."""
        times = self.psutil.cpu_times()
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return total - idle, total

    @staticmethod
    def _counters(read: Callable[[], Any], *fields: str) -> tuple[float, ...] | None:
        try:
            counters = read()
        except Exception:  # no such counters here (some containers): the rate is left out
            return None
        if counters is None:
            return None
        return tuple(float(getattr(counters, field)) for field in fields)

    def read(self) -> dict[str, float]:
        psutil = self.psutil
        values: dict[str, float] = {}
        busy, total = self._cpu_times()
        if total > self._cpu[1]:
            values["system/cpu_percent"] = max(
                0.0, min(100.0, 100.0 * (busy - self._cpu[0]) / (total - self._cpu[1]))
            )
        self._cpu = (busy, total)
        values["system/process_cpu_percent"] = float(self.process.cpu_percent(None))
        values["system/memory_rss"] = float(self.process.memory_info().rss)
        values["system/memory_percent"] = float(psutil.virtual_memory().percent)
        now = time.monotonic()
        elapsed = now - self._when
        self._when = now
        for previous, name, read, fields, names in (
            (
                self._disk,
                "_disk",
                psutil.disk_io_counters,
                ("read_bytes", "write_bytes"),
                ("disk_read", "disk_write"),
            ),
            (
                self._net,
                "_net",
                psutil.net_io_counters,
                ("bytes_recv", "bytes_sent"),
                ("net_recv", "net_sent"),
            ),
        ):
            current = self._counters(read, *fields)
            setattr(self, name, current)
            if current is None or previous is None or elapsed <= 0:
                continue
            for label, before, after in zip(names, previous, current, strict=True):
                values[f"system/{label}_bytes_per_s"] = max(0.0, (after - before) / elapsed)
        return values


def _open_readers(gpu: bool = True) -> list[Any]:
    """The readers this machine has: psutil's (or the warning, once per process), and NVML's when there is a GPU."""
    from tally._lazy import load

    readers: list[Any] = []
    try:
        readers.append(PsutilReader(load("psutil")))
    except ImportError:
        if not _warned_missing.is_set():
            _warned_missing.set()
            logger.warning(PSUTIL_MISSING.format(error=MissingExtraError("psutil", "system")))
    if gpu:
        from ._gpu import open_nvml

        nvml = open_nvml()
        if nvml is not None:
            readers.append(nvml)
    return readers


class SystemSampler:
    """Logs one sample of every reader each `interval` seconds through `emit(values, step)` (the run's spool,
    beside the caller's `log()`; it returns False once the run is closed, which ends the thread). The first sample
    is taken one interval after the start, so that every rate has a window. A daemon thread: it never holds up
    the process's exit, and `stop()` waits for it at most `STOP_TIMEOUT` seconds."""

    def __init__(
        self,
        interval: float,
        emit: Callable[[dict[str, float], int], bool],
        *,
        open_readers: Callable[[], list[Any]] = _open_readers,
    ) -> None:
        self.interval = interval
        self._emit = emit
        self._open_readers = open_readers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="tally-system-metrics", daemon=True)
        self._last_step = -1
        self._readers: list[Any] = []
        self.samples = 0
        self.cpu_seconds = 0.0
        """CPU time this thread spent taking and spooling its samples (`time.thread_time`), opening excluded."""

    def start(self) -> None:
        """Open the readers here, on the caller's thread (`client.run()`), then start sampling. Importing psutil
        takes 30-100 ms of CPU, most of it holding the GIL: on the sampler's thread it ran beside the training
        loop's first steps, whose `log()` calls then waited for the GIL in turns of up to 5 ms."""
        try:
            self._readers = self._open_readers()
        except Exception as error:  # system metrics must never fail a run
            logger.debug("tally: system metrics are off: %s", error)
            return
        self._thread.start()

    def _work(self) -> None:
        readers = self._readers
        try:
            while readers and not self._stop.wait(self.interval):
                began = time.thread_time()
                values: dict[str, float] = {}
                for reader in readers:
                    try:
                        values.update(reader.read())
                    except Exception as error:
                        logger.debug("tally: a system metrics reading failed: %s", error)
                step = max(int(time.time()), self._last_step + 1)
                if values:
                    try:
                        if not self._emit(values, step):
                            return
                    except Exception as error:  # a full spool that cannot make room, say: skip this sample
                        logger.debug("tally: a system metrics sample was not spooled: %s", error)
                self._last_step = step
                self.samples += 1
                self.cpu_seconds += time.thread_time() - began
        finally:
            for reader in readers:
                close = getattr(reader, "close", None)
                if close is not None:
                    close()

    def stop(self) -> None:
        """Stop sampling; wait at most `STOP_TIMEOUT` seconds for a sample being taken."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT)
