"""The training loop's run: `log()` checks its input, frames one record and appends it to the spool; that is all
it does on the caller's thread. The background `Sender` does the network.

    with client.run("resnet50", metadata={"lr": 3e-4}) as run:
        for step in range(steps):
            run.log({"train/loss": loss, "lr": lr}, step=step)

Durability: "process" (default) writes each record to the kernel before `log()` returns, so it survives a killed
process; "power" also fsyncs the spool every second; "memory" keeps no spool (what is not sent when the process
dies is lost, and a warning says so at the start).

Hot-path rules (`log()` is budgeted at about 1 us a value, and no call may take 1 ms: `make bench`, pieces
`logger` and `logger_targets`, measure both). Keep them when adding to the run:
- `log()` checks its input, frames one record and appends it to the spool (`SpoolWriter.append`): on the common
  path no system call, no lock, no I/O, nothing that waits for the sender or the network, and nothing kept
  beyond the call but the spooled bytes.
- Work that takes milliseconds (creating or closing segment files, fsync, sampling the system, reading or hashing
  files, requests) runs on another thread: the spool's helper (`_spool._Helper`), the sender, or a thread of its
  own. That thread shares the GIL with the training loop, which waits up to the interpreter's switch interval
  (5 ms) each time it wants the GIL back: keep its pure-Python stretches short (push loops into C: msgspec,
  `bytes.join`), and do not make many GC-tracked objects that outlive a collection (a full collection walks the
  whole heap with the GIL held: use `gc=False` msgspec Structs or bytes, as the sender's `_log_fragment` does).
- New kinds of records go through the same `frame()` and `append()`, one record per call.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tally_api_types.limits import METRIC_EVENT_STEP_MAXIMUM, METRIC_EVENT_STEP_MINIMUM

from tally._errors import APIConnectionError, ConfigurationError, TallyError
from tally._limits import check_annotation, check_labels, check_metadata, check_step, check_tags, check_values
from tally._logging import logger

from ._artifact import ARTIFACTS_DIR, check_artifact_name, copy_for_upload
from ._capture import Capture, CaptureThread, check_reserved, resolve_capture
from ._config import RunConfig, flatten_config, with_config
from ._format import (
    KIND_ANNOTATION,
    KIND_ARTIFACT,
    KIND_CAPTURE,
    KIND_CONFIG,
    KIND_END,
    KIND_LOG,
    MAGIC,
    decode_records,
    frame,
)
from ._port import SenderPort
from ._resume import ResumeMode, check_resume, resolve_experiment
from ._sender import Drain, Sender
from ._sender_process import SenderProcess
from ._spool import (
    DEFAULT_CAP_BYTES,
    CapPolicy,
    FileStore,
    MemoryStore,
    SpoolLock,
    SpoolWriter,
    Store,
    iter_spools,
    make_private_dir,
    read_header,
    read_progress,
    remove_spool,
    spool_root,
)
from ._system import SystemSampler, is_system_record, resolve_interval

__all__ = [
    "FLUSH_TIMEOUT_ENV",
    "ClientClosedError",
    "Durability",
    "FlushTimeoutError",
    "Run",
    "RunRejectedError",
    "RunStatus",
    "start_run",
]

Durability = Literal["process", "power", "memory"]
FLUSH_TIMEOUT_ENV = "TALLY_FLUSH_TIMEOUT"
DEFAULT_FLUSH_TIMEOUT = 30.0
CAPTURE_JOIN_TIMEOUT = 5.0
"""Seconds `run.close()` waits for a capture still being collected (git is bounded by its own timeouts)."""
_MIN_STEP = METRIC_EVENT_STEP_MINIMUM
_MAX_STEP = METRIC_EVENT_STEP_MAXIMUM


class FlushTimeoutError(TallyError):
    """`run.flush(timeout)` ran out of time; what is not stored stays in the spool."""


class RunRejectedError(TallyError):
    """Events of the run were refused and will never be stored (409 `experiment_closed`, a 400 of validation, a
    `client_event_id` conflict, a resume that cannot be made): raised by `run.flush()` and `run.close()` for the
    refusals no earlier call raised. `rejected`: how many events; `reasons`: the first reasons; `dead_letter`:
    the file that keeps them; `pending`: events still unsent. The run goes on: what is valid is still sent."""

    def __init__(
        self,
        rejected: int,
        reasons: list[str],
        *,
        experiment_id: str | None,
        dead_letter: str | None,
        pending: int = 0,
        blocked: str | None = None,
    ) -> None:
        self.rejected = rejected
        self.reasons = reasons
        self.experiment_id = experiment_id
        self.dead_letter = dead_letter
        self.pending = pending
        self.blocked = blocked
        if blocked is not None:
            text = (
                f"run of {experiment_id or 'a new experiment'} cannot send: {blocked}; {pending:,} events stay "
                "in the spool"
            )
        else:
            text = (
                f"{rejected:,} {'event' if rejected == 1 else 'events'} of run {experiment_id} were refused and "
                f"will not be stored; first reason: {reasons[0] if reasons else 'unknown'}"
            )
        if dead_letter:
            text += f"; kept in {dead_letter}"
        super().__init__(text)


class ClientClosedError(TallyError):
    """`run.flush()` on a run whose client is closed: nothing more can be sent; what is not stored stays in the
    spool, for `tally sync`."""


@dataclass(frozen=True)
class RunStatus:
    """Where a run's events are: `logged` by this process, `stored` on the server (duplicates of earlier
    attempts included), `pending` (in the spool, not yet stored), `rejected` (refused by the server or unsendable:
    kept in the `dead_letter` file, see `tally.run._deadletter`), `dropped` at the spool's cap; `last_error`: the
    current outage (cleared once the server answers again), else the last refusal; and the spool's directory
    (None for durability="memory")."""

    experiment_id: str | None
    logged: int
    stored: int
    pending: int
    rejected: int
    dropped: int
    last_error: str | None
    spool: str | None
    offline: bool
    dead_letter: str | None = None
    inactive: str | None = None
    """Why this run logs nothing (a rank other than 0 of a distributed job: `tally.run._ranks`); None when it
    logs."""
    sender: Literal["thread", "process"] | None = None
    """Where the run's sender runs (`client.run(sender=...)`: "auto" picks one); None when nothing sends
    (offline, or inactive)."""


def _flush_timeout(value: float | None) -> float:
    if value is not None:
        return float(value)
    configured = os.environ.get(FLUSH_TIMEOUT_ENV)
    if not configured:
        return DEFAULT_FLUSH_TIMEOUT
    try:
        return float(configured)
    except ValueError:
        raise ConfigurationError(
            f"{FLUSH_TIMEOUT_ENV}={configured!r} is not a number of seconds; set it to e.g. 30"
        ) from None


class Run:
    """One experiment's logging session: `log()`, `annotate()`, `flush()`, `status()`, `close()`; a context
    manager that marks the experiment completed (failed if the block raised). Made by `client.run(...)`."""

    inactive: str | None = None
    """Why this run logs nothing (`tally.run._idle`); None for a run that logs."""

    def __init__(
        self,
        *,
        name: str | None,
        writer: SpoolWriter,
        drain: Drain,
        sender: Sender | SenderProcess | None,
        lock: SpoolLock | None,
        flush_timeout: float,
        offline: bool,
        port: SenderPort | None,
        first_step: int = 0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self._writer = writer
        self._artifact_dir: Path | None = None  # durability="memory": where log_artifact keeps its copies
        self._drain = drain
        self._sender = sender
        self._lock = lock
        self.flush_timeout = flush_timeout
        self.offline = offline
        self._port = port
        self._seq = 0
        self._logged = 0
        self._step = first_step
        self._last_step: int | None = None
        self._reported = drain.rejected  # refusals raised so far (those of earlier processes count as raised)
        self.config = RunConfig(dict(config or {}), self._append_config)
        """The run's config as dotted keys, read-only; `run.config.update(...)` adds to it (see `_config`)."""
        self._closed = False
        self._append_lock = threading.Lock()
        """Held around each append: the system metrics sampler and the capture append from threads of their own."""
        self._capture: CaptureThread | None = None
        self._sampler: SystemSampler | None = None
        _LIVE.add(self)

    @property
    def id(self) -> str | None:
        """The experiment's id, once it exists (at once when the server answered at start, else once the sender
        has created it; in offline mode, only when the spool is synced)."""
        if self._drain.experiment_id is None and self._sender is not None:
            self._sender.refresh()
        return self._drain.experiment_id

    @property
    def step(self) -> int:
        """The step the next `log()` without `step=` takes: 0 for a new experiment, one past the last stored step
        of a resumed one, one past the last logged step (or that step itself, left open by `commit=False`)."""
        return self._step

    # ---- the hot path ------------------------------------------------------------------------------------------
    def log(
        self,
        values: Mapping[str, Any],
        step: int | None = None,
        metadata: Mapping[str, str] | None = None,
        *,
        commit: bool = True,
    ) -> None:
        """Record metric values (name to finite number), at `step`, with string labels `metadata`.

        Without `step`, the values take the run's next step (`run.step`); an explicit step sets the counter, so
        the next call without one takes `step + 1`. A step may go backwards: it is stored like any other.
        `commit=False` leaves the step open: the next call without `step=` takes the same one (several calls
        build one step, as wandb's `commit=False`; each call is spooled at once, nothing waits in memory).

        Returns once the record is written to the spool (the kernel has it: it survives this process being
        killed); never waits on the network. Raises ValueError naming the bad name, value, step or label: the
        checks are `tally._limits`'s, the very ones `client.metrics.ingest` makes when the sender sends, so what
        `log()` takes the server takes."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        if type(values) is not dict:
            if not isinstance(values, Mapping):
                raise TypeError(f"run.log takes a dict of metric name to value, not {type(values).__name__}")
            values = dict(values)
        values = check_values(values)
        if not values:
            return
        if step is None:
            step = self._step
            if step > _MAX_STEP:  # only after an explicit step at the very top of the range
                check_step(step, "the run's next step")
        elif type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:  # the common case skips a call
            check_step(step)
            step = int(step)  # a float without fraction, as JSON has it: the counter stays an int
        if metadata:
            metadata = check_labels(metadata)
        with self._append_lock:
            self._seq += 1
            self._writer.append(
                frame((KIND_LOG, self._seq, step, time.time(), metadata, values)), len(values)
            )
            self._logged += len(values)
        self._last_step = step
        self._step = step + 1 if commit else step

    # ---- the rest ----------------------------------------------------------------------------------------------
    def annotate(
        self, text: str, *, step: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record a note on the experiment (e.g. "lr drop"), in order with the metrics; spooled like them. Without
        `step`, it is at the step of the last `log()` (at `run.step` before any).

        Raises ValueError for what `client.annotations.create` would refuse (the same check): empty or too long
        text, a bad step, metadata over the contract's caps, NaN or Infinity in it, a NUL anywhere."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        if step is None:
            step = self._step if self._last_step is None else self._last_step
        check_annotation(text, step=step, metadata=metadata)
        with self._append_lock:
            self._seq += 1
            record = (
                KIND_ANNOTATION,
                self._seq,
                text,
                step,
                time.time(),
                dict(metadata) if metadata else None,
            )
            self._writer.append(frame(record), 1)
            self._logged += 1

    def log_artifact(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        """Attach a file to the experiment (a checkpoint, a plot), as `name` (default: the file's name), in order
        with the metrics: it is uploaded after everything logged before it, through outages and crashes like any
        record (`tally sync` uploads it too), once. The file is copied into the run's spool now (a hard link would
        see a later in-place overwrite of the file; see `tally.run._artifact`), so it may be deleted or
        overwritten as soon as this returns; the copy costs one read and write of the file. The copy is removed
        once stored. Raises FileNotFoundError for a path that is not a file, ValueError for a name the contract
        refuses."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"log_artifact: no file at {source}")
        name = check_artifact_name(name if name is not None else source.name)
        location = self._writer.store.location
        if location is None:  # durability="memory": no spool directory, a temporary one of the run's own
            if self._artifact_dir is None:
                import tempfile

                self._artifact_dir = Path(tempfile.mkdtemp(prefix="tally-artifacts-"))
            folder = self._artifact_dir
        else:
            folder = Path(location) / ARTIFACTS_DIR
            folder.mkdir(mode=0o700, exist_ok=True)
        # The copy is made outside the append lock (it may take seconds), then named by its seq under it: the
        # sampler and the capture append from their own threads.
        staged = folder / f"incoming-{secrets.token_hex(8)}"
        size, sha256 = copy_for_upload(source, staged)
        with self._append_lock:
            seq = self._seq + 1
            copy = folder / f"{seq:x}"
            os.replace(staged, copy)
            where = str(copy) if location is None else f"{ARTIFACTS_DIR}/{copy.name}"
            self._seq = seq
            self._writer.append(frame((KIND_ARTIFACT, seq, name, where, size, sha256, time.time())), 1)
            self._logged += 1

    def _append_config(self, flat: dict[str, Any] | None, tags: list[str] | None = None) -> None:
        """Spool a config change (and tags to add), in order with the metrics: the sender merges it into the
        experiment's metadata."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        with self._append_lock:
            self._seq += 1
            self._writer.append(frame((KIND_CONFIG, self._seq, flat or None, tags or None)), 1)
            self._logged += 1

    def _log_system(self, values: dict[str, float], step: int) -> bool:
        """Spool one system metrics sample (the sampler's thread), at its own `step`: the caller's step counter
        is left alone (see `tally.run._system`). False once the run is closed."""
        values = check_values(values)
        with self._append_lock:
            if self._closed:
                return False
            self._seq += 1
            self._writer.append(frame((KIND_LOG, self._seq, step, time.time(), None, values)), len(values))
            self._logged += len(values)
        return True

    def _append_capture(self, captured: dict[str, Any]) -> None:
        """Spool what the run captured (the capture's thread): no event, only the experiment's metadata."""
        with self._append_lock:
            if self._closed:
                return
            self._seq += 1
            self._writer.append(frame((KIND_CAPTURE, self._seq, captured)), 0)

    def _caught_up(self, seq: int) -> bool:
        return self._drain.done_seq >= seq or self._drain.finished or self._drain.blocked is not None

    def _raise_rejections(self) -> None:
        """Raise `RunRejectedError` for refusals that no earlier `flush()` or `close()` raised (and every time,
        while the run cannot send at all)."""
        drain = self._drain
        if self._sender is not None:
            self._sender.refresh()
        if drain.rejected <= self._reported and drain.blocked is None:
            return
        reported, self._reported = self._reported, drain.rejected
        status = self.status()
        raise RunRejectedError(
            drain.rejected - reported,
            [reason for before, reason in drain.reasons if before >= reported] or [drain.last_error or ""],
            experiment_id=status.experiment_id,
            dead_letter=status.dead_letter,
            pending=status.pending,
            blocked=drain.blocked,
        )

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until everything logged so far is stored on the server; raise `FlushTimeoutError` after
        `timeout` seconds (it stays in the spool, and the sender keeps trying), and `RunRejectedError` when
        events were refused since the last flush (they never will be stored; the run goes on). Offline: returns
        at once, since everything is in the spool already, for `tally sync`."""
        if self._sender is None:
            return
        self._check_client_open()
        seq = self._seq
        caught_up = self._sender.wait(lambda: self._caught_up(seq), timeout)
        self._raise_rejections()
        if not caught_up:
            status = self.status()
            raise FlushTimeoutError(
                f"{status.pending} events are not stored after {timeout} s"
                + (f" (last error: {status.last_error})" if status.last_error else "")
                + "; they stay in the spool and the sender keeps trying; after the process ends, "
                "`tally sync` uploads them"
            )

    def _check_client_open(self) -> None:
        if self._sender is not None and not self._sender.needs_client:
            return
        if self._port is not None and self._port.is_closed:
            status = self.status()
            raise ClientClosedError(
                f"the client of run {self.name or status.experiment_id!r} is closed, so the run cannot send; "
                f"{status.pending} events stay in the spool: close the run before its client, or upload them "
                "with `tally sync`"
            )

    def status(self) -> RunStatus:
        """Counts of logged, stored, pending, rejected and dropped events, and the last error."""
        drain = self._drain
        if self._sender is not None:
            self._sender.refresh()
        dropped = self._writer.dropped_events
        pending = max(self._logged - drain.stored - drain.rejected - dropped, 0)
        # The current outage first (the sender clears it once the server answers), else the last refusal.
        last_error = (self._sender.last_error if self._sender else None) or drain.last_error
        return RunStatus(
            experiment_id=drain.experiment_id,
            logged=self._logged,
            stored=drain.stored,
            pending=pending,
            rejected=drain.rejected,
            dropped=dropped,
            last_error=last_error,
            spool=self._writer.store.location,
            offline=self.offline,
            dead_letter=str(drain.dead_letter.path)
            if drain.dead_letter is not None and drain.rejected
            else None,
            sender=None
            if self._sender is None
            else "process"
            if isinstance(self._sender, SenderProcess)
            else "thread",
        )

    def close(self, status: Literal["completed", "failed", "cancelled"] = "completed") -> RunStatus:
        """End the run: record the final `status`, flush for at most the flush timeout, stop the sender. What is
        not stored stays in the spool, and one line on stderr says how to upload it. Never hangs. Then raises
        `RunRejectedError` if events were refused that no `flush()` raised (the run is closed all the same)."""
        result = self._close(status)
        self._raise_rejections()
        return result

    def _close(self, status: Literal["completed", "failed", "cancelled"]) -> RunStatus:
        if self._closed:
            return self.status()
        if self._capture is not None:
            self._capture.join(CAPTURE_JOIN_TIMEOUT)
        if self._sampler is not None:
            self._sampler.stop()
        with self._append_lock:
            self._seq += 1
            self._writer.append(frame((KIND_END, self._seq, status)), 0)
            self._closed = True
        _LIVE.discard(self)
        if self._sender is not None:
            seq = self._seq
            if self._port is None or not self._port.is_closed or not self._sender.needs_client:
                # (a closed client sends nothing: do not wait, unless the sender has a client of its own)
                self._sender.wait(lambda: self._caught_up(seq), self.flush_timeout)
            self._sender.stop()
        self._writer.close()
        result = self.status()
        location = self._writer.store.location
        if result.rejected:
            print(
                f"tally: {result.rejected:,} events of run {self.name or result.experiment_id!r} could not be stored "
                f"(last error: {result.last_error}); they are kept in "
                f"{result.dead_letter or 'no file (durability=memory)'}",
                file=sys.stderr,
            )
        if self._drain.finished:
            self._drain.remove_if_done()
        elif location is not None:
            print(
                f"tally: {result.pending:,} events of run {self.name or result.experiment_id!r} are not stored "
                f"yet; they are kept in {location}; upload them with `tally sync`",
                file=sys.stderr,
            )
        else:
            print(
                f"tally: {result.pending:,} events of run {self.name or result.experiment_id!r} were not sent "
                "and are lost (durability='memory')",
                file=sys.stderr,
            )
        self._drain.close()
        if self._lock is not None:
            self._lock.release()
        if self._port is not None:
            self._port.close()
        return result

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close("completed")
        else:  # the block's own exception is the one to see; refusals are still said on stderr
            self._close("failed")

    def __repr__(self) -> str:
        return f"<Run {self.name or self.id!r} logged={self._logged}>"


_LIVE: set[Run] = set()
"""Open runs, held until closed (a run dropped without closing is still flushed and closed at exit)."""


@atexit.register
def _close_at_exit() -> None:
    """At interpreter exit, close every open run: flush for at most its flush timeout, then say what is left."""
    failed = getattr(sys, "last_exc", None) is not None or getattr(sys, "last_value", None) is not None
    for run in list(_LIVE):
        try:
            run.close("failed" if failed else "completed")
        except Exception as error:  # pragma: no cover - never let exit hide the line that matters
            logger.warning("tally: closing run %r at exit failed: %s", run.name, error)


# ---- starting a run ---------------------------------------------------------------------------------------------
SenderKind = Literal["auto", "thread", "process"]
"""Where a run's sender runs: a thread of the training process, a process of its own (`_sender_process`), or
"auto" (the default): a process where one can send as this client does (`auto_sender`), else a thread."""


SENDER_ENV = "TALLY_SENDER"
"""`client.run(sender=...)`'s default when the call does not say: "auto" (the default), "thread" or "process"."""


def resolve_sender(sender: SenderKind | None) -> SenderKind:
    """`sender=`, else `TALLY_SENDER`, else "auto"."""
    if sender is not None:
        return sender
    configured = os.environ.get(SENDER_ENV, "").strip()
    if not configured:
        return "auto"
    if configured not in ("auto", "thread", "process"):
        raise ConfigurationError(f"{SENDER_ENV}={configured!r}: set it to 'auto', 'thread' or 'process'")
    return configured  # type: ignore[return-value]


def auto_sender(durability: str) -> Literal["thread", "process"]:
    """What "auto" picks before looking at the client (`start_run` then looks): a process on Linux, where it is
    tested, for a run with a spool on disk, when this interpreter can be started again (`_restartable_interpreter`);
    else a thread. A process because a sender thread shares the training process's GIL: with one, 215-435 `log()` calls
    in 1,000,000 took over 1 ms (up to 12-20 ms), against 34-178 with a process, and the training process grew by
    7.4-9.7 MiB logging 1,000,000 values, against 3.0-3.2 (`make bench`, 2026-12-04)."""
    if sys.platform.startswith("linux") and durability != "memory" and _restartable_interpreter():
        return "process"
    return "thread"


def _restartable_interpreter() -> bool:
    """Whether `sys.executable` is a Python that `-m tally._sender_main` can start: not empty, and not the program
    of an application that embeds Python (uWSGI, Blender and the like set it to their own binary)."""
    name = os.path.basename(sys.executable or "").lower()
    return name.startswith(("python", "pypy"))


def check_sender(sender: Any, durability: str) -> None:
    """`client.run(sender=...)`: "auto", "thread" or "process"; a process sender reads the spool, so it needs
    one."""
    if sender not in ("auto", "thread", "process"):
        raise ValueError(f"sender must be 'auto', 'thread' or 'process', not {sender!r}")
    if sender == "process" and sys.platform == "win32":
        raise ValueError(
            "sender='process' needs a POSIX system (Linux, macOS): use sender='thread' on Windows"
        )
    if sender == "process" and durability == "memory":
        raise ValueError(
            "sender='process' sends the spool from another process, and durability='memory' keeps no spool: "
            "use durability='process' (the default) or 'power', or sender='thread'"
        )


def _new_run_key() -> str:
    """8 random hex digits: unique among the runs of one experiment, and short, since it starts every
    `client_event_id` (`<run_key>.<seq>.<index>`) that the server stores and indexes. (The spool directory's
    name puts the start time first, so that directories sort by age.)"""
    return secrets.token_hex(4)


def _leftover(path: Path, client: SenderPort, experiment_id: str) -> Drain | None:
    """A drain for a leftover spool of `experiment_id`, if no live process owns it."""
    store = FileStore(path)
    header = read_header(store)
    progress = read_progress(path)
    if (progress["experiment_id"] or (header or {}).get("experiment_id")) != experiment_id:
        return None
    lock = SpoolLock(path)
    if not lock.acquire():
        return None
    return Drain(store, client, directory=path, lock=lock, superseded=True)


def _spooled_last_step(path: Path, experiment_id: str) -> int | None:
    """The highest step in the last segment of a leftover spool of `experiment_id` (one of a process that
    died before sending it all; its records are sent before the resumed run's), or None."""
    store = FileStore(path)
    header = read_header(store)
    if (read_progress(path)["experiment_id"] or (header or {}).get("experiment_id")) != experiment_id:
        return None
    segments = store.segments()
    data = store.read(segments[-1], len(MAGIC), store.path(segments[-1]).stat().st_size) if segments else None
    if not data:
        return None
    steps = [
        payload[2]
        for _, payload in decode_records(data, base=len(MAGIC)).records
        if isinstance(payload, list)
        and len(payload) > 2
        and payload[0] == KIND_LOG
        and type(payload[2]) is int
        and not (len(payload) > 5 and is_system_record(payload[5]))  # stepped by the clock: not the caller's
    ]
    return max(steps, default=None)


def _first_step(client: SenderPort | None, experiment_id: str | None) -> int:
    """Where a resumed run's steps start: one past the highest step stored in the experiment (read once, here;
    never per `log()`) or spooled for it by an earlier process of this machine. Without the server (`client`
    None: offline, or it did not answer), only the spools count, and a warning says that the steps may repeat
    stored ones."""
    steps: list[int] = []
    stored: int | None = None
    try:
        if client is not None and experiment_id is not None:
            stored = client.last_step(experiment_id)
        else:
            client = None
    except APIConnectionError:
        client = None
    if stored is not None:
        steps.append(stored)
    if client is None:
        logger.warning(
            "tally: the server was not asked for the last stored step of the resumed experiment, so log() without "
            "step= continues after the steps spooled on this machine only (or from 0): pass step= to be sure"
        )
    root = spool_root()
    if experiment_id is not None and root.is_dir():
        for path in iter_spools(root):
            try:
                spooled = _spooled_last_step(path, experiment_id)
            except OSError:
                continue
            if spooled is not None:
                steps.append(spooled)
    return max(steps) + 1 if steps else 0


def start_run(
    client: SenderPort,
    name: str | None = None,
    *,
    experiment_id: str | None = None,
    resume: ResumeMode | None = None,
    folder_id: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: Any = None,
    tags: Sequence[str] | None = None,
    durability: Durability = "process",
    spool_cap: int = DEFAULT_CAP_BYTES,
    on_full: CapPolicy = "block",
    flush_timeout: float | None = None,
    capture: bool | Capture = True,
    system_metrics_interval: float | None = None,
    group: str | None = None,
    sender: SenderKind | None = None,
    process_spec: Callable[[], dict[str, Any]] | None = None,
) -> Run:
    """`client.run(...)`: see `Tally.run`. `client` is the port the client hands its run (`tally._run_ports`):
    the run sends through the caller's own client and closes only what the port made for it. With
    `sender="process"`, `process_spec()` gives the client as a sender process rebuilds it (`tally._sender_spec`)."""
    try:
        asked = resolve_sender(sender)
        check_sender(asked, durability)
        chosen = auto_sender(durability) if asked == "auto" else asked
        spec = None
        if chosen == "process" and process_spec is not None and not client.offline:
            try:
                spec = process_spec()
            except ConfigurationError:
                if asked != "auto":
                    raise
                # "auto": this client's transport or hooks cannot cross to another process; a thread can use them.
        check_resume(resume, name, experiment_id)
        check_metadata(metadata)  # now, not when an offline run's spool is synced
        check_reserved(metadata)
        capture_items = resolve_capture(capture)
        interval = resolve_interval(system_metrics_interval)
        flat_config = flatten_config(config) if config is not None else {}
        create_metadata = with_config(metadata, flat_config)  # checked now, as a whole
        tag_list = check_tags(tags) if tags is not None else None
        if durability not in ("process", "power", "memory"):
            raise ValueError(f"durability must be 'process', 'power' or 'memory', not {durability!r}")
        offline = client.offline
        if offline and durability == "memory":
            raise ValueError(
                "durability='memory' keeps no spool, so an offline run would keep nothing: use 'process'"
            )
        timeout = _flush_timeout(flush_timeout)
        run_key = _new_run_key()
        create_key = f"tally-run-{run_key}-{secrets.token_hex(12)}"  # the experiment's stable Idempotency-Key
        sender_client = None if offline else client
        header: dict[str, Any] = {
            "run_key": run_key,
            "create_key": create_key,
            "name": name,
            "experiment_id": experiment_id,
            "folder_id": folder_id,
            "description": description,
            "metadata": create_metadata,
            "tags": tag_list,
            "created": time.time(),
        }
        if group is not None:  # (a spool without it is one of an SDK before groups, or of a run in none)
            header["group"] = group
        if resume is not None or experiment_id is not None:
            header["resume"] = resume or "must"
        settled: str | None = None  # the experiment, when the server answered now
        resumed = experiment_id is not None
        learned: dict[str, int] = {}  # the first step of an experiment to resume, read before its reopen

        def learn_first_step(existing: str) -> None:
            learned[existing] = _first_step(sender_client, existing)

        if sender_client is not None:
            try:  # settle it now when the server answers; when it does not, the sender does it later
                if "resume" in header:
                    settled, resumed = resolve_experiment(
                        sender_client, header, patient=False, on_found=learn_first_step
                    )
                else:
                    settled = sender_client.create_experiment(
                        str(name),
                        description=description,
                        metadata=create_metadata,
                        folder_id=folder_id,
                        tags=tag_list,
                        idempotency_key=create_key,
                        patient=False,
                        group=group,
                    )
                header["experiment_id"] = settled
            except APIConnectionError as error:
                logger.info(
                    "tally: the server is unreachable (%s); the experiment will be settled later", error
                )
        first_step = 0
        if len(learned) == 1:  # found, then resumed now or left to the sender (the server died at the reopen)
            first_step = next(iter(learned.values()))
        elif settled is not None and resumed:
            first_step = _first_step(sender_client, settled)
        elif settled is None and "resume" in header:
            first_step = _first_step(None, header["experiment_id"])
        directory: Path | None = None
        lock: SpoolLock | None = None
        store: Store
        if durability == "memory":
            store = MemoryStore()
            logger.warning(
                "tally: durability='memory': the run keeps no spool; events not yet sent are lost if the process dies"
            )
        else:
            root = make_private_dir(spool_root())
            directory = make_private_dir(root / f"{int(time.time()):08x}-{run_key}")
            lock = SpoolLock(directory)
            lock.acquire()
            store = FileStore(directory)
        writer = SpoolWriter(store, header, cap_bytes=spool_cap, policy=on_full, can_wait=not offline)
        drain = Drain(store, sender_client, directory=directory, writer=writer, header=header)
        if settled is not None:
            drain.opened_as(settled)
        background: Sender | SenderProcess | None = None
        if sender_client is not None:
            leftover_paths: list[Path] = []
            if resumed and header["experiment_id"] is not None and directory is not None:
                leftover_paths = [path for path in iter_spools(directory.parent) if path != directory]
            fsync_interval = 1.0 if durability == "power" else None
            if spec is not None and directory is not None and lock is not None and lock.fd is not None:
                try:
                    background = SenderProcess(
                        drain,
                        directory,
                        spec=spec,
                        lock_fd=lock.fd,
                        leftovers=leftover_paths,
                        fsync_interval=fsync_interval,
                        grace=timeout,
                        segment_start=writer.segment_start,
                        segment_bytes=writer.segment_bytes,
                    )
                except OSError as error:
                    if asked != "auto":
                        writer.close()  # nothing logged yet: the spool goes with the run
                        lock.release()
                        remove_spool(directory)
                        if settled is not None and not resumed:
                            # The experiment this start created would stay `running` with nothing to come. (One
                            # it reopened is left so: what it was before is not known here.)
                            with contextlib.suppress(Exception):
                                sender_client.set_status(settled, "failed")
                        raise
                    logger.warning(
                        "tally: the run's sender process did not start (%s): sending from a thread", error
                    )
                else:
                    # Only now, and before the child has its instructions (`start`): it then makes the segments
                    # ready, and the writer's helper must have stopped making them.
                    writer.hand_over(background.revive)
                    drain.progress.close()  # the child records the progress from now on
                    background.start()
                    # This process sends nothing more: what the port made for the run goes now (an async
                    # client's loop thread, `tally._loop_port`), not at the run's end.
                    client.close()
            if background is None:
                leftovers: list[Callable[[], Drain | None]] = [
                    functools.partial(_leftover, path, sender_client, header["experiment_id"])
                    for path in leftover_paths
                ]
                background = Sender(drain, leftovers=leftovers, fsync_interval=fsync_interval)
                background.start()
        run = Run(
            name=name,
            writer=writer,
            drain=drain,
            sender=background,
            lock=lock,
            flush_timeout=timeout,
            offline=offline,
            port=client,
            first_step=first_step,
            config=flat_config,
        )
        if "resume" in header and (flat_config or tag_list):
            # A resumed experiment keeps its metadata: the config and tags are merged into it, through the spool
            # (an experiment this run created has them already, from its creation: merging again is a no-op).
            run._append_config(flat_config, tag_list)
        if capture_items.any():  # on threads of their own: the start of the run does not wait for them
            run._capture = CaptureThread(capture_items, run._append_capture)
            run._capture.start()
        if interval > 0:
            run._sampler = SystemSampler(interval, run._log_system)
            run._sampler.start()
        return run
    except BaseException:
        client.close()  # what the port made for the run (never the caller's client)
        raise
