"""The training loop's run: `log()` checks its input, frames one record and appends it to the spool; that is all
it does on the caller's thread. The background `Sender` does the network.

    with client.run("resnet50", metadata={"lr": 3e-4}) as run:
        for step in range(steps):
            run.log({"train/loss": loss, "lr": lr}, step=step)

Durability: "process" (default) writes each record to the kernel before `log()` returns, so it survives a killed
process; "power" also fsyncs the spool every second; "memory" keeps no spool (what is not sent when the process
dies is lost, and a warning says so at the start).
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from tally._errors import APIConnectionError, ConfigurationError, TallyError
from tally._events import _slow_value
from tally._logging import logger

from ._format import KIND_ANNOTATION, KIND_END, KIND_EXPERIMENT, KIND_LOG, frame
from ._sender import Drain, Sender
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
    spool_root,
)

if TYPE_CHECKING:
    from tally._async._client import AsyncTally
    from tally._sync._client import Tally

__all__ = [
    "FLUSH_TIMEOUT_ENV",
    "METADATA_KEY_PATTERN",
    "METRIC_NAME_PATTERN",
    "Durability",
    "FlushTimeoutError",
    "Run",
    "RunStatus",
    "start_run",
]

Durability = Literal["process", "power", "memory"]
FLUSH_TIMEOUT_ENV = "TALLY_FLUSH_TIMEOUT"
DEFAULT_FLUSH_TIMEOUT = 30.0

# Checked against openapi/tally.yaml (MetricName, MetadataKey, Labels) by tests/sdk/unit/test_run_spool.py, so a
# bad name fails at `log()`, with the field named, instead of poisoning a batch on the server.
METRIC_NAME_PATTERN = r"^[A-Za-z0-9_./:@-]+$"
METRIC_NAME_MAX = 256
METADATA_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
METADATA_KEY_MAX = 64
LABEL_VALUE_MAX = 256
LABELS_MAX = 32
_NAME = re.compile(METRIC_NAME_PATTERN)
_KEY = re.compile(METADATA_KEY_PATTERN)


class FlushTimeoutError(TallyError):
    """`run.flush(timeout)` ran out of time; what is not stored stays in the spool."""


@dataclass(frozen=True)
class RunStatus:
    """Where a run's events are: `logged` by this process, `stored` on the server (duplicates of earlier
    attempts included), `pending` (in the spool, not yet stored), `rejected` by the server, `dropped` at the
    spool's cap; the last error the sender met, and the spool's directory (None for durability="memory")."""

    experiment_id: str | None
    logged: int
    stored: int
    pending: int
    rejected: int
    dropped: int
    last_error: str | None
    spool: str | None
    offline: bool


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


def _bad_name(name: object) -> ValueError:
    return ValueError(
        f"metric name {name!r} is not valid: 1 to {METRIC_NAME_MAX} characters of A-Z a-z 0-9 _ . / : @ - "
        "(e.g. 'train/loss')"
    )


class Run:
    """One experiment's logging session: `log()`, `annotate()`, `flush()`, `status()`, `close()`; a context
    manager that marks the experiment completed (failed if the block raised). Made by `client.run(...)`."""

    def __init__(
        self,
        *,
        name: str | None,
        writer: SpoolWriter,
        drain: Drain,
        sender: Sender | None,
        lock: SpoolLock | None,
        flush_timeout: float,
        offline: bool,
        owned_client: Tally | None,
    ) -> None:
        self.name = name
        self._writer = writer
        self._drain = drain
        self._sender = sender
        self._lock = lock
        self.flush_timeout = flush_timeout
        self.offline = offline
        self._owned_client = owned_client
        self._seq = 0
        self._logged = 0
        self._names: set[str] = set()
        self._keys: set[str] = set()
        self._closed = False
        _LIVE.add(self)

    @property
    def id(self) -> str | None:
        """The experiment's id, once it exists (at once when the server answered at start, else once the sender
        has created it; in offline mode, only when the spool is synced)."""
        return self._drain.experiment_id

    # ---- the hot path ------------------------------------------------------------------------------------------
    def log(
        self, values: Mapping[str, Any], step: int | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Record metric values (name to finite number), at `step`, with string labels `metadata`.

        Returns once the record is written to the spool (the kernel has it: it survives this process being
        killed); never waits on the network. Raises ValueError naming the bad name, value or label."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        if type(values) is not dict:
            if not isinstance(values, Mapping):
                raise TypeError(f"run.log takes a dict of metric name to value, not {type(values).__name__}")
            values = dict(values)
        names = self._names
        for name, value in values.items():
            kind = type(value)
            if kind is float:
                if value - value != 0.0:
                    raise ValueError(
                        f"metric {name!r} is {value!r}: values must be finite (no NaN or Infinity)"
                    )
            elif kind is not int:
                values = self._converted(values)
                break
            if name not in names:
                self._check_name(name)
        if not values:
            return
        if step is not None and (type(step) is not int or step < 0):
            raise ValueError(f"step must be an int >= 0 or None, not {step!r}")
        if metadata:
            metadata = self._checked_labels(metadata)
        self._seq += 1
        self._writer.append(frame((KIND_LOG, self._seq, step, time.time(), metadata, values)), len(values))
        self._logged += len(values)

    def _converted(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for index, (name, value) in enumerate(values.items()):
            if name not in self._names:
                self._check_name(name)
            try:
                out[name] = value if type(value) in (float, int) else _slow_value(index, value)
            except ValueError:
                raise ValueError(
                    f"metric {name!r} is {value!r}: a value must be a finite int or float (no NaN, Infinity, "
                    "None, bool or strings)"
                ) from None
            if type(out[name]) is float and out[name] - out[name] != 0.0:
                raise ValueError(f"metric {name!r} is {value!r}: values must be finite (no NaN or Infinity)")
        return out

    def _check_name(self, name: object) -> None:
        if type(name) is not str or not (0 < len(name) <= METRIC_NAME_MAX) or not _NAME.match(name):
            raise _bad_name(name)
        self._names.add(name)

    def _checked_labels(self, metadata: Mapping[str, str]) -> dict[str, str]:
        labels = metadata if type(metadata) is dict else dict(metadata)
        if len(labels) > LABELS_MAX:
            raise ValueError(f"metadata has {len(labels)} entries; at most {LABELS_MAX} are allowed")
        for key, value in labels.items():
            if key not in self._keys:
                if type(key) is not str or len(key) > METADATA_KEY_MAX or not _KEY.match(key):
                    raise ValueError(
                        f"metadata key {key!r} is not valid: 1 to {METADATA_KEY_MAX} characters, a letter or _ "
                        "first, then letters, digits, _ . -"
                    )
                self._keys.add(key)
            if type(value) is not str or len(value) > LABEL_VALUE_MAX:
                raise ValueError(
                    f"metadata[{key!r}] is {value!r}: label values are strings of at most {LABEL_VALUE_MAX} "
                    "characters"
                )
        return labels

    # ---- the rest ----------------------------------------------------------------------------------------------
    def annotate(
        self, text: str, *, step: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record a note on the experiment (e.g. "lr drop"), in order with the metrics; spooled like them."""
        if self._closed:
            raise RuntimeError("this run is closed: start another with client.run(...)")
        if not isinstance(text, str) or not text:
            raise ValueError("annotation text must be a non-empty string")
        if step is not None and (type(step) is not int or step < 0):
            raise ValueError(f"step must be an int >= 0 or None, not {step!r}")
        self._seq += 1
        record = (KIND_ANNOTATION, self._seq, text, step, time.time(), dict(metadata) if metadata else None)
        self._writer.append(frame(record), 1)
        self._logged += 1

    def _caught_up(self, seq: int) -> bool:
        return self._drain.done_seq >= seq or self._drain.finished

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until everything logged so far is stored on the server; raise `FlushTimeoutError` after
        `timeout` seconds (it stays in the spool, and the sender keeps trying). Offline: returns at once,
        since everything is in the spool already, for `tally sync`."""
        if self._sender is None:
            return
        seq = self._seq
        if not self._sender.wait(lambda: self._caught_up(seq), timeout):
            status = self.status()
            raise FlushTimeoutError(
                f"{status.pending} events are not stored after {timeout} s"
                + (f" (last error: {status.last_error})" if status.last_error else "")
                + "; they stay in the spool and the sender keeps trying; after the process ends, "
                "`tally sync` uploads them"
            )

    def status(self) -> RunStatus:
        """Counts of logged, stored, pending, rejected and dropped events, and the last error."""
        drain = self._drain
        dropped = self._writer.dropped_events
        pending = max(self._logged - drain.stored - drain.rejected - dropped, 0)
        last_error = drain.last_error or (self._sender.last_error if self._sender and pending else None)
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
        )

    def close(self, status: Literal["completed", "failed", "cancelled"] = "completed") -> RunStatus:
        """End the run: record the final `status`, flush for at most the flush timeout, stop the sender. What is
        not stored stays in the spool, and one line on stderr says how to upload it. Never hangs."""
        if self._closed:
            return self.status()
        self._seq += 1
        self._writer.append(frame((KIND_END, self._seq, status)), 0)
        self._closed = True
        _LIVE.discard(self)
        if self._sender is not None:
            seq = self._seq
            self._sender.wait(lambda: self._caught_up(seq), self.flush_timeout)
            self._sender.stop()
        self._writer.close()
        result = self.status()
        location = self._writer.store.location
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
        if self._owned_client is not None:
            self._owned_client.close()
        return result

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close("completed" if exc_type is None else "failed")

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
def _new_run_key() -> str:
    """8 random hex digits: unique among the runs of one experiment, and short, since it starts every
    `client_event_id` (`<run_key>.<seq>.<index>`) that the server stores and indexes. (The spool directory's
    name puts the start time first, so that directories sort by age.)"""
    return secrets.token_hex(4)


def _sender_client(client: Tally | AsyncTally) -> Tally:
    """A sync client of its own for the sender, with the caller's credentials and settings: its pool lives in the
    sender's thread and outlives the caller closing theirs (at interpreter exit, for instance)."""
    from tally._sync._client import Tally

    config = client._core.state.config
    return Tally(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=client.timeout,
        ingest_timeout=client.ingest_timeout,
        retry=client.retry,
    )


def _leftover(path: Path, client: Tally, experiment_id: str) -> Drain | None:
    """A drain for a leftover spool of `experiment_id`, if no live process owns it."""
    store = FileStore(path)
    header = read_header(store)
    progress = read_progress(path)
    if (progress["experiment_id"] or (header or {}).get("experiment_id")) != experiment_id:
        return None
    lock = SpoolLock(path)
    if not lock.acquire():
        return None
    return Drain(store, client, directory=path, lock=lock)


def start_run(
    client: Tally | AsyncTally,
    name: str | None = None,
    *,
    experiment_id: str | None = None,
    folder_id: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    durability: Durability = "process",
    spool_cap: int = DEFAULT_CAP_BYTES,
    on_full: CapPolicy = "block",
    flush_timeout: float | None = None,
) -> Run:
    """`client.run(...)`: see `Tally.run`."""
    if (name is None) == (experiment_id is None):
        raise ValueError(
            "client.run needs a name (to create an experiment) or experiment_id= (to resume one), not both"
        )
    if durability not in ("process", "power", "memory"):
        raise ValueError(f"durability must be 'process', 'power' or 'memory', not {durability!r}")
    offline = bool(getattr(client, "offline", False))
    if offline and durability == "memory":
        raise ValueError(
            "durability='memory' keeps no spool, so an offline run would keep nothing: use 'process'"
        )
    timeout = _flush_timeout(flush_timeout)
    run_key = _new_run_key()
    create_key = f"tally-run-{run_key}-{secrets.token_hex(12)}"  # the experiment's stable Idempotency-Key
    sender_client = None if offline else _sender_client(client)
    if name is not None and sender_client is not None:
        try:  # create it now when the server answers; when it does not, the sender creates it later
            experiment = sender_client.with_options(max_retries=0, timeout=3.0).experiments.create(
                name,
                description=description,
                metadata=metadata,
                folder_id=folder_id,
                idempotency_key=create_key,
            )
            experiment_id = experiment.id
        except APIConnectionError as error:
            logger.info("tally: the server is unreachable (%s); the experiment will be created later", error)
        except BaseException:
            sender_client.close()
            raise
    try:
        header = {
            "run_key": run_key,
            "create_key": create_key,
            "name": name,
            "experiment_id": experiment_id,
            "folder_id": folder_id,
            "description": description,
            "metadata": dict(metadata) if metadata else None,
            "created": time.time(),
        }
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
        if experiment_id is not None and name is not None:
            drain.experiment_id = experiment_id
            drain.progress.append([KIND_EXPERIMENT, experiment_id])
        sender: Sender | None = None
        if sender_client is not None:
            leftovers: list[Callable[[], Drain | None]] = []
            if name is None and experiment_id is not None and directory is not None:
                resumed, own = experiment_id, directory
                leftovers.extend(
                    functools.partial(_leftover, path, sender_client, resumed)
                    for path in iter_spools(directory.parent)
                    if path != own
                )
            sender = Sender(drain, leftovers=leftovers, fsync_interval=1.0 if durability == "power" else None)
            sender.start()
        return Run(
            name=name,
            writer=writer,
            drain=drain,
            sender=sender,
            lock=lock,
            flush_timeout=timeout,
            offline=offline,
            owned_client=sender_client,
        )
    except BaseException:
        if sender_client is not None:
            sender_client.close()
        raise
